#pragma once
// A bounded look at a flagged file's first bytes, for the review screen.
//
// The content is hostile: the result is always valid JSON whatever the bytes
// are, and the text it carries holds no control character a terminal or log
// viewer would act on. It is still untrusted text (it may contain '<' or
// '&'): a web page must insert it as text, never as HTML.

#include <cstddef>
#include <filesystem>
#include <string_view>

#include <nlohmann/json.hpp>

namespace borderscan::evidence {

// Reads at most `max_bytes` from the start of the regular file `content`
// (never more, whatever its size) and returns
//
//   {"view": "hex"|"text", "size": <file size>, "shown_bytes": n, "truncated": n < size, ...}
//
// view "hex" adds "lines": [{"offset": 0, "hex": "58 35 4f ...", "text": "X5O..."}, ...],
// 16 bytes a line, hex in lower case, the text column showing printable
// ASCII and '.' for every other byte.
// view "text" adds "text": the bytes as UTF-8, valid sequences kept; each
// invalid sequence (or one cut by max_bytes), each control character other
// than \n, \t and \r (C0, DEL, C1) and each bidirectional-text control
// replaced by U+FFFD.
//
// Throws std::invalid_argument for another view, std::system_error when the
// file cannot be opened or read, std::runtime_error when it is not a regular file.
nlohmann::json preview_file(const std::filesystem::path& content, std::string_view view,
                            std::size_t max_bytes = 64 * 1024);

}  // namespace borderscan::evidence
