#include "borderscan/server/upload.hpp"

#include <gtest/gtest.h>

#include <fstream>

#include "borderscan/server/problem.hpp"
#include "support/test_support.hpp"

namespace borderscan::server {
namespace {

// SHA-256 of "hello" in hex and base64.
constexpr const char* hello_hex = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
constexpr const char* hello_b64 = "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=";

TEST(Upload, HashesWhatItWrites) {
  test::scratch_dir dir;
  spool_file f(dir / "a.part");
  boost::beast::error_code ec;
  f.write("hel", 3, ec);
  f.write("lo", 2, ec);
  ASSERT_FALSE(ec);
  EXPECT_EQ(f.finish(ec), hello_hex);
  EXPECT_EQ(f.size(), 5U);
}

TEST(Upload, RemovesUncommittedFileAndKeepsCommittedOne) {
  test::scratch_dir dir;
  {
    spool_file f(dir / "a.part");
    EXPECT_TRUE(std::filesystem::exists(dir / "a.part"));
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "a.part"));
  {
    spool_file f(dir / "b.part");
    f.commit(dir / "b.img");
  }
  EXPECT_TRUE(std::filesystem::exists(dir / "b.img"));
}

TEST(Upload, RefusesToReuseAnExistingSpoolName) {
  test::scratch_dir dir;
  std::ofstream(dir / "x.part") << "x";
  EXPECT_THROW(spool_file(dir / "x.part"), std::system_error);
}

TEST(Upload, ReadsSha256FromContentDigest) {
  EXPECT_EQ(content_digest_sha256(std::string("sha-256=:") + hello_b64 + ":"), hello_hex);
  EXPECT_EQ(content_digest_sha256(std::string("sha-512=:AAAA:, sha-256=:") + hello_b64 + ":"), hello_hex);
  EXPECT_EQ(content_digest_sha256("sha-512=:AAAA:"), std::nullopt);
}

TEST(Upload, RejectsMalformedDigests) {
  EXPECT_THROW(content_digest_sha256("sha-256=abc"), http_error);
  EXPECT_THROW(content_digest_sha256("sha-256=:AAAA:"), http_error);  // not 32 bytes
  EXPECT_THROW(content_digest_sha256("sha-256=:!!!!:"), http_error);
  EXPECT_THROW(normalise_sha256_hex("abc"), http_error);
  EXPECT_EQ(normalise_sha256_hex("2CF24DBA5FB0A30E26E83B2AC5B9E29E1B161E5C1FA7425E73043362938B9824"), hello_hex);
}

TEST(Upload, DecodesBase64WithPadding) {
  EXPECT_EQ(base64_decode("aGk="), "hi");
  EXPECT_EQ(base64_decode("aGkh"), "hi!");
  EXPECT_EQ(base64_decode("aA=="), "h");
  EXPECT_EQ(base64_decode("aA="), std::nullopt);
  EXPECT_EQ(base64_decode("a=A="), std::nullopt);
}

}  // namespace
}  // namespace borderscan::server
