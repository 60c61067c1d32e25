#pragma once
// Text helpers for untrusted names.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace borderscan::scanner {

// One step of UTF-8 decoding (RFC 3629): the character starting at s[i],
// which must be < s.size().
//
// Valid: valid = true, code_point is the character and length the bytes it
// takes (1..4).
// Not valid UTF-8 (a byte that cannot start a sequence, an overlong form, a
// surrogate, a code point past U+10FFFF, a sequence cut by the end of s):
// valid = false, code_point = U+FFFD, and length is that of the longest
// prefix of s[i..] that could still begin a valid sequence, at least 1
// ("maximal subpart", Unicode ch. 3 / WHATWG). Replacing each such span with
// one U+FFFD decodes as browsers do; a caller that handles bad input byte by
// byte advances by 1 instead.
struct utf8_char {
  char32_t code_point = U'\uFFFD';
  std::size_t length = 1;
  bool valid = false;
};
utf8_char decode_utf8(std::string_view s, std::size_t i);

// Returns valid UTF-8. Valid input comes back unchanged, except that a
// backslash becomes "\\"; every byte that is not part of a valid UTF-8
// sequence becomes "\xHH". The mapping is reversible.
std::string escape_name(std::string_view raw);

// Parses lower/upper-case hex; false on odd length or a bad digit.
bool from_hex(std::string_view hex, std::span<std::uint8_t> out);

// ISO 8601 UTC ("2024-01-02T03:04:05Z") of Unix seconds; "" when the year
// is outside 0..9999.
std::string iso8601(std::int64_t unix_seconds);

}  // namespace borderscan::scanner
