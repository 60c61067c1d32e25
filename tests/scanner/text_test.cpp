#include "borderscan/scanner/text.hpp"

#include <gtest/gtest.h>

#include <array>

#include "borderscan/scanner/digest.hpp"

namespace sc = borderscan::scanner;

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
