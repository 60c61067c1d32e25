#include "borderscan/scanner/object_scanner.hpp"

#include <fcntl.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>

#include "borderscan/scanner/digest.hpp"
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
    bytes_read += n;
    return n;
  }
  std::uint64_t bytes_read = 0;

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

// --- Evidence: a flagged file's content kept in the scan's evidence pack.

namespace {

// The pack in tmp, opened as the worker opens it.
std::shared_ptr<sc::evidence_pack> evidence_in(const scratch_dir& tmp, sc::evidence_limits el = {}) {
  const int fd = ::open((tmp / "evidence.pack").c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  EXPECT_GE(fd, 0);
  return std::make_shared<sc::evidence_pack>(fd, el);
}

// What the pack holds: each kept record's content (checked against its
// digest while read), by its SHA-256.
std::map<std::string, std::string> kept_in(const scratch_dir& tmp) {
  std::map<std::string, std::string> out;
  sc::read_evidence_pack(tmp / "evidence.pack", [&](const sc::evidence_record& r) {
    std::string& content = out[r.sha256];
    sc::copy_evidence(tmp / "evidence.pack", r, [&](std::span<const std::byte> piece) {
      content.append(reinterpret_cast<const char*>(piece.data()), piece.size());
    });
  });
  return out;
}

// `marker` flags (high); `low_note` is below the default threshold (medium).
const char* const evidence_rules = R"(
rule marker { meta: severity = "high" strings: $m = "BORDERSCAN-STRADDLE-MARKER-0123456789" condition: $m }
rule low_note { meta: severity = "low" strings: $n = "ONLY-A-LOW-NOTE" condition: $n }
)";

// n bytes of varied text, with the flagging marker in the middle if `flag`.
std::string evidence_text(std::size_t n, bool flag, unsigned seed = 1) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) {
    s[i] = static_cast<char>('a' + (i * 7 + seed) % 26);
  }
  if (flag) {
    s.replace(n / 2, 37, "BORDERSCAN-STRADDLE-MARKER-0123456789");
  }
  return s;
}

// A forward-only stream whose length is found only at its end (a raw .gz member).
class unknown_length_source final : public sc::content_source {
 public:
  explicit unknown_length_source(std::span<const std::byte> d) : inner(d) {}
  std::uint64_t size() const override { return 0; }
  bool size_known() const override { return false; }
  bool forward_only() const override { return true; }
  std::size_t read_at(std::uint64_t offset, std::span<std::byte> out) override { return inner.read_at(offset, out); }
  forward_only_source inner;
};

sc::file_entry entry_of_unknown_size(const std::string& path) {
  sc::file_entry e;
  e.path = path;
  e.type = "regular";
  e.depth = 1;
  return e;
}

std::vector<std::string> limit_names(const sc::object_outcome& out) {
  std::vector<std::string> names;
  for (const auto& l : out.limits) names.push_back(l.limit);
  return names;
}

}  // namespace

TEST(ObjectScannerEvidence, FlaggedSmallFileIsKeptWithItsExactBytesAndDigest) {
  scratch_dir tmp;
  sc::limits lim;
  auto pack = evidence_in(tmp);
  sc::object_scanner scanner(lim, rules_from(tmp, evidence_rules), 4096, 512, nullptr, pack);
  const std::string text = evidence_text(3000, true);
  const auto data = bytes_of(text);
  counting_source src(data);
  auto e = entry_for("/small.txt", data.size());
  const auto out = scanner.scan(e, src);
  EXPECT_TRUE(out.errors.empty());
  EXPECT_TRUE(out.limits.empty());
  ASSERT_TRUE(e.evidence.has_value());
  EXPECT_TRUE(e.evidence->kept);
  EXPECT_EQ(src.bytes_read, data.size()) << "the copy comes from the buffer already read";
  const auto kept = kept_in(tmp);
  ASSERT_EQ(kept.size(), 1u);
  ASSERT_TRUE(kept.contains(e.sha256));
  EXPECT_EQ(kept.at(e.sha256), text);
  EXPECT_EQ(nlohmann::json(e).at("evidence"), nlohmann::json({{"kept", true}}));
}

