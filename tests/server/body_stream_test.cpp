#include "borderscan/server/body_stream.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <system_error>
#include <vector>

#include "support/test_support.hpp"

namespace borderscan::server {
namespace {

// Reads the stream to its end in pieces of `piece` bytes.
std::string drain(body_stream& s, std::size_t piece) {
  std::string out;
  std::vector<char> buf(piece);
  for (;;) {
    const std::size_t n = s.read(buf);
    if (n == 0) {
      return out;
    }
    EXPECT_LE(n, piece);
    out.append(buf.data(), n);
  }
}

std::string pattern(std::size_t size) {
  std::string s(size, '\0');
  for (std::size_t i = 0; i < size; ++i) {
    s[i] = static_cast<char>(i * 7 + (i >> 9));
  }
  return s;
}

TEST(BodyStream, FileStreamKnowsItsSizeAndReadsTheWholeFile) {
  test::scratch_dir dir;
  const std::string data = pattern(300'001);
  std::ofstream(dir / "f.bin", std::ios::binary) << data;
  file_body_stream s(dir / "f.bin");
  ASSERT_TRUE(s.size());
  EXPECT_EQ(*s.size(), data.size());
  EXPECT_EQ(drain(s, 4096), data);
  char c = 0;
  EXPECT_EQ(s.read({&c, 1}), 0U);  // stays at the end
}

TEST(BodyStream, MissingFileFailsWhenOpenedNotWhenRead) {
  test::scratch_dir dir;
  try {
    file_body_stream s(dir / "absent");
    FAIL() << "opened a missing file";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::errc::no_such_file_or_directory);
  }
  try {
    file_body_stream s(dir.path());
    FAIL() << "opened a directory as a file";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::errc::is_a_directory);
  }
}

TEST(BodyStream, FileThatShrinksWhileSentFailsTheReadAndOneThatGrowsIsCut) {
  test::scratch_dir dir;
  std::ofstream(dir / "f.bin", std::ios::binary) << pattern(10'000);
  file_body_stream shrinking(dir / "f.bin");
  std::filesystem::resize_file(dir / "f.bin", 4'000);
  std::vector<char> buf(8'192);
  EXPECT_EQ(shrinking.read(buf), 4'000U);
  EXPECT_THROW(shrinking.read(buf), std::system_error);

  file_body_stream growing(dir / "f.bin");
  std::ofstream(dir / "f.bin", std::ios::binary | std::ios::app) << "more";
  EXPECT_EQ(drain(growing, 1'000).size(), 4'000U);
}

TEST(BodyStream, ChunkedStreamSplitsAndJoinsThePiecesOfItsGenerator) {
  std::vector<std::string> pieces = {"a", std::string(5'000, 'b'), "", "never read"};
  std::size_t calls = 0;
  chunked_body_stream s([&] { return pieces.at(calls++); });
  EXPECT_FALSE(s.size());
  EXPECT_EQ(drain(s, 1'024), "a" + std::string(5'000, 'b'));
  EXPECT_EQ(calls, 3U);  // the empty piece ended it
  char c = 0;
  EXPECT_EQ(s.read({&c, 1}), 0U);
  EXPECT_EQ(calls, 3U);
}

TEST(BodyStream, ChunkedStreamPassesOnItsGeneratorsException) {
  chunked_body_stream s([]() -> std::string { throw std::runtime_error("store gone"); });
  char c = 0;
  EXPECT_THROW(s.read({&c, 1}), std::runtime_error);
}

}  // namespace
}  // namespace borderscan::server
