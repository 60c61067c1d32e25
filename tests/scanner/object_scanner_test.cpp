#include "borderscan/scanner/object_scanner.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <fstream>

#include "borderscan/scanner/error.hpp"
#include "support/test_support.hpp"

namespace sc = borderscan::scanner;
using borderscan::test::scratch_dir;

namespace {

std::shared_ptr<const sc::rule_set> rules_from(const scratch_dir& dir, const std::string& yara_text,
                                               const std::string& hashset_line = {},
                                               sc::hashset_kind kind = sc::hashset_kind::known_bad) {
  borderscan::test::shipped_rules();  // makes sure libyara is initialised
  std::ofstream(dir / "test.yar") << yara_text;
  sc::rule_sources src;
  src.rule_paths.push_back(dir / "test.yar");
  if (!hashset_line.empty()) {
    std::ofstream(dir / "set.txt") << hashset_line << "\n";
    src.hashsets.emplace_back(dir / "set.txt", kind);
  }
  return sc::rule_set::load(src);
}

sc::file_entry entry_for(const std::string& path, std::uint64_t size) {
  sc::file_entry e;
  e.path = path;
  e.size = size;
  e.type = "regular";
  return e;
}

std::vector<std::byte> bytes_of(const std::string& s) {
  std::vector<std::byte> out(s.size());
  std::memcpy(out.data(), s.data(), s.size());
  return out;
}

// Returns fewer bytes than it claims to hold, like a truncated image.
class truncated_source final : public sc::content_source {
 public:
  truncated_source(std::uint64_t claimed, std::uint64_t real) : claimed_(claimed), real_(real) {}
  std::uint64_t size() const override { return claimed_; }
  std::size_t read_at(std::uint64_t offset, std::span<std::byte> out) override {
    if (offset >= real_) return 0;
    const std::size_t n = std::min<std::uint64_t>(out.size(), real_ - offset);
    std::memset(out.data(), 'x', n);
    return n;
  }

 private:
  std::uint64_t claimed_, real_;
};

class failing_source final : public sc::content_source {
 public:
  std::uint64_t size() const override { return 100; }
  std::size_t read_at(std::uint64_t, std::span<std::byte>) override {
    throw sc::scan_error(sc::scan_errc::read_failed, "device error");
  }
};

const char* const marker_rule = R"(
rule straddle_marker {
  meta: severity = "high" description = "test marker"
  strings: $m = "BORDERSCAN-STRADDLE-MARKER-0123456789"
  condition: $m
})";

}  // namespace