TEST(ObjectScannerEvidence, UnflaggedFilesGetNoNoteAndNothingIsKept) {
  scratch_dir tmp;
  sc::limits lim;
  auto pack = evidence_in(tmp);
  sc::object_scanner scanner(lim, rules_from(tmp, evidence_rules), 4096, 512, nullptr, pack);
  std::string low = evidence_text(50000, false);
  low.replace(100, 15, "ONLY-A-LOW-NOTE");
  const auto low_data = bytes_of(low);
  const auto small_data = bytes_of(low.substr(0, 2000));

  sc::memory_source small(small_data);
  auto e1 = entry_for("/small", small_data.size());
  scanner.scan(e1, small);
  counting_source large(low_data);
  auto e2 = entry_for("/large", low_data.size());
  scanner.scan(e2, large);
  forward_only_source streamed(low_data);
  auto e3 = entry_for("/a.zip!streamed", low_data.size());
  scanner.scan(e3, streamed);
  for (const auto* e : {&e1, &e2, &e3}) {
    ASSERT_EQ(e->findings.size(), 1u) << e->path;
    EXPECT_EQ(e->findings[0].level, sc::severity::low);
    EXPECT_FALSE(e->evidence.has_value()) << e->path;
    EXPECT_TRUE(nlohmann::json(*e).at("evidence").is_null());
  }
  EXPECT_EQ(large.bytes_read, low_data.size()) << "only flagged files are read again";
  EXPECT_TRUE(kept_in(tmp).empty());
  EXPECT_EQ(pack->bytes_kept(), 0u);
  // The stream was copied while read, then dropped: the last record of the
  // pack, so cut off with it.
  EXPECT_EQ(pack->end_offset(), 0u);
  EXPECT_EQ(std::filesystem::file_size(tmp / "evidence.pack"), 0u);
}

TEST(ObjectScannerEvidence, FlaggedForwardOnlySourceIsReadOnceAndItsBytesKeptExactly) {
  scratch_dir tmp;
  sc::limits lim;
  auto pack = evidence_in(tmp);
  sc::object_scanner scanner(lim, rules_from(tmp, evidence_rules), 4096, 512, nullptr, pack);
  const std::string text = evidence_text(50000, true, 3);
  const auto data = bytes_of(text);
  forward_only_source src(data);
  auto e = entry_for("/a.zip!big.bin", data.size());
  e.depth = 1;
  const auto out = scanner.scan(e, src);
  EXPECT_TRUE(out.errors.empty()) << out.errors.front().message;
  EXPECT_EQ(src.bytes_read, data.size()) << "read exactly once";
  ASSERT_TRUE(e.evidence.has_value());
  EXPECT_TRUE(e.evidence->kept);
  const auto kept = kept_in(tmp);
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept.at(e.sha256), text);
}

TEST(ObjectScannerEvidence, FlaggedStreamOfUnknownLengthIsKeptAtItsRealLength) {
  scratch_dir tmp;
  sc::limits lim;
  auto pack = evidence_in(tmp);
  sc::object_scanner scanner(lim, rules_from(tmp, evidence_rules), 4096, 512, nullptr, pack);
  const std::string text = evidence_text(30001, true, 5);
  const auto data = bytes_of(text);
  unknown_length_source src(data);
  auto e = entry_of_unknown_size("/x.gz!x");
  scanner.scan(e, src);
  EXPECT_EQ(src.inner.bytes_read, data.size());
  ASSERT_TRUE(e.evidence.has_value());
  EXPECT_TRUE(e.evidence->kept);
  EXPECT_EQ(kept_in(tmp).at(e.sha256), text);
}

TEST(ObjectScannerEvidence, LargeRandomAccessFileIsReadAgainOnlyWhenFlagged) {
  scratch_dir tmp;
  sc::limits lim;
  auto pack = evidence_in(tmp);
  sc::object_scanner scanner(lim, rules_from(tmp, evidence_rules), 4096, 512, nullptr, pack);
  const std::string text = evidence_text(50000, true, 7);
  const auto data = bytes_of(text);
  counting_source src(data);
  auto e = entry_for("/big.bin", data.size());
  const auto out = scanner.scan(e, src);
  EXPECT_TRUE(out.errors.empty());
  EXPECT_EQ(src.bytes_read, 2 * data.size()) << "scanned once, copied once";
  ASSERT_TRUE(e.evidence.has_value());
  EXPECT_TRUE(e.evidence->kept);
  EXPECT_EQ(kept_in(tmp).at(e.sha256), text);
}

