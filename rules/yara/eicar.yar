/*
 * Borderscan default rules: EICAR anti-malware test file.
 *
 * The EICAR file is a harmless 68-byte ASCII string that every scanner is
 * expected to report. It lets an operator prove, end to end, that a station's
 * uploads really are scanned and that findings reach the review console.
 *
 * The string is written in hex so that this rule source itself is not
 * reported as the test file by other anti-malware products.
 */

rule EICAR_Test_File : test_file
{
    meta:
        description = "EICAR anti-malware test file (68-byte standard string at offset 0, file at most 128 bytes)"
        severity = "high"
        reference = "https://www.eicar.org/download-anti-malware-testfile/"
        author = "Borderscan"

    strings:
        // X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*
        $eicar = { 58 35 4F 21 50 25 40 41 50 5B 34 5C 50 5A 58 35
                   34 28 50 5E 29 37 43 43 29 37 7D 24 45 49 43 41
                   52 2D 53 54 41 4E 44 41 52 44 2D 41 4E 54 49 56
                   49 52 55 53 2D 54 45 53 54 2D 46 49 4C 45 21 24
                   48 2B 48 2A }

    condition:
        // EICAR's definition: the string starts the file; it may be followed
        // by whitespace only, and the whole file is at most 128 bytes.
        $eicar at 0 and filesize <= 128
}
