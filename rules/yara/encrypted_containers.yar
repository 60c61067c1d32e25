/*
 * Borderscan default rules: encrypted volumes and containers.
 *
 * Encryption is legal; these findings tell the inspector that part of the
 * device's content could not be inspected (severity medium, tag encrypted).
 * Only formats with an unambiguous plaintext signature are listed.
 * VeraCrypt/TrueCrypt volumes are indistinguishable from random data and are
 * therefore NOT detected here; encrypted ZIP/7-Zip/RAR members are reported
 * by the archive expander, not by YARA.
 *
 * Volume signatures sit at the start of a volume (or of a raw volume image
 * file). They fire on such files and on whatever volume data the scanner
 * hands to YARA.
 */

rule Encrypted_LUKS_Volume : encrypted
{
    meta:
        description = "Linux LUKS encrypted volume header (LUKS1 or LUKS2)"
        severity = "medium"
        reference = "https://gitlab.com/cryptsetup/cryptsetup/-/wikis/Specification"
        author = "Borderscan"

    condition:
        // magic "LUKS\xba\xbe", then a big-endian version 1 or 2
        filesize >= 512 and
        uint32be(0) == 0x4C554B53 and uint16be(4) == 0xBABE and
        (uint16be(6) == 1 or uint16be(6) == 2)
}

rule Encrypted_BitLocker_Volume : encrypted
{
    meta:
        description = "Windows BitLocker encrypted volume (Vista/7+ fixed-drive header with -FVE-FS- OEM signature)"
        severity = "medium"
        reference = "https://github.com/libyal/libbde/blob/main/documentation/BitLocker%20Drive%20Encryption%20(BDE)%20format.asciidoc"
        author = "Borderscan"

    condition:
        // "-FVE-FS-" as the OEM identifier at offset 3 of the volume header
        filesize >= 512 and
        uint32(3) == 0x4556462D and uint32(7) == 0x2D53462D
}

rule Encrypted_BitLocker_To_Go_Volume : encrypted
{
    meta:
        description = "Windows BitLocker To Go encrypted removable volume (FAT discovery volume carrying the BitLocker identifier GUID)"
        severity = "medium"
        reference = "https://github.com/libyal/libbde/blob/main/documentation/BitLocker%20Drive%20Encryption%20(BDE)%20format.asciidoc"
        author = "Borderscan"

    condition:
        // OEM identifier "MSWIN4.1" at offset 3 and, at offset 424, the
        // BitLocker identifier {4967D63B-2E29-4AD8-8399-F6A339E3D001}
        // (stored mixed-endian: 3B D6 67 49 29 2E D8 4A 83 99 F6 A3 39 E3 D0 01)
        filesize >= 512 and
        uint32(3) == 0x4957534D and uint32(7) == 0x312E344E and
        uint32(424) == 0x4967D63B and uint32(428) == 0x4AD82E29 and
        uint32(432) == 0xA3F69983 and uint32(436) == 0x01D0E339
}

rule Encrypted_Apple_DMG : encrypted
{
    meta:
        description = "Apple encrypted disk image (FileVault / hdiutil -encryption): v2 header encrcdsa at the start, or v1 trailer cdsaencr at the end"
        severity = "medium"
        reference = "https://github.com/openwall/john/blob/bleeding-jumbo/run/dmg2john.py"
        author = "Borderscan"

    condition:
        filesize >= 512 and
        (
            // "encrcdsa" at offset 0 (v2)
            (uint32be(0) == 0x656E6372 and uint32be(4) == 0x63647361) or
            // "cdsaencr" as the last 8 bytes (v1)
            (uint32be(filesize - 8) == 0x63647361 and uint32be(filesize - 4) == 0x656E6372)
        )
}

rule Encrypted_FreeBSD_GELI_Volume : encrypted
{
    meta:
        description = "FreeBSD GELI encrypted provider (metadata magic GEOM::ELI in the last 512- or 4096-byte sector)"
        severity = "medium"
        reference = "https://man.freebsd.org/cgi/man.cgi?query=geli&sektion=8"
        author = "Borderscan"

    condition:
        // "GEOM::ELI" followed by the NUL of its 16-byte field
        filesize >= 4096 and
        for any sector in (512, 4096) : (
            uint32be(filesize - sector) == 0x47454F4D and        // "GEOM"
            uint32be(filesize - sector + 4) == 0x3A3A454C and    // "::EL"
            uint16be(filesize - sector + 8) == 0x4900            // "I\0"
        )
}

rule Encrypted_Age_File : encrypted
{
    meta:
        description = "File encrypted with age (binary header age-encryption.org/v1, or ASCII-armored)"
        severity = "medium"
        reference = "https://age-encryption.org/v1"
        author = "Borderscan"

    strings:
        $bin   = "age-encryption.org/v1\n-> "
        $armor = "-----BEGIN AGE ENCRYPTED FILE-----"

    condition:
        $bin at 0 or $armor at 0
}

rule Encrypted_OpenSSL_Enc_File : encrypted
{
    meta:
        description = "File encrypted with the openssl enc command using a password (Salted__ header followed by an 8-byte salt)"
        severity = "medium"
        reference = "https://docs.openssl.org/3.0/man1/openssl-enc/"
        author = "Borderscan"

    condition:
        // "Salted__" at offset 0; salt (8) + at least one cipher block (16)
        filesize >= 32 and
        uint32be(0) == 0x53616C74 and uint32be(4) == 0x65645F5F
}
