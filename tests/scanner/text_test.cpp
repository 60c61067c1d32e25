#include "borderscan/scanner/text.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstddef>
#include <string_view>
#include <tuple>

#include "borderscan/scanner/digest.hpp"

namespace sc = borderscan::scanner;

namespace {

// decode_utf8 as {code_point, length, valid}, for one EXPECT_EQ per case.
std::tuple<char32_t, std::size_t, bool> decode(std::string_view s, std::size_t i = 0) {
  const sc::utf8_char c = sc::decode_utf8(s, i);
  return {c.code_point, c.length, c.valid};
}

constexpr char32_t fffd = U'\uFFFD';

}  // namespace

TEST(TextDecodeUtf8, ValidOneToFourByteCharacters) {
  using std::tuple;
  EXPECT_EQ(decode("A"), tuple(U'A', 1u, true));
  EXPECT_EQ(decode(std::string_view("\0", 1)), tuple(U'\0', 1u, true));
  EXPECT_EQ(decode("\x7F"), tuple(U'\x7F', 1u, true));
  EXPECT_EQ(decode("\xC2\x80"), tuple(U'\x80', 2u, true));  // smallest 2-byte
  EXPECT_EQ(decode("\xC3\xA9"), tuple(U'é', 2u, true));
  EXPECT_EQ(decode("\xDF\xBF"), tuple(U'\x7FF', 2u, true));      // largest 2-byte
  EXPECT_EQ(decode("\xE0\xA0\x80"), tuple(U'\x800', 3u, true));  // smallest 3-byte
  EXPECT_EQ(decode("\xE6\x97\xA5"), tuple(U'日', 3u, true));
  EXPECT_EQ(decode("\xED\x9F\xBF"), tuple(U'\xD7FF', 3u, true));  // just below the surrogates
  EXPECT_EQ(decode("\xEE\x80\x80"), tuple(U'\xE000', 3u, true));  // just above them
  EXPECT_EQ(decode("\xEF\xBF\xBF"), tuple(U'\xFFFF', 3u, true));
  EXPECT_EQ(decode("\xF0\x90\x80\x80"), tuple(U'\x10000', 4u, true));  // smallest 4-byte
  EXPECT_EQ(decode("\xF0\x9F\x98\x80"), tuple(U'😀', 4u, true));
  EXPECT_EQ(decode("\xF4\x8F\xBF\xBF"), tuple(U'\x10FFFF', 4u, true));  // largest code point
  // At an offset, and only the bytes of one character are taken.
  EXPECT_EQ(decode("a\xC3\xA9z", 1), tuple(U'é', 2u, true));
  EXPECT_EQ(decode("\xE6\x97\xA5\xE6\x9C\xAC", 3), tuple(U'本', 3u, true));
}

