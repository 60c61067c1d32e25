/*
 * Borderscan default rules: removable-media worm launchers.
 *
 * USB worms (Conficker/Downadup, Andromeda/Gamarue, Raspberry Robin, PlugX's
 * USB module, ...) spread by writing a launcher to the root of the stick:
 * an autorun.inf that starts a program, or a .lnk shortcut that looks like
 * the stick's folder but runs a hidden script or executable first.
 * Both rules are content based; they do not need the file name.
 */

rule USB_Autorun_Inf_Launches_Program : worm autorun
{
    meta:
        description = "autorun.inf with an [autorun] section that launches a program (open=, shellexecute= or shell\\<verb>\\command=)"
        severity = "high"
        reference = "https://learn.microsoft.com/en-us/windows/win32/shell/autorun-cmds"
        author = "Borderscan"

    strings:
        // [autorun] or an architecture-specific [autorun.amd64] / [autorun.mips] ...
        $section   = /\[autorun(\.[a-z0-9]{1,8})?\]/ nocase ascii wide
        // key at the start of a line, followed by a non-empty value
        $open      = /[\r\n][ \t]*open[ \t]*=[ \t]*[^\r\n \t]/ nocase ascii wide
        $shellexec = /[\r\n][ \t]*shellexecute[ \t]*=[ \t]*[^\r\n \t]/ nocase ascii wide
        $shellcmd  = /[\r\n][ \t]*shell\\[^\\\r\n]{1,64}\\command[ \t]*=[ \t]*[^\r\n \t]/ nocase ascii wide

    condition:
        // autorun.inf files are tiny; the launch key must come after the
        // [autorun] section header (Windows ignores it in other sections).
        filesize < 1MB and $section and
        for any of ($open, $shellexec, $shellcmd) : ( @ > @section[1] )
}

rule USB_LNK_Runs_Hidden_Script_Or_Executable : worm lnk
{
    meta:
        description = "Windows shortcut (.lnk) that starts a command interpreter or script host (cmd, PowerShell, wscript, cscript, mshta, rundll32, regsvr32) with a hidden window, /c or /k, start, or a script file"
        severity = "high"
        reference = "https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-shllink/"
        author = "Borderscan"

    strings:
        // what the shortcut starts (target path, relative path or arguments;
        // target IDs and LinkInfo are ANSI, StringData is usually UTF-16LE)
        $i_cmd      = "cmd.exe" ascii wide nocase
        $i_comspec  = "%comspec%" ascii wide nocase
        $i_ps       = "powershell" ascii wide nocase
        $i_pwsh     = "pwsh.exe" ascii wide nocase
        $i_wscript  = "wscript" ascii wide nocase
        $i_cscript  = "cscript" ascii wide nocase
        $i_mshta    = "mshta" ascii wide nocase
        $i_rundll32 = "rundll32" ascii wide nocase
        $i_regsvr32 = "regsvr32" ascii wide nocase

        // evidence that it runs something else, quietly
        $a_cmd_c    = "/c " ascii wide nocase
        $a_cmd_k    = "/k " ascii wide nocase
        $a_start    = "start " ascii wide nocase
        // PowerShell -WindowStyle (or any prefix of it) Hidden, or its value 1
        $a_hidden   = /-w[a-z]{0,10}[ \t]+(hidden|1[ \t"'])/ nocase ascii wide
        // PowerShell -EncodedCommand (or a prefix of it) with a base64 payload
        $a_enc      = /-e(c|n|nc[a-z]{0,11})?[ \t]+["']?[A-Za-z0-9+\/]{40}/ nocase ascii wide
        $a_bypass   = /-(ep|exec|executionpolicy)[ \t]+bypass/ nocase ascii wide
        $a_vbs      = ".vbs" ascii wide nocase
        $a_vbe      = ".vbe" ascii wide nocase
        $a_js       = ".js" ascii wide nocase
        $a_jse      = ".jse" ascii wide nocase
        $a_wsf      = ".wsf" ascii wide nocase
        $a_hta      = ".hta" ascii wide nocase
        $a_ps1      = ".ps1" ascii wide nocase
        $a_bat      = ".bat" ascii wide nocase
        $a_cmdfile  = ".cmd" ascii wide nocase
        $a_jsproto  = "javascript:" ascii wide nocase
        $a_vbproto  = "vbscript:" ascii wide nocase

    condition:
        // ShellLinkHeader: HeaderSize 0x4C and
        // LinkCLSID {00021401-0000-0000-C000-000000000046}
        filesize < 1MB and
        uint32(0) == 0x0000004C and
        uint32(4) == 0x00021401 and uint32(8) == 0x00000000 and
        uint32(12) == 0x000000C0 and uint32(16) == 0x46000000 and
        any of ($i_*) and
        (
            any of ($a_*) or
            uint32(0x3C) == 7        // ShowCommand SW_SHOWMINNOACTIVE
        )
}
