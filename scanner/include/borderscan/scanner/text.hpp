#pragma once
// Text helpers for untrusted names.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace borderscan::scanner {

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
