#include "borderscan/server/upload.hpp"

#include <gtest/gtest.h>

#include <fstream>

#include "borderscan/scanner/digest.hpp"
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

TEST(Upload, BackgroundHashMatchesTheDirectHashAcrossChunkEdges) {
  // Small chunks and a short queue so the thread starts, the queue fills and
  // buffers are reused; pieces of odd sizes straddle every chunk edge.
  std::string data(10'000, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) {
    data[i] = static_cast<char>(i * 131 + (i >> 7));
  }
  for (const std::size_t total : {std::size_t{0}, std::size_t{1}, std::size_t{63}, std::size_t{64}, std::size_t{65},
                                  std::size_t{640}, data.size()}) {
    for (const std::size_t piece : {std::size_t{1}, std::size_t{7}, std::size_t{64}, std::size_t{1000}}) {
      scanner::sha256_hasher direct;
      direct.update(data.data(), total);
      background_sha256 background(64, 2);
      for (std::size_t at = 0; at < total; at += piece) {
        background.update(data.data() + at, std::min(piece, total - at));
      }
      EXPECT_EQ(background.hex_digest(), direct.hex_digest()) << total << " bytes in pieces of " << piece;
    }
  }
}

TEST(Upload, BackgroundHashStopsCleanlyWhenAbandoned) {
  std::string data(100'000, 'x');
  background_sha256 abandoned(64, 2);
  abandoned.update(data.data(), data.size());
}  // the destructor joins the thread without a digest

TEST(Upload, WritesLargeFilesWholeWithWriteBehind) {
  test::scratch_dir dir;
  spool_file f(dir / "big.part");
  std::string block(1 << 20, '\0');
  scanner::sha256_hasher expected;
  boost::beast::error_code ec;
  for (int i = 0; i < 20; ++i) {
    std::fill(block.begin(), block.end(), static_cast<char>('a' + i));
    f.write(block.data(), block.size(), ec);
    ASSERT_FALSE(ec);
    expected.update(block.data(), block.size());
  }
  EXPECT_EQ(f.finish(ec), expected.hex_digest());
  ASSERT_FALSE(ec);
  EXPECT_EQ(std::filesystem::file_size(dir / "big.part"), 20U << 20);
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

}  // namespace
}  // namespace borderscan::server
