#include "borderscan/scanner/digest.hpp"

#include <gtest/gtest.h>

#include <string>

namespace sc = borderscan::scanner;

namespace {

std::vector<std::uint8_t> bytes(std::string_view s) {
  return {s.begin(), s.end()};
}

}  // namespace

TEST(Digest, Sha256OfKnownInputs) {
  EXPECT_EQ(sc::sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sc::sha256_hex("hello"), "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
  sc::sha256_hasher pieces;
  pieces.update("hel", 3);
  pieces.update("lo", 2);
  EXPECT_EQ(pieces.hex_digest(), sc::sha256_hex("hello"));
}

TEST(Digest, HexIsLowerCase) {
  EXPECT_EQ(sc::to_hex(bytes("\x01\xAB\xff")), "01abff");
  EXPECT_EQ(sc::to_hex({}), "");
}

TEST(Digest, Base64RoundTripsEveryPaddingLength) {
  for (std::string_view s : {"", "h", "hi", "hi!", "hello world"}) {
    const std::string text = sc::base64_encode(bytes(s));
    const auto back = sc::base64_decode(text);
    ASSERT_TRUE(back.has_value()) << text;
    EXPECT_EQ(std::string(back->begin(), back->end()), s) << text;
  }
  EXPECT_EQ(sc::base64_encode(bytes("hi")), "aGk=");
  EXPECT_EQ(sc::base64_encode(bytes("h")), "aA==");
}

TEST(Digest, Base64RefusesWhatRfc4648DoesNotAllow) {
  for (std::string_view bad : {"aA=", "a=A=", "aGk", " aGk=", "aGk=\n", "a-_A", "====", "aA==aA=="}) {
    EXPECT_EQ(sc::base64_decode(bad), std::nullopt) << bad;
  }
}