TEST(TextDecodeUtf8, InvalidSequencesGiveTheirLongestValidPrefix) {
  using std::tuple;
  // Bytes that start no sequence.
  EXPECT_EQ(decode("\x80"), tuple(fffd, 1u, false));  // lone continuation byte
  EXPECT_EQ(decode("\xBF\xBF"), tuple(fffd, 1u, false));
  EXPECT_EQ(decode("\xFF"), tuple(fffd, 1u, false));
  EXPECT_EQ(decode("\xF8\x88\x80\x80\x80"), tuple(fffd, 1u, false));  // old 5-byte form
  // Overlong forms: C0/C1 never start one; E0 and F0 reject a low second byte.
  EXPECT_EQ(decode("\xC0\xAF"), tuple(fffd, 1u, false));  // overlong '/'
  EXPECT_EQ(decode("\xC1\xBF"), tuple(fffd, 1u, false));
  EXPECT_EQ(decode("\xE0\x80\xAF"), tuple(fffd, 1u, false));
  EXPECT_EQ(decode("\xE0\x9F\xBF"), tuple(fffd, 1u, false));
  EXPECT_EQ(decode("\xF0\x80\x80\xAF"), tuple(fffd, 1u, false));
  EXPECT_EQ(decode("\xF0\x8F\xBF\xBF"), tuple(fffd, 1u, false));
  // UTF-16 surrogates U+D800..U+DFFF.
  EXPECT_EQ(decode("\xED\xA0\x80"), tuple(fffd, 1u, false));
  EXPECT_EQ(decode("\xED\xBF\xBF"), tuple(fffd, 1u, false));
  // Past U+10FFFF.
  EXPECT_EQ(decode("\xF4\x90\x80\x80"), tuple(fffd, 1u, false));
  EXPECT_EQ(decode("\xF5\x80\x80\x80"), tuple(fffd, 1u, false));
  EXPECT_EQ(decode("\xF7\xBF\xBF\xBF"), tuple(fffd, 1u, false));
  // Truncated by the end of the input: the bytes present are a valid prefix.
  EXPECT_EQ(decode("\xC3"), tuple(fffd, 1u, false));
  EXPECT_EQ(decode("\xE2\x82"), tuple(fffd, 2u, false));
  EXPECT_EQ(decode("\xF0\x9F\x98"), tuple(fffd, 3u, false));
  EXPECT_EQ(decode("ab\xF0\x9F", 2), tuple(fffd, 2u, false));
  // Truncated by a byte that cannot continue it: that byte is not taken.
  EXPECT_EQ(decode("\xC3x"), tuple(fffd, 1u, false));
  EXPECT_EQ(decode("\xE6\x97x"), tuple(fffd, 2u, false));
  EXPECT_EQ(decode("\xF0\x9F\x98\xC3\xA9"), tuple(fffd, 3u, false));
  EXPECT_EQ(decode("\xE6\x97\xE6\x97\xA5"), tuple(fffd, 2u, false));
}

TEST(EscapeName, KeepsValidUtf8) {
  EXPECT_EQ(sc::escape_name("Привет мир.txt"), "Привет мир.txt");
  EXPECT_EQ(sc::escape_name("plain"), "plain");
  EXPECT_EQ(sc::escape_name("\r\n"), "\r\n");  // control characters are kept; JSON escapes them
}

TEST(EscapeName, EscapesInvalidBytesAndBackslashLosslessly) {
  EXPECT_EQ(sc::escape_name(std::string("a\xff"
                                        "b")),
            "a\\xffb");
  EXPECT_EQ(sc::escape_name("a\\xffb"), "a\\\\xffb");  // a literal backslash cannot be confused with an escape
  EXPECT_EQ(sc::escape_name(std::string("\xc0\xaf")), "\\xc0\\xaf");                    // overlong '/'
  EXPECT_EQ(sc::escape_name(std::string("\xed\xa0\x80")), "\\xed\\xa0\\x80");           // UTF-16 surrogate
  EXPECT_EQ(sc::escape_name(std::string("\xe2\x82")), "\\xe2\\x82");                    // truncated sequence
  EXPECT_EQ(sc::escape_name(std::string("\xf4\x90\x80\x80")), "\\xf4\\x90\\x80\\x80");  // past U+10FFFF
}

TEST(Hex, RoundTrips) {
  const std::array<std::uint8_t, 3> bytes{0x00, 0xab, 0xff};
  EXPECT_EQ(sc::to_hex(bytes), "00abff");
  std::array<std::uint8_t, 3> back{};
  EXPECT_TRUE(sc::from_hex("00ABff", back));
  EXPECT_EQ(back, bytes);
  EXPECT_FALSE(sc::from_hex("00abfg", back));
  EXPECT_FALSE(sc::from_hex("00ab", back));
}

TEST(Iso8601, FormatsUtc) {
  EXPECT_EQ(sc::iso8601(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(sc::iso8601(1577934246), "2020-01-02T03:04:06Z");
}

TEST(Iso8601, RejectsYearsWithoutAnRfc3339Form) {
  EXPECT_EQ(sc::iso8601(253402300799), "9999-12-31T23:59:59Z");
  EXPECT_EQ(sc::iso8601(253402300800), "");
  EXPECT_EQ(sc::iso8601(-62167219201), "");  // 1 second before year 0
  EXPECT_EQ(sc::iso8601(std::int64_t{1} << 62), "");
}