TEST(ObjectScanner, HashesAndClassifiesSmallContent) {
  scratch_dir tmp;
  sc::limits lim;
  sc::object_scanner scanner(lim, rules_from(tmp, "rule never { condition: false }"));
  const auto data = bytes_of("abc");
  sc::memory_source src(data);
  auto e = entry_for("/a.txt", 3);
  const auto out = scanner.scan(e, src);
  EXPECT_TRUE(out.errors.empty());
  EXPECT_TRUE(e.content_complete);
  EXPECT_EQ(e.bytes_read, 3u);
  EXPECT_EQ(e.md5, "900150983cd24fb0d6963f7d28e17f72");
  EXPECT_EQ(e.sha1, "a9993e364706816aba3e25717850c26c9cd0d89d");
  EXPECT_EQ(e.sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(e.mime, "text/plain");
  EXPECT_TRUE(e.findings.empty());
}

TEST(ObjectScanner, FindsMatchStraddlingBlockBoundary) {
  scratch_dir tmp;
  sc::limits lim;
  const std::size_t block = 4096, overlap = 1024;
  sc::object_scanner scanner(lim, rules_from(tmp, marker_rule), block, overlap);
  const std::string marker = "BORDERSCAN-STRADDLE-MARKER-0123456789";
  // The marker starts 10 bytes before the first block ends, and the content
  // spans several blocks, so YARA sees it only through the overlap.
  std::string content(block * 5 + 123, '.');
  content.replace(block - 10, marker.size(), marker);
  const auto data = bytes_of(content);
  sc::memory_source src(data);
  auto e = entry_for("/big.bin", content.size());
  scanner.scan(e, src);
  ASSERT_EQ(e.findings.size(), 1u);
  EXPECT_EQ(e.findings[0].rule, "straddle_marker");
  EXPECT_EQ(e.findings[0].level, sc::severity::high);
  EXPECT_EQ(e.findings[0].meta.at("description"), "test marker");
  EXPECT_TRUE(e.content_complete);
  EXPECT_EQ(e.bytes_read, content.size());

  // The hashes cover every byte once, whatever the block layout.
  sc::object_scanner whole(lim, rules_from(tmp, marker_rule), 1 << 20, 0);
  sc::memory_source again(data);
  auto e2 = entry_for("/big.bin", content.size());
  whole.scan(e2, again);
  EXPECT_EQ(e.sha256, e2.sha256);
  EXPECT_EQ(e.md5, e2.md5);
}

TEST(ObjectScanner, FindsMatchInLastBlockAndReadsDataInLaterBlocks) {
  scratch_dir tmp;
  sc::limits lim;
  sc::object_scanner scanner(lim, rules_from(tmp, std::string(marker_rule) + R"(
rule late_offset { condition: uint32be(20000) == 0xDEADBEEF and filesize == 20480 })"),
                             4096, 512);
  std::string content(20480, '\0');
  const std::string marker = "BORDERSCAN-STRADDLE-MARKER-0123456789";
  content.replace(content.size() - marker.size(), marker.size(), marker);
  content[20000] = '\xDE';
  content[20001] = '\xAD';
  content[20002] = '\xBE';
  content[20003] = '\xEF';
  const auto data = bytes_of(content);
  sc::memory_source src(data);
  auto e = entry_for("/x", content.size());
  scanner.scan(e, src);
  std::vector<std::string> rules;
  for (const auto& f : e.findings) rules.push_back(f.rule);
  EXPECT_NE(std::find(rules.begin(), rules.end(), "straddle_marker"), rules.end());
  EXPECT_NE(std::find(rules.begin(), rules.end(), "late_offset"), rules.end());
}

TEST(ObjectScanner, SetsExternalsPerFile) {
  scratch_dir tmp;
  sc::limits lim;
  sc::object_scanner scanner(lim, rules_from(tmp, R"(
rule externals_seen {
  condition: filename == "photo.jpg" and extension == ".jpg" and filepath == "/DCIM/100" and filetype == "image/png"
})"));
  const std::string png("\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0\x90wS\xde", 33);
  const auto data = bytes_of(png);
  sc::memory_source src(data);
  auto e = entry_for("/DCIM/100/photo.jpg", data.size());
  scanner.scan(e, src);
  EXPECT_EQ(e.mime, "image/png");
  ASSERT_EQ(e.findings.size(), 1u);
  EXPECT_EQ(e.findings[0].rule, "externals_seen");
  EXPECT_EQ(e.findings[0].level, sc::severity::medium);  // no severity meta: default
}

TEST(ObjectScanner, ReportsShortReadWithoutHashes) {
  scratch_dir tmp;
  sc::limits lim;
  sc::object_scanner scanner(lim, rules_from(tmp, "rule never { condition: false }"), 4096, 512);
  truncated_source src(10000, 6000);
  auto e = entry_for("/cut.bin", 10000);
  const auto out = scanner.scan(e, src);
  ASSERT_EQ(out.errors.size(), 1u);
  EXPECT_EQ(out.errors[0].code, "short_read");
  EXPECT_TRUE(out.errors[0].affects_verdict);
  EXPECT_EQ(e.bytes_read, 6000u);
  EXPECT_FALSE(e.content_complete);
  EXPECT_TRUE(e.sha256.empty());  // never a silently shorter hash
}

TEST(ObjectScanner, ReportsReadFailureOnDeletedFileAsEvidenceOnly) {
  scratch_dir tmp;
  sc::limits lim;
  sc::object_scanner scanner(lim, rules_from(tmp, "rule never { condition: false }"));
  failing_source src;
  auto e = entry_for("/gone.txt", 100);
  e.deleted = true;
  const auto out = scanner.scan(e, src);
  ASSERT_EQ(out.errors.size(), 1u);
  EXPECT_EQ(out.errors[0].code, "read_failed");
  EXPECT_NE(out.errors[0].message.find("device error"), std::string::npos);
  EXPECT_FALSE(out.errors[0].affects_verdict);
  EXPECT_FALSE(e.content_complete);
}

TEST(ObjectScanner, KnownBadHashIsAHighFinding) {
  scratch_dir tmp;
  sc::limits lim;
  sc::object_scanner scanner(lim,
                             rules_from(tmp, "rule never { condition: false }",
                                        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad abc-sample"));
  const auto data = bytes_of("abc");
  sc::memory_source src(data);
  auto e = entry_for("/abc", 3);
  scanner.scan(e, src);
  ASSERT_EQ(e.findings.size(), 1u);
  EXPECT_EQ(e.findings[0].source, "hashset");
  EXPECT_EQ(e.findings[0].rule, "abc-sample");
  EXPECT_EQ(e.findings[0].rule_namespace, "set");
  EXPECT_EQ(e.findings[0].level, sc::severity::high);
}

TEST(ObjectScanner, SkipsYaraForKnownGoodOnlyWhenAsked) {
  scratch_dir tmp;
  const std::string rule = "rule any_abc { strings: $a = \"abc\" condition: $a }";
  const std::string good = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
  const auto data = bytes_of("abc");
  for (bool skip : {false, true}) {
    sc::limits lim;
    lim.skip_yara_for_known_good = skip;
    sc::object_scanner scanner(lim, rules_from(tmp, rule, good, sc::hashset_kind::known_good));
    sc::memory_source src(data);
    auto e = entry_for("/abc", 3);
    scanner.scan(e, src);
    ASSERT_EQ(e.known.size(), 1u);
    EXPECT_EQ(e.known[0], "set");
    EXPECT_EQ(e.findings.size(), skip ? 0u : 1u) << "skip=" << skip;
  }
}

TEST(ObjectScanner, ExtensionMismatchIsAHeuristicFinding) {
  scratch_dir tmp;
  sc::limits lim;
  sc::object_scanner scanner(lim, rules_from(tmp, "rule never { condition: false }"));
  std::string elf(
      "\x7f"
      "ELF\x02\x01\x01",
      7);
  elf.resize(64, '\0');
  elf[16] = 2;   // ET_EXEC
  elf[18] = 62;  // x86-64
  const auto data = bytes_of(elf);
  sc::memory_source src(data);
  auto e = entry_for("/photos/holiday.jpg", data.size());
  scanner.scan(e, src);
  EXPECT_TRUE(e.extension_mismatch);
  ASSERT_EQ(e.findings.size(), 1u);
  EXPECT_EQ(e.findings[0].source, "heuristic");
  EXPECT_EQ(e.findings[0].rule, "extension_mismatch");
  EXPECT_EQ(e.findings[0].level, sc::severity::high);
  EXPECT_EQ(e.findings[0].meta.at("content_family"), "executable");
}

TEST(ObjectScanner, ReadsAtMostMaxFileBytesAndRecordsTheLimit) {
  scratch_dir tmp;
  sc::limits lim;
  lim.max_file_bytes = 5000;
  sc::object_scanner scanner(lim, rules_from(tmp, "rule never { condition: false }"), 4096, 512);
  const std::string content(12000, 'a');
  const auto data = bytes_of(content);
  sc::memory_source src(data);
  auto e = entry_for("/big", content.size());
  const auto out = scanner.scan(e, src);
  EXPECT_EQ(e.bytes_read, 5000u);
  EXPECT_FALSE(e.content_complete);
  ASSERT_EQ(out.limits.size(), 1u);
  EXPECT_EQ(out.limits[0].limit, "max_file_bytes");
  EXPECT_TRUE(e.skipped.has_value());
}

TEST(ObjectScanner, DuplicateContentIsMatchedOnceThroughTheCache) {
  scratch_dir tmp;
  sc::limits lim;
  sc::yara_result_cache cache;
  sc::object_scanner scanner(lim, rules_from(tmp, marker_rule), 1 << 20, 1 << 10, &cache);
  const auto data = bytes_of("xx BORDERSCAN-STRADDLE-MARKER-0123456789 yy");
  for (const char* path : {"/a/one.txt", "/b/two.bin"}) {
    sc::memory_source src(data);
    auto e = entry_for(path, data.size());
    scanner.scan(e, src);
    ASSERT_EQ(e.findings.size(), 1u) << path;
    EXPECT_EQ(e.findings[0].path, path);  // the cached finding names the file it is on
    EXPECT_EQ(e.findings[0].rule, "straddle_marker");
  }
  EXPECT_EQ(cache.hits(), 1u);
}

TEST(ObjectScanner, CacheKeepsFilesApartWhenRulesReadExternals) {
  scratch_dir tmp;
  sc::limits lim;
  sc::yara_result_cache cache;
  sc::object_scanner scanner(lim, rules_from(tmp, "rule named_a { condition: filename == \"a.txt\" }"), 1 << 20,
                             1 << 10, &cache);
  const auto data = bytes_of("same bytes");
  std::vector<std::size_t> counts;
  for (const char* path : {"/a.txt", "/b.txt"}) {
    sc::memory_source src(data);
    auto e = entry_for(path, data.size());
    scanner.scan(e, src);
    counts.push_back(e.findings.size());
  }
  EXPECT_EQ(counts, (std::vector<std::size_t>{1, 0}));
  EXPECT_EQ(cache.hits(), 0u);
}

TEST(ObjectScanner, YaraTimeoutIsRecordedNotFatal) {
  scratch_dir tmp;
  sc::limits lim;
  lim.yara_timeout_seconds = 1;
  // A condition that walks every byte many times: far more than a second.
  sc::object_scanner scanner(lim,
                             rules_from(tmp,
                                        "rule slow { condition: for all i in (0..filesize-1) : "
                                        "(for all j in (0..1000) : (uint8(i) + j != 300)) }"),
                             64 << 20, 1 << 10);
  const std::vector<std::byte> data(16 << 20);
  sc::memory_source src(data);
  auto e = entry_for("/slow.bin", data.size());
  const auto out = scanner.scan(e, src);
  ASSERT_EQ(out.errors.size(), 1u);
  EXPECT_EQ(out.errors[0].code, "yara_timeout");
  EXPECT_TRUE(out.errors[0].affects_verdict);
  EXPECT_TRUE(e.content_complete);  // the hashes still cover the whole file
  EXPECT_FALSE(e.sha256.empty());
}

TEST(ObjectScanner, RulesThatOnlyMentionExternalsShareCachedResults) {
  scratch_dir tmp;
  sc::limits lim;
  sc::yara_result_cache cache;
  // "filename" appears in a comment, a meta key, a string and a string identifier: none reads it.
  sc::object_scanner scanner(lim, rules_from(tmp, R"(
// keyed by filename? no
rule marker {
  meta:
    filename = "not an external"
  strings:
    $filename = "filename=BORDERSCAN"
  condition:
    $filename
})"),
                             1 << 20, 1 << 10, &cache);
  const auto data = bytes_of("Content-Disposition: filename=BORDERSCAN");
  for (const char* path : {"/a/one.txt", "/b/two.bin"}) {
    sc::memory_source src(data);
    auto e = entry_for(path, data.size());
    scanner.scan(e, src);
    ASSERT_EQ(e.findings.size(), 1u) << path;
    EXPECT_EQ(e.findings[0].path, path);
  }
  EXPECT_EQ(cache.hits(), 1u);
}

TEST(ObjectScanner, DuplicateContentIsClassifiedOnceThroughTheCache) {
  scratch_dir tmp;
  sc::limits lim;
  sc::yara_result_cache cache;
  sc::object_scanner scanner(lim, rules_from(tmp, "rule never { condition: false }"), 1 << 20, 1 << 10, &cache);
  const std::string png("\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0\x90wS\xde", 33);
  const std::string script = "#!/bin/sh\necho hello\n";
  std::vector<std::pair<std::string, std::string>> seen;
  for (const auto& [path, text] : std::vector<std::pair<std::string, std::string>>{
           {"/a.png", png}, {"/run.sh", script}, {"/copy/b.dat", png}, {"/copy/run", script}}) {
    const auto data = bytes_of(text);
    sc::memory_source src(data);
    auto e = entry_for(path, data.size());
    scanner.scan(e, src);
    seen.emplace_back(e.mime, e.description);
  }
  EXPECT_EQ(seen[0].first, "image/png");
  EXPECT_EQ(seen[1].first, "text/x-shellscript");
  EXPECT_NE(seen[0].second.find("PNG image data"), std::string::npos) << seen[0].second;
  EXPECT_EQ(seen[2], seen[0]);
  EXPECT_EQ(seen[3], seen[1]);
  EXPECT_EQ(cache.type_hits(), 2u);

  // Incomplete content is classified afresh and never stands in for a copy.
  truncated_source src(10000, 6000);
  auto e = entry_for("/short", 10000);
  scanner.scan(e, src);
  EXPECT_EQ(cache.type_hits(), 2u);
}

// A source that can only be read front to back, like a streamed archive member.
class forward_only_source final : public sc::content_source {
 public:
  explicit forward_only_source(std::span<const std::byte> data) : data_(data) {}
  std::uint64_t size() const override { return data_.size(); }
  bool forward_only() const override { return true; }
  std::size_t read_at(std::uint64_t offset, std::span<std::byte> out) override {
    if (offset < pos_) {
      throw sc::scan_error(sc::scan_errc::read_failed, "cannot be read backwards");
    }
    if (offset >= data_.size()) return 0;
    const std::size_t n = std::min<std::uint64_t>(out.size(), data_.size() - offset);
    std::memcpy(out.data(), data_.data() + offset, n);
    pos_ = offset + n;
    return n;
  }

 private:
  std::span<const std::byte> data_;
  std::uint64_t pos_ = 0;
};

TEST(ObjectScanner, SkipKnownGoodNeverRereadsAForwardOnlySource) {
  scratch_dir tmp;
  sc::limits lim;
  lim.skip_yara_for_known_good = true;
  // A hash set (of something else) makes the scanner want the hash before YARA.
  const std::string other = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
  sc::object_scanner scanner(lim, rules_from(tmp, marker_rule, other, sc::hashset_kind::known_good), 4096, 512);
  std::string text(20000, 'z');
  text.replace(9000, 40, "xx BORDERSCAN-STRADDLE-MARKER-0123456789");
  const auto data = bytes_of(text);
  forward_only_source src(data);
  auto e = entry_for("/member", data.size());
  e.depth = 1;
  const auto out = scanner.scan(e, src);
  EXPECT_TRUE(out.errors.empty()) << out.errors.front().message;
  EXPECT_TRUE(e.content_complete);
  ASSERT_EQ(e.findings.size(), 1u);
  EXPECT_EQ(e.findings[0].rule, "straddle_marker");
}

namespace {

// Counts every byte handed out, so a test can prove content is read once.
class counting_source final : public sc::content_source {
 public:
  explicit counting_source(std::span<const std::byte> data) : inner_(data) {}
  std::uint64_t size() const override { return inner_.size(); }
  std::size_t read_at(std::uint64_t offset, std::span<std::byte> out) override {
    const std::size_t n = inner_.read_at(offset, out);
    bytes_read += n;
    return n;
  }
  std::uint64_t bytes_read = 0;

 private:
  sc::memory_source inner_;
};

// Rules whose conditions make YARA walk the blocks again after its string
// pass: reads at the start and at the end of the content.
const char* const replay_rules = R"(
rule straddle_marker {
  strings: $m = "BORDERSCAN-STRADDLE-MARKER-0123456789"
  condition: $m
}
rule head_marker { condition: uint32be(0) == 0x424F5244 and uint16(4) == 0x0A0A }
rule tail_marker { condition: uint32be(filesize - 4) == 0x5343414E }
rule sized { condition: filesize == 50000 }
)";

// 50000 bytes over 4096-byte blocks: "BORD" starts it, "SCAN" ends it, and the
// marker straddles the end of the fourth block.
std::vector<std::byte> replay_content() {
  std::string text(50000, 'q');
  text.replace(0, 6, "BORD\n\n");
  text.replace(text.size() - 4, 4, "SCAN");
  text.replace(3 * (4096 - 512) + 4096 - 12, 37, "BORDERSCAN-STRADDLE-MARKER-0123456789");
  return bytes_of(text);
}

std::vector<std::string> rule_names(const sc::file_entry& e) {
  std::vector<std::string> out;
  for (const auto& f : e.findings) out.push_back(f.rule);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST(ObjectScanner, ForwardOnlySourceIsReadOnceAndConditionsSeeItsFirstAndLastBlock) {
  scratch_dir tmp;
  sc::limits lim;
  sc::object_scanner scanner(lim, rules_from(tmp, replay_rules), 4096, 512);
  const auto data = replay_content();
  forward_only_source src(data);
  auto e = entry_for("/a.zip!big.bin", data.size());
  e.depth = 1;
  const auto out = scanner.scan(e, src);
  EXPECT_TRUE(out.errors.empty()) << out.errors.front().message;
  EXPECT_TRUE(e.content_complete);
  EXPECT_EQ(e.bytes_read, data.size());
  EXPECT_EQ(rule_names(e), (std::vector<std::string>{"head_marker", "sized", "straddle_marker", "tail_marker"}));

  // The same bytes from memory give the same hashes and the same findings.
  sc::memory_source again(data);
  auto e2 = entry_for("/big.bin", data.size());
  scanner.scan(e2, again);
  EXPECT_EQ(e.sha256, e2.sha256);
  EXPECT_EQ(e.md5, e2.md5);
  EXPECT_EQ(rule_names(e), rule_names(e2));
}

TEST(ObjectScanner, ConditionsOnTheFirstAndLastBlockCostNoSecondRead) {
  scratch_dir tmp;
  sc::limits lim;
  sc::object_scanner scanner(lim, rules_from(tmp, replay_rules), 4096, 512);
  const auto data = replay_content();
  counting_source src(data);
  auto e = entry_for("/big.bin", data.size());
  scanner.scan(e, src);
  EXPECT_EQ(rule_names(e), (std::vector<std::string>{"head_marker", "sized", "straddle_marker", "tail_marker"}));
  EXPECT_EQ(src.bytes_read, data.size()) << "every byte read exactly once";
}

TEST(ObjectScanner, StreamOfUnknownLengthEndingInsideABlockIsScannedToItsEndOnly) {
  scratch_dir tmp;
  sc::limits lim;
  // "zeros at the end" would match if YARA saw the zero-filled rest of the last block.
  sc::object_scanner scanner(lim, rules_from(tmp, std::string(replay_rules) + R"(
rule zeros_past_end { strings: $z = { 00 00 00 00 00 00 00 00 } condition: $z })"),
                             4096, 512);
  const auto data = replay_content();
  class unknown_length final : public sc::content_source {
   public:
    explicit unknown_length(std::span<const std::byte> d) : inner_(d) {}
    std::uint64_t size() const override { return 0; }
    bool size_known() const override { return false; }
    bool forward_only() const override { return true; }
    std::size_t read_at(std::uint64_t offset, std::span<std::byte> out) override { return inner_.read_at(offset, out); }

   private:
    forward_only_source inner_;
  } src(data);
  sc::file_entry e;
  e.path = "/x.gz!x";
  e.type = "regular";
  e.depth = 1;
  const auto out = scanner.scan(e, src);
  EXPECT_TRUE(out.errors.empty()) << out.errors.front().message;
  ASSERT_TRUE(e.size.has_value());
  EXPECT_EQ(*e.size, data.size());
  EXPECT_TRUE(e.content_complete);
  EXPECT_EQ(rule_names(e), (std::vector<std::string>{"head_marker", "sized", "straddle_marker", "tail_marker"}));
}

TEST(ObjectScanner, ReadFailureIsOneErrorHoweverOftenYaraWalksTheBlocks) {
  scratch_dir tmp;
  sc::limits lim;
  // Several conditions reading the first block and the middle: YARA walks the
  // blocks again for each of them.
  sc::object_scanner scanner(lim, rules_from(tmp, std::string(replay_rules) + R"(
rule middle_a { condition: uint32(20000) == 0x71717171 and uint8(1) == 0x4F }
rule middle_b { condition: uint16(30000) == 0x7171 and uint8(2) == 0x52 }
rule middle_c { condition: uint16(25000) == 0x7171 and uint8(3) == 0x44 })"),
                             4096, 512);
  // A failing device: every range reads once, then errors when read again.
  class fails_when_read_again final : public sc::content_source {
   public:
    explicit fails_when_read_again(std::span<const std::byte> d) : inner_(d) {}
    std::uint64_t size() const override { return inner_.size(); }
    std::size_t read_at(std::uint64_t offset, std::span<std::byte> out) override {
      if (offset < high_water_) {
        throw sc::scan_error(sc::scan_errc::read_failed, "device error");
      }
      const std::size_t n = inner_.read_at(offset, out);
      high_water_ = offset + n;
      return n;
    }

   private:
    sc::memory_source inner_;
    std::uint64_t high_water_ = 0;
  };
  const auto data = replay_content();
  fails_when_read_again src(data);
  auto e = entry_for("/flaky.bin", data.size());
  const auto out = scanner.scan(e, src);
  ASSERT_EQ(out.errors.size(), 1u) << out.errors.back().message;
  EXPECT_EQ(out.errors[0].code, "read_failed");
  EXPECT_NE(out.errors[0].message.find("device error"), std::string::npos);
  EXPECT_FALSE(e.content_complete) << "YARA could not see all it asked for";
}

TEST(ObjectScanner, YaraFindingsCarryMatchedStringsOffsetsAndBytes) {
  scratch_dir tmp;
  sc::limits lim;
  // Small blocks: the matches lie in different blocks, so their offsets must
  // add the block's base.
  sc::object_scanner scanner(lim, rules_from(tmp, R"(
rule many_hits {
  meta: severity = "high" description = "repeated token" author = "tests" reference = "https://example.org/r"
  strings: $tok = "TOKEN\x1b" $m = "BORDERSCAN-STRADDLE-MARKER-0123456789" $hidden = "HIDDEN" private
  condition: $tok and $m and $hidden
})"),
                             4096, 1024);
  std::string content(40000, '.');
  const std::string marker = "BORDERSCAN-STRADDLE-MARKER-0123456789";
  content.replace(30000, marker.size(), marker);
  content.replace(100, 6, "HIDDEN");
  for (int i = 0; i < 20; ++i) {
    content.replace(1000 + static_cast<std::size_t>(i) * 1500, 6, std::string("TOKEN\x1b", 6));
  }
  const auto data = bytes_of(content);
  sc::memory_source src(data);
  auto e = entry_for("/hits.bin", content.size());
  scanner.scan(e, src);
  ASSERT_EQ(e.findings.size(), 1u);
  const auto& f = e.findings[0];
  EXPECT_EQ(f.meta.at("author"), "tests");
  EXPECT_EQ(f.meta.at("reference"), "https://example.org/r");
  EXPECT_EQ(f.match_count, 21u);  // 20 tokens and one marker; the private string is not shown
  ASSERT_EQ(f.matches.size(), sc::max_matches_per_finding);
  for (const auto& m : f.matches) {
    EXPECT_NE(m.identifier, "$hidden");
  }
  const auto tok = std::find_if(f.matches.begin(), f.matches.end(),
                                [](const sc::string_match& m) { return m.identifier == "$tok"; });
  ASSERT_NE(tok, f.matches.end());
  EXPECT_EQ(tok->offset, 1000u);
  EXPECT_EQ(tok->length, 6u);
  EXPECT_EQ(tok->hex, "544f4b454e1b");
  EXPECT_EQ(tok->text, "TOKEN\\x1b");  // control bytes never reach a screen raw
  // Whichever strings fill the 16 slots, offsets point at the matched bytes.
  for (const auto& m : f.matches) {
    ASSERT_LE(m.offset + m.length, content.size());
    EXPECT_EQ(m.hex.size(), 2 * std::min<std::size_t>(m.length, sc::max_match_bytes));
    EXPECT_EQ(content.substr(m.offset, 5), m.identifier == "$tok" ? "TOKEN" : "BORDE");
  }
  const nlohmann::json j = f;
  EXPECT_EQ(j.at("match_count"), 21);
  EXPECT_EQ(j.at("id").get<std::string>().size(), 32u);
}

TEST(ObjectScanner, HashSetFindingNamesTheSetAndTheEntry) {
  scratch_dir tmp;
  sc::limits lim;
  sc::object_scanner scanner(
      lim, rules_from(tmp, "rule never { condition: false }",
                      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  sample-abc.exe"));
  const auto data = bytes_of("abc");
  sc::memory_source src(data);
  auto e = entry_for("/abc", 3);
  scanner.scan(e, src);
  ASSERT_EQ(e.findings.size(), 1u);
  EXPECT_EQ(e.findings[0].meta.at("set"), "set");
  EXPECT_EQ(e.findings[0].meta.at("entry"), "sample-abc.exe");
  EXPECT_EQ(e.findings[0].rule, "sample-abc.exe");
}