TEST(ObjectScannerEvidence, ContentThatChangesWhenReadAgainIsNotKept) {
  scratch_dir tmp;
  sc::limits lim;
  auto pack = evidence_in(tmp);
  sc::object_scanner scanner(lim, rules_from(tmp, evidence_rules), 4096, 512, nullptr, pack);
  const std::string text = evidence_text(50000, true, 9);
  // A device whose content changes once the scan has read all of it.
  class changing_source final : public sc::content_source {
   public:
    explicit changing_source(std::string t) : text_(std::move(t)) {}
    std::uint64_t size() const override { return text_.size(); }
    std::size_t read_at(std::uint64_t offset, std::span<std::byte> out) override {
      sc::memory_source now(std::as_bytes(std::span(text_)));
      return now.read_at(offset, out);
    }
    void change() { text_[10] = '!'; }

   private:
    std::string text_;
  } src(text);
  std::uint64_t seen = 0;
  const std::function<void(std::uint64_t)> on_bytes = [&](std::uint64_t n) {
    seen += n;
    if (seen == text.size()) src.change();
  };
  auto e = entry_for("/flaky.bin", text.size());
  const auto out = scanner.scan(e, src, on_bytes);
  ASSERT_EQ(e.sha256, sc::sha256_hex(text)) << "the scan saw the content before the change";
  ASSERT_TRUE(e.evidence.has_value());
  EXPECT_FALSE(e.evidence->kept);
  EXPECT_EQ(e.evidence->reason, "content changed when read again");
  ASSERT_EQ(out.errors.size(), 1u);
  EXPECT_EQ(out.errors[0].stage, "evidence");
  EXPECT_EQ(out.errors[0].code, "evidence_content_changed");
  EXPECT_FALSE(out.errors[0].affects_verdict);
  EXPECT_TRUE(kept_in(tmp).empty());
}

TEST(ObjectScannerEvidence, FlaggedFileOverTheEvidenceFileLimitIsALimitHitAndANote) {
  scratch_dir tmp;
  sc::limits lim;
  auto pack = evidence_in(tmp, {.max_file_bytes = 1000, .max_bytes_per_scan = 1 << 20});
  sc::object_scanner scanner(lim, rules_from(tmp, evidence_rules), 4096, 512, nullptr, pack);
  const std::string text = evidence_text(20000, true, 11);
  const auto data = bytes_of(text);
  const auto small_data = bytes_of(text.substr(9000, 2000));  // holds the marker

  sc::memory_source small(small_data);
  auto e1 = entry_for("/small", small_data.size());
  const auto out1 = scanner.scan(e1, small);
  forward_only_source streamed(data);
  auto e2 = entry_for("/a.zip!streamed", data.size());
  const auto out2 = scanner.scan(e2, streamed);
  unknown_length_source unknown(data);
  auto e3 = entry_of_unknown_size("/b.gz!b");
  const auto out3 = scanner.scan(e3, unknown);
  for (const auto& [e, out] : {std::pair{&e1, &out1}, std::pair{&e2, &out2}, std::pair{&e3, &out3}}) {
    ASSERT_FALSE(e->findings.empty()) << e->path;
    ASSERT_EQ(limit_names(*out), std::vector<std::string>{"evidence.max_file_bytes"}) << e->path;
    EXPECT_EQ(out->limits[0].value, "1000");
    EXPECT_EQ(out->limits[0].path, e->path);
    ASSERT_TRUE(e->evidence.has_value()) << e->path;
    EXPECT_FALSE(e->evidence->kept);
    EXPECT_NE(e->evidence->reason.find("evidence.max_file_bytes"), std::string::npos) << e->evidence->reason;
    EXPECT_TRUE(e->content_complete) << "the scan itself is not bounded by the evidence limit";
    const nlohmann::json j = *e;
    EXPECT_EQ(j.at("evidence").at("kept"), false);
    EXPECT_EQ(j.at("evidence").at("reason"), e->evidence->reason);
  }
  EXPECT_EQ(streamed.bytes_read, data.size());
  EXPECT_EQ(unknown.inner.bytes_read, data.size());
  EXPECT_TRUE(kept_in(tmp).empty());
}

TEST(ObjectScannerEvidence, UsedUpScanBudgetIsALimitHitButCopiesOfKeptContentAreKept) {
  scratch_dir tmp;
  sc::limits lim;
  auto pack = evidence_in(tmp, {.max_file_bytes = 1 << 20, .max_bytes_per_scan = 10000});
  sc::object_scanner scanner(lim, rules_from(tmp, evidence_rules), 4096, 512, nullptr, pack);
  const std::string first = evidence_text(3000, true, 1), second = evidence_text(2000, true, 2);
  const std::string streamed_text = evidence_text(20000, true, 3);
  const auto d1 = bytes_of(first), d2 = bytes_of(second), d3 = bytes_of(streamed_text);
  // 3000 and 2000 bytes fit the 10000 of the budget; the 20000-byte stream then does not.
  sc::memory_source s1(d1), s2(d2);
  auto e1 = entry_for("/first", d1.size());
  EXPECT_TRUE(scanner.scan(e1, s1).limits.empty());
  auto e2 = entry_for("/second", d2.size());
  EXPECT_TRUE(scanner.scan(e2, s2).limits.empty());
  forward_only_source s3(d3);
  auto e3 = entry_for("/a.zip!streamed", d3.size());
  const auto out3 = scanner.scan(e3, s3);
  ASSERT_EQ(limit_names(out3), std::vector<std::string>{"evidence.max_bytes_per_scan"});
  EXPECT_EQ(out3.limits[0].value, "10000");
  ASSERT_TRUE(e3.evidence.has_value());
  EXPECT_FALSE(e3.evidence->kept);
  EXPECT_NE(e3.evidence->reason.find("evidence.max_bytes_per_scan"), std::string::npos);
  // Small and re-readable ones past the budget alike.
  const std::string third = evidence_text(6000, true, 4);
  const auto d4 = bytes_of(third);
  sc::memory_source s4(d4);
  auto e4 = entry_for("/third", d4.size());
  EXPECT_EQ(limit_names(scanner.scan(e4, s4)), std::vector<std::string>{"evidence.max_bytes_per_scan"});
  ASSERT_TRUE(e4.evidence.has_value());
  EXPECT_FALSE(e4.evidence->kept);
  // A copy of content already kept costs nothing: kept.
  sc::memory_source again(d1);
  auto e5 = entry_for("/copy-of-first", d1.size());
  EXPECT_TRUE(scanner.scan(e5, again).limits.empty());
  ASSERT_TRUE(e5.evidence.has_value());
  EXPECT_TRUE(e5.evidence->kept);

  const auto kept = kept_in(tmp);
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_EQ(kept.at(e1.sha256), first);
  EXPECT_EQ(kept.at(e2.sha256), second);
  EXPECT_EQ(pack->bytes_kept(), 5000u);
}

