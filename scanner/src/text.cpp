#include "borderscan/scanner/text.hpp"

#include <array>
#include <ctime>

namespace borderscan::scanner {
namespace {

// Length of the valid UTF-8 sequence starting at s[i], or 0 if invalid
// (overlong forms, surrogates and code points past U+10FFFF are invalid).
std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    return 1;
  }
  std::size_t len = 0;
  std::uint32_t cp = 0;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2;
    cp = b0 & 0x1F;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3;
    cp = b0 & 0x0F;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4;
    cp = b0 & 0x07;
  } else {
    return 0;
  }
  if (i + len > s.size()) {
    return 0;
  }
  for (std::size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) {
      return 0;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  static constexpr std::array<std::uint32_t, 5> min_for_len{0, 0, 0x80, 0x800, 0x10000};
  if (cp < min_for_len[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    return 0;
  }
  return len;
}

constexpr char hex_digits[] = "0123456789abcdef";

}  // namespace

std::string escape_name(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  for (std::size_t i = 0; i < raw.size();) {
    if (raw[i] == '\\') {
      out += "\\\\";
      ++i;
      continue;
    }
    const std::size_t len = utf8_sequence_length(raw, i);
    if (len == 0) {
      const auto b = static_cast<unsigned char>(raw[i]);
      out += "\\x";
      out += hex_digits[b >> 4];
      out += hex_digits[b & 0xF];
      ++i;
      continue;
    }
    out.append(raw.substr(i, len));
    i += len;
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
