#include "borderscan/scanner/hashset.hpp"

#include <gtest/gtest.h>

#include <array>
#include <fstream>
#include <random>
#include <vector>

#include "borderscan/scanner/error.hpp"
#include "borderscan/scanner/text.hpp"
#include "support/test_support.hpp"

namespace sc = borderscan::scanner;
using borderscan::test::scratch_dir;

namespace {

template <std::size_t N>
std::array<std::uint8_t, N> digest(const std::string& hex) {
  std::array<std::uint8_t, N> out{};
  EXPECT_TRUE(sc::from_hex(hex, out));
  return out;
}

// Digests of the empty input.
const std::string empty_md5 = "d41d8cd98f00b204e9800998ecf8427e";
const std::string empty_sha1 = "da39a3ee5e6b4b0d3255bfef95601890afd80709";
const std::string empty_sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

}  // namespace

TEST(HashSet, LooksUpEveryAlgorithmWithNames) {
  scratch_dir tmp;
  std::ofstream(tmp / "bad.known-bad.txt") << "# comment\n\n"
                                           << empty_md5 << "  empty sample\n"
                                           << "DA39A3EE5E6B4B0D3255BFEF95601890AFD80709\n";
  std::ofstream(tmp / "good.txt") << empty_sha256 << " empty-file\n";
  sc::hashset_db db;
  db.load(tmp / "bad.known-bad.txt", sc::hashset_kind::known_bad);
  db.load(tmp / "good.txt", sc::hashset_kind::known_good);
  db.seal();
  ASSERT_EQ(db.sets().size(), 2u);
  EXPECT_EQ(db.sets()[0].name, "bad");
  EXPECT_EQ(db.sets()[0].entries, 2u);
  EXPECT_EQ(db.size(), 3u);

  const auto hits = db.lookup(digest<16>(empty_md5), digest<20>(empty_sha1), digest<32>(empty_sha256));
  ASSERT_EQ(hits.size(), 3u);
  EXPECT_EQ(hits[0].set, "good");
  EXPECT_EQ(hits[0].kind, sc::hashset_kind::known_good);
  EXPECT_EQ(hits[0].entry, "empty-file");
  EXPECT_EQ(hits[1].algorithm, "sha1");
  EXPECT_EQ(hits[1].entry, "");
  EXPECT_EQ(hits[2].entry, "empty sample");

  const auto none =
      db.lookup(digest<16>(std::string(32, '1')), digest<20>(std::string(40, '1')), digest<32>(std::string(64, '1')));
  EXPECT_TRUE(none.empty());
}

TEST(HashSet, RejectsMalformedLineWithFileAndLine) {
  scratch_dir tmp;
  std::ofstream(tmp / "broken.txt") << empty_md5 << "\nnot-a-digest\n";
  sc::hashset_db db;
  try {
    db.load(tmp / "broken.txt", sc::hashset_kind::known_bad);
    FAIL() << "expected an error";
  } catch (const sc::scan_error& e) {
    EXPECT_NE(std::string(e.what()).find("broken.txt:2:"), std::string::npos) << e.what();
    EXPECT_EQ(e.code(), sc::scan_errc::rules_invalid);
  }
}

TEST(HashSet, FindsEntriesInALargeSet) {
  scratch_dir tmp;
  {
    std::ofstream out(tmp / "big.txt");
    char line[80];
    for (unsigned i = 0; i < 200000; ++i) {
      std::snprintf(line, sizeof line, "%056x%08x\n", i * 2654435761u, i);
      out << line;
    }
  }
  sc::hashset_db db;
  db.load(tmp / "big.txt", sc::hashset_kind::known_bad);
  db.seal();
  char probe[80];
  std::snprintf(probe, sizeof probe, "%056x%08x", 12345u * 2654435761u, 12345u);
  EXPECT_EQ(db.lookup(digest<16>(std::string(32, '0')), digest<20>(std::string(40, '0')), digest<32>(probe)).size(),
            1u);
  std::snprintf(probe, sizeof probe, "%056x%08x", 12345u * 2654435761u, 12346u);
  EXPECT_TRUE(db.lookup(digest<16>(std::string(32, '0')), digest<20>(std::string(40, '0')), digest<32>(probe)).empty());
}

TEST(HashSet, ParsesCommandLineKind) {
  EXPECT_EQ(sc::parse_hashset_arg("a.txt").second, sc::hashset_kind::known_bad);
  EXPECT_EQ(sc::parse_hashset_arg("a.txt:known-good").second, sc::hashset_kind::known_good);
  EXPECT_EQ(sc::parse_hashset_arg("a.txt:known-good").first, "a.txt");
  EXPECT_EQ(sc::parse_hashset_arg("/x/a.txt:known-bad").first, "/x/a.txt");
}

TEST(HashSet, FindsEveryEntryOfARandomSetWithCrlfLinesAndDuplicates) {
  // Spread over every bucket and large enough for the threaded, two-level
  // sort; CRLF endings take the bare-digest fast path.
  scratch_dir tmp;
  std::mt19937_64 rng(11);
  std::vector<std::string> lines;
  for (unsigned i = 0; i < 300'000; ++i) {
    const std::array<std::uint64_t, 4> words{rng(), rng(), rng(), rng()};
    char line[80];
    std::snprintf(line, sizeof line, "%016llx%016llx%016llx%016llx", static_cast<unsigned long long>(words[0]),
                  static_cast<unsigned long long>(words[1]), static_cast<unsigned long long>(words[2]),
                  static_cast<unsigned long long>(words[3]));
    lines.emplace_back(line);
  }
  {
    std::ofstream out(tmp / "random.txt", std::ios::binary);
    for (const auto& l : lines) {
      out << l << "\r\n";
    }
    out << lines[7] << "\r\n";  // a duplicate: both lines are entries
  }
  sc::hashset_db db;
  db.load(tmp / "random.txt", sc::hashset_kind::known_bad);
  db.seal();
  EXPECT_EQ(db.size(), lines.size() + 1);
  const auto md5 = digest<16>(std::string(32, '0'));
  const auto sha1 = digest<20>(std::string(40, '0'));
  std::size_t found = 0;
  for (const auto& l : lines) {
    found += db.lookup(md5, sha1, digest<32>(l)).empty() ? 0 : 1;
  }
  EXPECT_EQ(found, lines.size());
  EXPECT_EQ(db.lookup(md5, sha1, digest<32>(lines[7])).size(), 2u);
  std::string absent = lines[3];
  absent[63] = absent[63] == '0' ? '1' : '0';
  EXPECT_TRUE(db.lookup(md5, sha1, digest<32>(absent)).empty());
}

TEST(HashSet, RejectsA64CharacterLineThatIsNotHex) {
  scratch_dir tmp;
  std::ofstream(tmp / "bad.txt") << empty_sha256 << "\n" << std::string(63, 'a') << "g\n";
  sc::hashset_db db;
  try {
    db.load(tmp / "bad.txt", sc::hashset_kind::known_bad);
    FAIL() << "expected an error";
  } catch (const sc::scan_error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.txt:2:"), std::string::npos) << e.what();
  }
}
