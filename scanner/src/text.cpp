#include "borderscan/scanner/text.hpp"

#include <array>
#include <ctime>

namespace borderscan::scanner {
namespace {

constexpr char hex_digits[] = "0123456789abcdef";

}  // namespace

utf8_char decode_utf8(std::string_view s, std::size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) return {b0, 1, true};
  std::size_t len = 0;
  char32_t cp = 0;
  // Allowed range of the second byte; narrowing it after E0, ED, F0 and F4
  // rules out overlong forms, surrogates and code points past U+10FFFF.
  unsigned char lo = 0x80, hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2, cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3, cp = b0 & 0x0F, lo = b0 == 0xE0 ? 0xA0 : 0x80, hi = b0 == 0xED ? 0x9F : 0xBF;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4, cp = b0 & 0x07, lo = b0 == 0xF0 ? 0x90 : 0x80, hi = b0 == 0xF4 ? 0x8F : 0xBF;
  } else {
    return {};  // continuation byte, C0/C1 (always overlong), F5..FF
  }
  for (std::size_t k = 1; k < len; ++k) {
    if (i + k >= s.size()) return {.length = k};
    const auto b = static_cast<unsigned char>(s[i + k]);
    if (b < lo || b > hi) return {.length = k};
    lo = 0x80, hi = 0xBF;
    cp = (cp << 6) | (b & 0x3F);
  }
  return {cp, len, true};
}

std::string escape_name(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  for (std::size_t i = 0; i < raw.size();) {
    if (raw[i] == '\\') {
      out += "\\\\";
      ++i;
      continue;
    }
    const utf8_char c = decode_utf8(raw, i);
    if (!c.valid) {  // escaped byte by byte: the mapping stays reversible
      const auto b = static_cast<unsigned char>(raw[i]);
      out += "\\x";
      out += hex_digits[b >> 4];
      out += hex_digits[b & 0xF];
      ++i;
      continue;
    }
    out.append(raw.substr(i, c.length));
    i += c.length;
  }
  return out;
}

bool from_hex(std::string_view hex, std::span<std::uint8_t> out) {
  if (hex.size() != out.size() * 2) {
    return false;
  }
  // Table lookup: hash sets parse tens of millions of digests.
  static constexpr auto table = [] {
    std::array<std::int8_t, 256> t{};
    t.fill(-1);
    for (int c = '0'; c <= '9'; ++c) t[c] = static_cast<std::int8_t>(c - '0');
    for (int c = 'a'; c <= 'f'; ++c) t[c] = static_cast<std::int8_t>(c - 'a' + 10);
    for (int c = 'A'; c <= 'F'; ++c) t[c] = static_cast<std::int8_t>(c - 'A' + 10);
    return t;
  }();
  // One check at the end instead of a branch per digit: invalid digits are
  // negative, so their sign bit survives the OR.
  int bad = 0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    const int hi = table[static_cast<unsigned char>(hex[2 * i])];
    const int lo = table[static_cast<unsigned char>(hex[2 * i + 1])];
    bad |= hi | lo;
    out[i] = static_cast<std::uint8_t>((hi << 4) | (lo & 0xF));
  }
  return bad >= 0;
}

std::string iso8601(std::int64_t unix_seconds) {
  std::tm tm{};
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  // Timestamps come from untrusted metadata: outside years 0..9999 there is
  // no valid RFC 3339 form, and the caller reports them as unknown.
  if (gmtime_r(&t, &tm) == nullptr || tm.tm_year < -1900 || tm.tm_year > 9999 - 1900) {
    return {};
  }
  char buf[32];
  const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return std::string(buf, n);
}

}  // namespace borderscan::scanner
