#pragma once
// Password-protected zips for handing a flagged file to a reviewer.
//
// The malware analysts' convention: a suspicious file leaves the system only
// inside an encrypted zip (password "infected"), so that mail gateways, proxies
// and the reviewer's own antivirus do not act on it in transit, and nobody runs
// it by a double click. The password is public; the encryption is a wrapper,
// not a secret.

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace borderscan::evidence {

// A base name that is safe as the one member of such a zip: the part after
// the last '/', '\\' or '!' (the container separator of scan paths), with
// control characters, bidirectional-text controls and bytes that are not
// UTF-8 replaced by '_', at most 255 bytes; "content.bin" when that leaves
// nothing, "." or "..".
std::string safe_member_name(std::string_view path);

// Writes to `out_fd` a zip archive holding one member, safe_member_name(
// member_name), with the bytes of the regular file `content`, deflated and
// encrypted with WinZip AES-256 under `password`. The content is streamed
// in 64 KiB chunks. libarchive 3.6 marks the entry AE-2 (no CRC) below 20
// bytes and AE-1 (CRC-32 of the plain bytes stored, as WinZip does) above;
// both are AES-256 in CTR mode with an HMAC-SHA1 check. An empty content
// file gives an unencrypted empty member (libarchive encrypts no empty entry).
// `out_fd` is neither closed nor seeked.
//
// Throws std::runtime_error (libarchive's message, or std::system_error for
// the content file) on failure, also when the content file changes size
// while it is read. The bytes already written to out_fd are then not a
// usable archive: the caller discards them (e.g. aborts the response).
void write_encrypted_zip(int out_fd, std::string_view member_name, const std::filesystem::path& content,
                         std::string_view password, std::int64_t mtime_unix_seconds);

}  // namespace borderscan::evidence
