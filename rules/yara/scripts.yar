/*
 * Borderscan default rules: obfuscated PowerShell.
 *
 * Base64-encoded command lines and "decode then Invoke-Expression" are the
 * standard way droppers and USB-worm launchers hide their PowerShell payload
 * (MITRE ATT&CK T1059.001, T1027). Both rules require PowerShell context so
 * that ordinary base64 (mail, certificates, web assets) does not match.
 * They match in scripts, batch files, shortcuts, and UTF-16 text (wide).
 *
 * Deliberately not included: "DownloadString + IEX" download cradles. Public
 * installers (Chocolatey, Scoop, ...) document exactly that line, so it would
 * flag harmless README files with high severity.
 */

rule PowerShell_Encoded_Command : powershell obfuscation
{
    meta:
        description = "PowerShell started with -EncodedCommand (or an abbreviation: -e, -ec, -en, -enc, ...) and a base64 payload of at least 40 characters"
        severity = "high"
        reference = "https://learn.microsoft.com/en-us/powershell/module/microsoft.powershell.core/about/about_powershell_exe"
        author = "Borderscan"

    strings:
        // "powershell" / "pwsh", then (on the same line, within 512
        // characters) the parameter. PowerShell accepts any unambiguous
        // prefix of -EncodedCommand, the alias -ec, and "/" instead of "-".
        $enc = /(powershell|pwsh)[^\r\n]{0,512}[ \t"'][-\/]e(c|n|nc[a-z]{0,11})?[ \t:]+["']?[A-Za-z0-9+\/]{40,}/ nocase ascii wide

    condition:
        $enc
}

rule PowerShell_Base64_Decode_And_Execute : powershell obfuscation
{
    meta:
        description = "PowerShell that decodes base64 ([Convert]::FromBase64String) and executes the result (Invoke-Expression / IEX / [ScriptBlock]::Create)"
        severity = "high"
        reference = "https://attack.mitre.org/techniques/T1027/"
        author = "Borderscan"

    strings:
        $fb64  = "FromBase64String" ascii wide nocase
        // FromBase64String applied directly to an embedded payload literal
        $blob  = /FromBase64String[ \t]*\([ \t]*["'][A-Za-z0-9+\/]{100,}/ nocase ascii wide

        $x_iex = "Invoke-Expression" ascii wide nocase
        $x_sb  = "[scriptblock]::create" ascii wide nocase
        // the IEX alias as a token: after a separator, before an argument
        $x_alias = /[ \t\r\n;|(&{=]iex[ \t(;$'"]/ nocase ascii wide

    condition:
        filesize < 20MB and $fb64 and any of ($x_*) and
        (
            $blob or
            // decode and execute close together (the usual one-liner)
            for any i in (1..#fb64) : (
                for any of ($x_*) : ( $ in (@fb64[i] - 512 .. @fb64[i] + 512) )
            )
        )
}