TEST(ObjectScannerEvidence, FlaggedFileNotFullyReadIsNotKept) {
  scratch_dir tmp;
  sc::limits lim;
  auto pack = evidence_in(tmp);
  sc::object_scanner scanner(
      lim, rules_from(tmp, R"(rule xs { meta: severity = "high" strings: $x = "xxxxxxxxxx" condition: $x })"), 4096,
      512, nullptr, pack);
  truncated_source src(100, 50);
  auto e = entry_for("/cut", 100);
  const auto out = scanner.scan(e, src);
  ASSERT_EQ(e.findings.size(), 1u);
  EXPECT_FALSE(e.content_complete);
  ASSERT_TRUE(e.evidence.has_value());
  EXPECT_FALSE(e.evidence->kept);
  EXPECT_EQ(e.evidence->reason, "content not fully read");
  EXPECT_TRUE(out.limits.empty());
  EXPECT_TRUE(kept_in(tmp).empty());
}

TEST(ObjectScannerEvidence, WithoutAPackNoFileGetsANote) {
  scratch_dir tmp;
  sc::limits lim;
  sc::object_scanner scanner(lim, rules_from(tmp, evidence_rules), 4096, 512);
  const auto data = bytes_of(evidence_text(3000, true));
  sc::memory_source src(data);
  auto e = entry_for("/small.txt", data.size());
  scanner.scan(e, src);
  ASSERT_EQ(e.findings.size(), 1u);
  EXPECT_FALSE(e.evidence.has_value());
}

TEST(ObjectScannerEvidence, FileFlaggedAfterItsScanIsKeptByReadingItAgain) {
  scratch_dir tmp;
  sc::limits lim;
  auto pack = evidence_in(tmp);
  sc::object_scanner scanner(lim, rules_from(tmp, evidence_rules), 4096, 512, nullptr, pack);
  const std::string text = evidence_text(3000, false);
  const auto data = bytes_of(text);
  sc::memory_source src(data);
  auto e = entry_for("/bomb.zip", data.size());
  scanner.scan(e, src);
  ASSERT_FALSE(e.evidence.has_value());
  EXPECT_TRUE(scanner.settle_evidence(e, src).errors.empty());
  EXPECT_FALSE(e.evidence.has_value()) << "still not flagged";

  sc::finding bomb;
  bomb.path = e.path;
  bomb.source = "limit";
  bomb.rule = "archive_bomb";
  bomb.level = sc::severity::high;
  e.findings.push_back(bomb);
  EXPECT_TRUE(scanner.settle_evidence(e, src).errors.empty());
  ASSERT_TRUE(e.evidence.has_value());
  EXPECT_TRUE(e.evidence->kept);
  scanner.settle_evidence(e, src);  // noted already: nothing more
  EXPECT_EQ(pack->records_kept(), 1u);
  EXPECT_EQ(kept_in(tmp).at(e.sha256), text);

  // A stream went past for good.
  const auto other = bytes_of(evidence_text(3000, false, 4));
  forward_only_source streamed(other);
  auto s = entry_for("/a.zip!inner.zip", other.size());
  scanner.scan(s, streamed);
  s.findings.push_back(bomb);
  scanner.settle_evidence(s, streamed);
  ASSERT_TRUE(s.evidence.has_value());
  EXPECT_FALSE(s.evidence->kept);
  EXPECT_EQ(pack->records_kept(), 1u);
}
