/*
 * Borderscan default rules: Microsoft Office documents with VBA macros.
 *
 * Macros are the most common way a document runs code. Many documents carry
 * harmless macros, so the severity is medium (tag macro): the inspector
 * decides, possibly with a dedicated tool such as olevba.
 *
 * Where a VBA project lives:
 *  - legacy OLE2 files (.doc, .xls, .dot, .xlt, ...): inside the compound
 *    file, as storage "Macros" (Word) or "_VBA_PROJECT_CUR" (Excel);
 *  - OOXML files (.docm, .xlsm, .pptm, ...): as the ZIP member
 *    word/vbaProject.bin, xl/vbaProject.bin or ppt/vbaProject.bin, which is
 *    itself an OLE2 compound file. The scanner expands ZIP members, so the
 *    member is matched by Office_VBA_Project_Bin; the container by
 *    Office_OOXML_With_VBA_Project (useful when expansion hits a limit).
 * Not covered: .ppt (its VBA project is stored zlib-compressed) and
 * Excel 4.0 (XLM) macro sheets.
 *
 * Directory entry names in a compound file are UTF-16LE (wide). Module
 * source code is stored compressed ([MS-OVBA] 2.4.1): a module's first
 * chunk starts with a flag byte 0x00 and eight literal bytes, so
 * "Attribute VB_Name" appears as "Attribut" 0x00 "e VB_Nam". The PROJECT
 * stream is plain text and contains the "[Host Extender Info]" section.
 */

private rule Office_OLE2_With_VBA_Project
{
    meta:
        description = "OLE2 compound file that holds a VBA project (helper for the rules below)"
        severity = "info"
        reference = "https://learn.microsoft.com/en-us/openspecs/office_file_formats/ms-ovba/"
        author = "Borderscan"

    strings:
        $vba_project      = "_VBA_PROJECT" wide
        $attr_compressed  = { 41 74 74 72 69 62 75 74 00 65 20 56 42 5F }   // "Attribut" 00 "e VB_"
        $attr_plain       = "Attribute VB_"
        $host_extender    = "[Host Extender Info]"

    condition:
        // compound file signature D0 CF 11 E0 A1 B1 1A E1
        uint32(0) == 0xE011CFD0 and uint32(4) == 0xE11AB1A1 and
        $vba_project and
        any of ($attr_compressed, $attr_plain, $host_extender)
}

private rule Office_OLE2_Document_Stream
{
    meta:
        description = "OLE2 compound file with a Word, Excel, PowerPoint or Visio document stream (helper for the rules below)"
        severity = "info"
        reference = "https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-cfb/"
        author = "Borderscan"

    strings:
        // whole directory entry names, NUL-terminated, UTF-16LE
        $doc_word  = "WordDocument\x00" wide
        $doc_xls   = "Workbook\x00" wide
        $doc_xls5  = "Book\x00" wide
        $doc_ppt   = "PowerPoint Document\x00" wide
        $doc_visio = "VisioDocument\x00" wide

    condition:
        // A directory entry is 128 bytes and starts on a 128-byte boundary of
        // the file; its name length in bytes (with the NUL) is at +64. This
        // keeps "Workbook" from matching inside the module name "ThisWorkbook".
        for any i in (1..#doc_word)  : ( @doc_word[i]  % 128 == 0 and uint16(@doc_word[i]  + 64) == 26 ) or
        for any i in (1..#doc_xls)   : ( @doc_xls[i]   % 128 == 0 and uint16(@doc_xls[i]   + 64) == 18 ) or
        for any i in (1..#doc_xls5)  : ( @doc_xls5[i]  % 128 == 0 and uint16(@doc_xls5[i]  + 64) == 10 ) or
        for any i in (1..#doc_ppt)   : ( @doc_ppt[i]   % 128 == 0 and uint16(@doc_ppt[i]   + 64) == 40 ) or
        for any i in (1..#doc_visio) : ( @doc_visio[i] % 128 == 0 and uint16(@doc_visio[i] + 64) == 28 )
}

rule Office_OLE_Document_With_VBA_Macros : macro
{
    meta:
        description = "Legacy Office document (Word, Excel, Visio) in OLE2 format that contains a VBA macro project"
        severity = "medium"
        reference = "https://learn.microsoft.com/en-us/openspecs/office_file_formats/ms-ovba/"
        author = "Borderscan"

    condition:
        Office_OLE2_With_VBA_Project and Office_OLE2_Document_Stream
}

rule Office_VBA_Project_Bin : macro
{
    meta:
        description = "Stand-alone VBA project (vbaProject.bin, e.g. the word/vbaProject.bin member of a .docm/.xlsm/.pptm)"
        severity = "medium"
        reference = "https://learn.microsoft.com/en-us/openspecs/office_file_formats/ms-ovba/"
        author = "Borderscan"

    condition:
        Office_OLE2_With_VBA_Project and not Office_OLE2_Document_Stream
}

rule Office_OOXML_With_VBA_Project : macro
{
    meta:
        description = "Office Open XML package (ZIP) with a vbaProject.bin part (macro-enabled .docm/.xlsm/.pptm or renamed)"
        severity = "medium"
        reference = "https://learn.microsoft.com/en-us/openspecs/office_standards/ms-offmacro/"
        author = "Borderscan"

    strings:
        // part names are stored uncompressed in ZIP local and central headers
        $part = /(word|xl|ppt)\/vbaProject\.bin/

    condition:
        uint32(0) == 0x04034B50 and $part
}
