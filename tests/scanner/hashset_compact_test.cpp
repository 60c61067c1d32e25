// Compact hash-set files (.bhs): written by hashset_writer, mapped by
// hashset_db::load. Round trips, runs and merges, and files that are
// truncated, corrupted or hostile.
#include "borderscan/scanner/hashset.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <array>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "borderscan/scanner/error.hpp"
#include "borderscan/scanner/text.hpp"
#include "support/test_support.hpp"

namespace sc = borderscan::scanner;
namespace fs = std::filesystem;
using borderscan::test::scratch_dir;

namespace {

template <std::size_t N>
std::array<std::uint8_t, N> digest(const std::string& hex) {
  std::array<std::uint8_t, N> out{};
  EXPECT_TRUE(sc::from_hex(hex, out)) << hex;
  return out;
}

const std::string empty_md5 = "d41d8cd98f00b204e9800998ecf8427e";
const std::string empty_sha1 = "da39a3ee5e6b4b0d3255bfef95601890afd80709";
const std::string empty_sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const auto no_md5 = digest<16>(std::string(32, '0'));
const auto no_sha1 = digest<20>(std::string(40, '0'));
const auto no_sha256 = digest<32>(std::string(64, '0'));

std::array<std::uint8_t, 32> random_sha256(std::mt19937_64& rng) {
  std::array<std::uint8_t, 32> d{};
  for (std::size_t i = 0; i < 32; i += 8) {
    const std::uint64_t v = rng();
    std::memcpy(d.data() + i, &v, 8);
  }
  return d;
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_all(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
}

template <class T>
void put(std::string& bytes, std::size_t offset, T value) {
  std::memcpy(bytes.data() + offset, &value, sizeof value);
}

// A small valid file with one entry per algorithm.
fs::path write_small(const fs::path& dir, const std::string& name = "small",
                     sc::hashset_kind kind = sc::hashset_kind::known_bad) {
  const fs::path out = dir / (name + ".bhs");
  sc::hashset_writer w(out, name, kind);
  w.add(digest<16>(empty_md5), "md5 entry");
  w.add(digest<20>(empty_sha1), "");
  w.add(digest<32>(empty_sha256), "empty-file");
  w.finish();
  return out;
}

void expect_rejected(const fs::path& file, const std::string& what_contains) {
  sc::hashset_db db;
  try {
    db.load(file, sc::hashset_kind::known_bad);
    ADD_FAILURE() << "expected " << file << " to be rejected (" << what_contains << ")";
  } catch (const sc::scan_error& e) {
    EXPECT_EQ(e.code(), sc::scan_errc::rules_invalid);
    EXPECT_NE(std::string(e.what()).find(what_contains), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(file.filename().string()), std::string::npos) << e.what();
  }
}

}  // namespace

TEST(CompactHashSet, RoundTripsEveryAlgorithmWithNames) {
  scratch_dir tmp;
  const fs::path out = tmp / "field.bhs";
  sc::hashset_writer::options opt;
  opt.source_format = "text";
  opt.source_file = "field.txt";
  sc::hashset_writer w(out, "field-set", sc::hashset_kind::known_bad, opt);
  w.add(digest<16>(empty_md5), "empty sample");
  w.add(digest<20>(empty_sha1), "");
  w.add(digest<32>(empty_sha256), "empty-file");
  w.add(digest<32>(empty_sha256), "a second name");  // a duplicate: the first name stays
  const auto summary = w.finish();
  EXPECT_EQ(summary.added, 4u);
  EXPECT_EQ(summary.duplicates, 1u);
  EXPECT_EQ(summary.info.md5, 1u);
  EXPECT_EQ(summary.info.sha1, 1u);
  EXPECT_EQ(summary.info.sha256, 1u);
  EXPECT_EQ(summary.info.entries(), 3u);

  struct stat st {};
  ASSERT_EQ(::stat(out.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(std::distance(fs::directory_iterator(tmp.path()), fs::directory_iterator()), 1)
      << "temporary files left behind";

  const auto info = sc::read_compact_hashset_info(out);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->name, "field-set");
  EXPECT_EQ(info->kind, sc::hashset_kind::known_bad);
  EXPECT_EQ(info->source_format, "text");
  EXPECT_EQ(info->source_file, "field.txt");
  EXPECT_EQ(info->file_size, fs::file_size(out));
  EXPECT_EQ(info->content_sha256, summary.info.content_sha256);
  EXPECT_TRUE(sc::verify_compact_hashset(out));

  sc::hashset_db db;
  db.load(out, sc::hashset_kind::known_bad);
  db.seal();
  ASSERT_EQ(db.sets().size(), 1u);
  EXPECT_EQ(db.sets()[0].name, "field-set");
  EXPECT_EQ(db.sets()[0].entries, 3u);
  EXPECT_EQ(db.sets()[0].fingerprint.size(), 512u);
  EXPECT_EQ(db.sets()[0].fingerprint, read_all(out).substr(0, 512));
  EXPECT_EQ(db.size(), 3u);

  const auto hits = db.lookup(digest<16>(empty_md5), digest<20>(empty_sha1), digest<32>(empty_sha256));
  ASSERT_EQ(hits.size(), 3u);
  EXPECT_EQ(hits[0].algorithm, "sha256");
  EXPECT_EQ(hits[0].entry, "empty-file");
  EXPECT_EQ(hits[0].set, "field-set");
  EXPECT_EQ(hits[0].kind, sc::hashset_kind::known_bad);
  EXPECT_EQ(hits[1].algorithm, "sha1");
  EXPECT_EQ(hits[1].entry, "");
  EXPECT_EQ(hits[2].algorithm, "md5");
  EXPECT_EQ(hits[2].entry, "empty sample");
  EXPECT_TRUE(db.lookup(no_md5, no_sha1, no_sha256).empty());
}

TEST(CompactHashSet, SetNameFromTheLoaderWinsOverTheFiles) {
  scratch_dir tmp;
  const fs::path file = write_small(tmp.path());
  sc::hashset_db db;
  db.load(file, sc::hashset_kind::known_bad, "renamed");
  EXPECT_EQ(db.sets()[0].name, "renamed");
  EXPECT_EQ(db.lookup(no_md5, no_sha1, digest<32>(empty_sha256)).at(0).set, "renamed");
}

TEST(CompactHashSet, MixesWithTextSetsInOneDatabase) {
  scratch_dir tmp;
  const fs::path compact = write_small(tmp.path(), "compact", sc::hashset_kind::known_good);
  std::ofstream(tmp / "text.known-bad.txt") << empty_sha256 << " from text\n";
  sc::hashset_db db;
  db.load(tmp / "text.known-bad.txt", sc::hashset_kind::known_bad);
  db.load(compact, sc::hashset_kind::known_good);
  db.seal();
  EXPECT_EQ(db.size(), 4u);
  const auto hits = db.lookup(no_md5, no_sha1, digest<32>(empty_sha256));
  ASSERT_EQ(hits.size(), 2u);
  EXPECT_EQ(hits[0].set, "text");
  EXPECT_EQ(hits[0].entry, "from text");
  EXPECT_EQ(hits[1].set, "compact");
  EXPECT_EQ(hits[1].kind, sc::hashset_kind::known_good);
}

TEST(CompactHashSet, EmptySetLoadsAndFindsNothing) {
  scratch_dir tmp;
  const fs::path out = tmp / "empty.bhs";
  sc::hashset_writer w(out, "empty", sc::hashset_kind::known_good);
  const auto summary = w.finish();
  EXPECT_EQ(summary.info.entries(), 0u);
  sc::hashset_db db;
  db.load(out, sc::hashset_kind::known_good);
  EXPECT_EQ(db.size(), 0u);
  EXPECT_EQ(db.sets().size(), 1u);
  EXPECT_TRUE(db.lookup(digest<16>(empty_md5), digest<20>(empty_sha1), digest<32>(empty_sha256)).empty());
}

TEST(CompactHashSet, MergesManyRunsAndFindsEveryEntry) {
  // A 64 KiB sort buffer makes dozens of runs; duplicates land in other runs
  // than their first copy.
  scratch_dir tmp;
  std::mt19937_64 rng(5);
  std::vector<std::array<std::uint8_t, 32>> digests;
  for (int i = 0; i < 60'000; ++i) {
    digests.push_back(random_sha256(rng));
  }
  const fs::path out = tmp / "runs.bhs";
  sc::hashset_writer::options opt;
  opt.memory_bytes = 64 << 10;
  sc::hashset_writer w(out, "runs", sc::hashset_kind::known_bad, opt);
  for (std::size_t i = 0; i < digests.size(); ++i) {
    w.add(digests[i], "entry " + std::to_string(i % 1000));
  }
  for (std::size_t i = 0; i < digests.size(); i += 7) {
    w.add(digests[i], "");  // unnamed repeats: the named entry stays
  }
  w.add(digests[3], "entry 999");  // a named repeat: the first name stays
  const auto summary = w.finish();
  EXPECT_EQ(summary.info.sha256, digests.size());
  EXPECT_EQ(summary.duplicates, (digests.size() + 6) / 7 + 1);
  EXPECT_EQ(summary.info.names, 1001u);  // 1000 names and the empty one

  sc::hashset_db db;
  db.load(out, sc::hashset_kind::known_bad);
  std::size_t found = 0;
  for (std::size_t i = 0; i < digests.size(); ++i) {
    const auto hits = db.lookup(no_md5, no_sha1, digests[i]);
    if (hits.size() == 1 && hits[0].entry == "entry " + std::to_string(i % 1000)) {
      ++found;
    }
  }
  EXPECT_EQ(found, digests.size());
  for (int i = 0; i < 1000; ++i) {
    EXPECT_TRUE(db.lookup(no_md5, no_sha1, random_sha256(rng)).empty());
  }
}

TEST(CompactHashSet, FindsEveryEntryOfASetThatIsNotUniform) {
  // Lookups guess a digest's place from its bits; digests that crowd one
  // corner (shared leading bytes, runs of neighbours) must still be found,
  // through the binary search that a long walk falls back to.
  scratch_dir tmp;
  std::vector<std::array<std::uint8_t, 32>> digests;
  for (std::uint32_t i = 0; i < 20'000; ++i) {
    std::array<std::uint8_t, 32> d{};
    d[0] = static_cast<std::uint8_t>(i % 3);  // three slices only
    d[20] = static_cast<std::uint8_t>(i >> 8);
    d[31] = static_cast<std::uint8_t>(i);
    digests.push_back(d);
  }
  std::mt19937_64 rng(9);
  for (int i = 0; i < 2000; ++i) {
    digests.push_back(random_sha256(rng));
  }
  const fs::path out = tmp / "skewed.bhs";
  sc::hashset_writer w(out, "skewed", sc::hashset_kind::known_bad);
  for (const auto& d : digests) {
    w.add(d, "");
  }
  EXPECT_EQ(w.finish().info.sha256, digests.size());
  sc::hashset_db db;
  db.load(out, sc::hashset_kind::known_bad);
  std::size_t found = 0;
  for (const auto& d : digests) {
    found += db.lookup(no_md5, no_sha1, d).size();
  }
  EXPECT_EQ(found, digests.size());
  for (auto d : std::vector<std::array<std::uint8_t, 32>>(digests.begin(), digests.begin() + 3000)) {
    d[25] ^= 1;  // a neighbour of a listed digest
    EXPECT_TRUE(db.lookup(no_md5, no_sha1, d).empty());
  }
}

TEST(CompactHashSet, ReplacesAnExistingFileAtomically) {
  scratch_dir tmp;
  const fs::path file = write_small(tmp.path(), "set");
  const std::string before = read_all(file);
  {
    sc::hashset_writer w(file, "set", sc::hashset_kind::known_bad);
    w.add(digest<32>(std::string(64, 'a')), "new");
    // Abandoned without finish(): the old file stays as it was.
  }
  EXPECT_EQ(read_all(file), before);
  sc::hashset_writer w(file, "set", sc::hashset_kind::known_bad);
  w.add(digest<32>(std::string(64, 'a')), "new");
  w.finish();
  sc::hashset_db db;
  db.load(file, sc::hashset_kind::known_bad);
  EXPECT_EQ(db.size(), 1u);
  EXPECT_EQ(std::distance(fs::directory_iterator(tmp.path()), fs::directory_iterator()), 1);
}

TEST(CompactHashSet, WriterRejectsBadNamesAndDigestSizes) {
  scratch_dir tmp;
  for (const std::string& bad : std::vector<std::string>{"", ".hidden", "a/b", "with space", std::string(65, 'x')}) {
    EXPECT_THROW(sc::hashset_writer(tmp / "x.bhs", bad, sc::hashset_kind::known_bad), std::invalid_argument) << bad;
  }
  sc::hashset_writer w(tmp / "x.bhs", "x", sc::hashset_kind::known_bad);
  const std::array<std::uint8_t, 12> short_digest{};
  EXPECT_THROW(w.add(short_digest, "x"), std::invalid_argument);
  EXPECT_TRUE(sc::is_valid_hashset_name("NSRL_2024.03-modern"));
  EXPECT_FALSE(sc::is_valid_hashset_name("../x"));
}

TEST(CompactHashSet, KindGivenMustBeTheImportedKind) {
  scratch_dir tmp;
  const fs::path file = write_small(tmp.path(), "nsrl", sc::hashset_kind::known_good);
  sc::hashset_db db;
  try {
    db.load(file, sc::hashset_kind::known_bad);
    FAIL() << "expected a kind mismatch";
  } catch (const sc::scan_error& e) {
    EXPECT_EQ(e.code(), sc::scan_errc::rules_invalid);
    EXPECT_NE(std::string(e.what()).find(":known-good"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(db.sets().empty());
}

TEST(CompactHashSet, RejectsTruncatedAndExtendedFiles) {
  scratch_dir tmp;
  const std::string good = read_all(write_small(tmp.path()));
  for (const std::size_t size :
       {std::size_t{8}, std::size_t{100}, std::size_t{511}, std::size_t{512}, std::size_t{600}, good.size() - 1}) {
    const fs::path cut = tmp / ("cut" + std::to_string(size) + ".bhs");
    write_all(cut, good.substr(0, size));
    expect_rejected(cut, size < 512 ? "shorter than its header" : "truncated");
  }
  const fs::path longer = tmp / "longer.bhs";
  write_all(longer, good + "x");
  expect_rejected(longer, "appended to");
  // A few bytes of the magic and nothing else: not a compact file, nor a text line.
  const fs::path stub = tmp / "stub.bhs";
  write_all(stub, good.substr(0, 4));
  EXPECT_THROW(sc::hashset_db().load(stub, sc::hashset_kind::known_bad), sc::scan_error);
}

TEST(CompactHashSet, RejectsHostileHeaders) {
  scratch_dir tmp;
  const std::string good = read_all(write_small(tmp.path()));
  struct mutation {
    const char* label;
    std::size_t offset;
    std::uint64_t value;
    int width;
    const char* expect;
  };
  const std::uint64_t huge = ~std::uint64_t{0};
  const std::vector<mutation> mutations = {
      {"version", 8, 2, 4, "format version 2"},
      {"header size", 12, 4096, 4, "header size"},
      {"kind", 24, 7, 4, "unknown kind"},
      {"md5 entries", 32, huge, 8, "records do not fit"},
      {"md5 entries just too many", 32, 20, 8, "records do not fit"},
      {"md5 records offset", 40, huge - 3, 8, "records do not fit"},
      {"md5 records inside the header", 40, 16, 8, "records do not fit"},
      {"md5 index offset", 48, huge - 100, 8, "prefix index outside"},
      {"md5 index bits", 56, 40, 4, "bits"},
      {"md5 record size", 60, 36, 4, "record size"},
      {"sha256 entries", 96, std::uint64_t{1} << 60, 8, "records do not fit"},
      {"names count zero", 128, 0, 8, "name offsets"},
      {"names count", 128, huge / 8, 8, "name offsets"},
      {"names offsets", 136, huge - 8, 8, "name offsets"},
      {"names blob", 144, huge - 1, 8, "names outside"},
      {"names blob size", 152, huge, 8, "names outside"},
      {"set name length zero", 192, 0, 4, "impossible length"},
      {"set name length", 192, 1000, 4, "impossible length"},
      {"source length", 200, huge, 4, "impossible length"},
  };
  for (const auto& m : mutations) {
    std::string bytes = good;
    if (m.width == 4) {
      put(bytes, m.offset, static_cast<std::uint32_t>(m.value));
    } else {
      put(bytes, m.offset, m.value);
    }
    const fs::path file = tmp / (std::string("hostile-") + std::to_string(m.offset) + ".bhs");
    write_all(file, bytes);
    SCOPED_TRACE(m.label);
    expect_rejected(file, m.expect);
    EXPECT_THROW(sc::read_compact_hashset_info(file), sc::scan_error);
  }
}

TEST(CompactHashSet, CorruptSectionsGiveWrongAnswersNeverBadReads) {
  // Header intact, sections garbage: the prefix index and the name offsets
  // point anywhere. Lookups must stay inside the mapping (the ASan build
  // checks that), and verify_compact_hashset notices the change.
  scratch_dir tmp;
  const fs::path file = write_small(tmp.path());
  std::string bytes = read_all(file);
  for (std::size_t i = 512; i < bytes.size(); ++i) {
    bytes[i] = static_cast<char>(0xff);
  }
  write_all(file, bytes);
  EXPECT_FALSE(sc::verify_compact_hashset(file));
  sc::hashset_db db;
  db.load(file, sc::hashset_kind::known_bad);
  const auto ff32 = digest<32>(std::string(64, 'f'));
  const auto hits = db.lookup(digest<16>(std::string(32, 'f')), digest<20>(std::string(40, 'f')), ff32);
  for (const auto& h : hits) {
    EXPECT_EQ(h.entry, "");  // name index 0xffffffff is out of range: unnamed
  }
  EXPECT_TRUE(db.lookup(digest<16>(empty_md5), digest<20>(empty_sha1), digest<32>(empty_sha256)).empty());

  // Only the name offsets garbage: the records still match, their names are dropped.
  const fs::path names = write_small(tmp.path(), "names");
  bytes = read_all(names);
  std::uint64_t offsets_at = 0, count = 0;
  std::memcpy(&offsets_at, bytes.data() + 136, 8);
  std::memcpy(&count, bytes.data() + 128, 8);
  for (std::uint64_t i = 0; i <= count; ++i) {
    put(bytes, offsets_at + i * 8, ~std::uint64_t{0} - i);
  }
  write_all(names, bytes);
  sc::hashset_db db2;
  db2.load(names, sc::hashset_kind::known_bad);
  const auto named = db2.lookup(digest<16>(empty_md5), digest<20>(empty_sha1), digest<32>(empty_sha256));
  ASSERT_EQ(named.size(), 3u);
  for (const auto& h : named) {
    EXPECT_EQ(h.entry, "");
  }
}

TEST(CompactHashSet, HostileNamesComeOutAsValidUtf8) {
  scratch_dir tmp;
  const fs::path file = tmp / "names.bhs";
  sc::hashset_writer w(file, "names", sc::hashset_kind::known_bad);
  w.add(digest<32>(empty_sha256), std::string("bad\xff\xfe name", 10));
  w.finish();
  sc::hashset_db db;
  db.load(file, sc::hashset_kind::known_bad);
  const auto hits = db.lookup(no_md5, no_sha1, digest<32>(empty_sha256));
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].entry, "bad\\xff\\xfe name");
}

TEST(CompactHashSet, TextFilesAreNotMistakenForCompactOnes) {
  scratch_dir tmp;
  std::ofstream(tmp / "plain.txt") << empty_sha256 << "\n";
  EXPECT_FALSE(sc::read_compact_hashset_info(tmp / "plain.txt"));
  EXPECT_THROW(sc::verify_compact_hashset(tmp / "plain.txt"), sc::scan_error);
  EXPECT_THROW(sc::read_compact_hashset_info(tmp / "missing.bhs"), sc::scan_error);
}
