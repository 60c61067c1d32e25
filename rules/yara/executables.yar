/*
 * Borderscan default rules: native executables.
 *
 * Informational: an executable on a storage device is not a threat by itself,
 * but inspectors want to know about it (and these findings feed the
 * extension-vs-content check, e.g. "holiday.jpg" that is really a PE).
 * All checks are structural header checks; no strings, so they are cheap.
 * Integer reads beyond the end of the data are undefined in YARA and make the
 * condition false; explicit bounds checks are still kept for clarity.
 */

rule Executable_Windows_PE : executable
{
    meta:
        description = "Windows Portable Executable (EXE, DLL, SYS, ...): MZ header whose e_lfanew points at the PE NT signature"
        severity = "info"
        reference = "https://learn.microsoft.com/en-us/windows/win32/debug/pe-format"
        author = "Borderscan"

    condition:
        filesize >= 0x40 and
        uint16(0) == 0x5A4D and                   // "MZ"
        uint32(0x3C) >= 0x40 and                  // e_lfanew after the DOS header
        uint32(0x3C) <= filesize - 24 and         // PE signature + COFF header inside the file
        uint32(uint32(0x3C)) == 0x00004550        // "PE\0\0"
}

rule Executable_Linux_ELF : executable
{
    meta:
        description = "ELF executable, shared object, object file or core dump (0x7F ELF magic, valid class and byte order)"
        severity = "info"
        reference = "https://refspecs.linuxfoundation.org/elf/gabi4+/ch4.eheader.html"
        author = "Borderscan"

    condition:
        filesize >= 52 and                        // smallest (32-bit) ELF header
        uint32(0) == 0x464C457F and               // "\x7fELF"
        (uint8(4) == 1 or uint8(4) == 2) and      // EI_CLASS: 32 / 64 bit
        (uint8(5) == 1 or uint8(5) == 2) and      // EI_DATA: little / big endian
        uint8(6) == 1                             // EI_VERSION: current
}

rule Executable_MachO : executable
{
    meta:
        description = "Mach-O executable or library (macOS/iOS), 32 or 64 bit, either byte order"
        severity = "info"
        reference = "Apple <mach-o/loader.h> (MH_MAGIC, MH_MAGIC_64, MH_CIGAM, MH_CIGAM_64)"
        author = "Borderscan"

    condition:
        filesize >= 28 and                        // mach_header (32-bit) size
        (
            uint32(0) == 0xFEEDFACE or            // bytes CE FA ED FE: MH_MAGIC, little-endian 32-bit
            uint32(0) == 0xFEEDFACF or            // bytes CF FA ED FE: MH_MAGIC_64, little-endian 64-bit
            uint32(0) == 0xCEFAEDFE or            // bytes FE ED FA CE: big-endian 32-bit (PowerPC)
            uint32(0) == 0xCFFAEDFE               // bytes FE ED FA CF: big-endian 64-bit
        )
}

rule Executable_MachO_Universal : executable
{
    meta:
        description = "Mach-O universal (fat) binary holding one or more architectures"
        severity = "info"
        reference = "Apple <mach-o/fat.h> (FAT_MAGIC 0xcafebabe, FAT_MAGIC_64 0xcafebabf)"
        author = "Borderscan"

    condition:
        // 0xCAFEBABE is shared with Java .class files. A fat header is followed
        // by a small big-endian architecture count, while a class file has
        // minor/major version there (major >= 45, so the 32-bit value >= 45).
        // The first fat_arch must also name a known CPU family
        // (x86 7, ARM 12, PowerPC 18; optionally with the 64-bit ABI flags).
        filesize >= 28 and
        (uint32be(0) == 0xCAFEBABE or uint32be(0) == 0xCAFEBABF) and
        uint32be(4) > 0 and uint32be(4) < 20 and
        (
            (uint32be(8) & 0x00FFFFFF) == 7 or
            (uint32be(8) & 0x00FFFFFF) == 12 or
            (uint32be(8) & 0x00FFFFFF) == 18
        ) and
        (uint32be(8) & 0xFC000000) == 0
}
