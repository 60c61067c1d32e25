// The recursion gate on its own: containers built in memory with libarchive's
// write API, scanned through a gate with the real object_scanner and the
// shipped rules, results collected by a sink. Each limit must be recorded
// once, at the right path; nested expansion counts against the enclosing
// container; a stage added to the list is picked by claims().
#include "borderscan/scanner/recursion_gate.hpp"

#include <gtest/gtest.h>

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "borderscan/scanner/scratch.hpp"
#include "support/test_support.hpp"

namespace sc = borderscan::scanner;

namespace {

constexpr std::size_t mib = 1 << 20;

// Everything a gate reports, kept in order.
class collecting_sink final : public sc::scan_sink {
 public:
  void add_file(sc::file_entry&& f) override { files.push_back(std::move(f)); }
  void add_error(sc::error_entry&& e) override { errors.push_back(std::move(e)); }
  void add_limit(sc::limit_hit&& l) override { limits.push_back(std::move(l)); }
  std::optional<std::string_view> stop_reason() override {
    return stop ? std::optional<std::string_view>("cancelled") : std::nullopt;
  }
  void add_bytes(std::uint64_t n) override { bytes += n; }

  const sc::file_entry* file(const std::string& path) const {
    const auto it = std::find_if(files.begin(), files.end(), [&](const sc::file_entry& f) { return f.path == path; });
    return it != files.end() ? &*it : nullptr;
  }
  // The paths at which `limit` was recorded, in order.
  std::vector<std::string> limit_paths(const std::string& limit) const {
    std::vector<std::string> out;
    for (const auto& l : limits) {
      if (l.limit == limit) {
        out.push_back(l.path);
      }
    }
    return out;
  }

  std::vector<sc::file_entry> files;
  std::vector<sc::error_entry> errors;
  std::vector<sc::limit_hit> limits;
  std::uint64_t bytes = 0;
  bool stop = false;
};

// A top-level object held in memory.
class memory_member final : public sc::stored_member {
 public:
  explicit memory_member(std::string bytes) : bytes_(std::move(bytes)) {}
  std::unique_ptr<sc::content_source> open() override {
    return std::make_unique<sc::memory_source>(std::as_bytes(std::span(bytes_)));
  }

 private:
  std::string bytes_;
};

// An archive written in memory by libarchive.
class archive_writer {
 public:
  enum class kind { zip_deflate, zip_store, gzip_stream };

  explicit archive_writer(kind k) : archive_(archive_write_new()) {
    if (k == kind::gzip_stream) {
      archive_write_add_filter_gzip(archive_);
      archive_write_set_format_raw(archive_);
    } else {
      archive_write_set_format_zip(archive_);
      if (k == kind::zip_store) {
        archive_write_zip_set_compression_store(archive_);
      } else {
        archive_write_zip_set_compression_deflate(archive_);
      }
    }
    EXPECT_EQ(archive_write_open(archive_, &out_, nullptr, &archive_writer::on_write, nullptr), ARCHIVE_OK)
        << archive_error_string(archive_);
  }
  ~archive_writer() { archive_write_free(archive_); }
  archive_writer(const archive_writer&) = delete;
  archive_writer& operator=(const archive_writer&) = delete;

  archive_writer& add(const std::string& name, const std::string& content) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, static_cast<la_int64_t>(content.size()));
    EXPECT_EQ(archive_write_header(archive_, e), ARCHIVE_OK) << archive_error_string(archive_);
    EXPECT_EQ(archive_write_data(archive_, content.data(), content.size()), static_cast<la_ssize_t>(content.size()));
    archive_entry_free(e);
    return *this;
  }

  std::string bytes() {
    EXPECT_EQ(archive_write_close(archive_), ARCHIVE_OK) << archive_error_string(archive_);
    return out_;
  }

 private:
  static la_ssize_t on_write(archive*, void* out, const void* data, size_t n) {
    static_cast<std::string*>(out)->append(static_cast<const char*>(data), n);
    return static_cast<la_ssize_t>(n);
  }

  archive* archive_;
  std::string out_;
};

std::string zip(std::initializer_list<std::pair<std::string, std::string>> members,
                archive_writer::kind k = archive_writer::kind::zip_deflate) {
  archive_writer w(k);
  for (const auto& [name, content] : members) {
    w.add(name, content);
  }
  return w.bytes();
}

std::string zeros(std::size_t n) {
  return std::string(n, '\0');
}

class RecursionGate : public ::testing::Test {
 protected:
  // Scans `bytes` as the top-level file `path` through a gate with `stages`;
  // the file itself and its own errors and limits go to the sink last, as
  // the engine records them.
  const sc::file_entry& scan(const std::string& path, const std::string& bytes,
                             const sc::recursion_gate::stage_list& stages = sc::default_container_stages()) {
    sc::object_scanner scanner(lim, borderscan::test::shipped_rules(), 4 << 20, 64 << 10, nullptr, evidence);
    sc::recursion_gate gate(lim, scanner, budget, sink, stages);
    gate.use_scratch(scratch);
    sc::file_entry top;
    top.path = path;
    top.size = bytes.size();
    top.type = "regular";
    memory_member content(bytes);
    sc::object_outcome outcome;
    gate.scan_top(top, content, outcome);
    sink.errors.insert(sink.errors.end(), outcome.errors.begin(), outcome.errors.end());
    sink.limits.insert(sink.limits.end(), outcome.limits.begin(), outcome.limits.end());
    sink.files.push_back(std::move(top));
    return sink.files.back();
  }

  static bool has_finding(const sc::file_entry& f, const std::string& rule) {
    return std::any_of(f.findings.begin(), f.findings.end(), [&](const sc::finding& x) { return x.rule == rule; });
  }

  // Kept content by SHA-256 (each record checked against its digest).
  std::map<std::string, std::string> kept() const {
    std::map<std::string, std::string> out;
    sc::read_evidence_pack(tmp / "evidence.pack", [&](const sc::evidence_record& r) {
      sc::copy_evidence(tmp / "evidence.pack", r, [&](std::span<const std::byte> piece) {
        out[r.sha256].append(reinterpret_cast<const char*>(piece.data()), piece.size());
      });
    });
    return out;
  }

  void keep_evidence() {
    const int fd = ::open((tmp / "evidence.pack").c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    evidence = std::make_shared<sc::evidence_pack>(fd, sc::evidence_limits{});
  }

  sc::limits lim;
  sc::expansion_budget budget;
  collecting_sink sink;
  borderscan::test::scratch_dir tmp;
  std::shared_ptr<sc::evidence_pack> evidence;  // none unless keep_evidence()
  sc::scratch_space* scratch = nullptr;         // none unless a test gives one
};

TEST_F(RecursionGate, MembersAreScannedWithTheirContainerPathAndDepth) {
  const auto& top = scan("/a.zip", zip({{"dir/eicar.com", borderscan::test::eicar()}, {"note.txt", "hello\n"}}));
  EXPECT_EQ(top.mime, "application/zip");
  const sc::file_entry* eicar = sink.file("/a.zip!dir/eicar.com");
  ASSERT_NE(eicar, nullptr);
  EXPECT_EQ(eicar->container, "/a.zip");
  EXPECT_EQ(eicar->depth, 1u);
  EXPECT_TRUE(eicar->content_complete);
  EXPECT_TRUE(has_finding(*eicar, "EICAR_Test_File"));
  EXPECT_NE(sink.file("/a.zip!note.txt"), nullptr);
  EXPECT_TRUE(sink.limits.empty());
  EXPECT_TRUE(sink.errors.empty());
}

TEST_F(RecursionGate, DepthLimitIsRecordedOnceAtTheContainerLeftClosed) {
  lim.max_depth = 2;
  const std::string d1 = zip({{"deep.txt", "deep\n"}});
  const std::string d2 = zip({{"d1.zip", d1}});
  scan("/d3.zip", zip({{"d2.zip", d2}}));
  EXPECT_EQ(sink.limit_paths("max_depth"), std::vector<std::string>{"/d3.zip!d2.zip!d1.zip"});
  EXPECT_NE(sink.file("/d3.zip!d2.zip!d1.zip"), nullptr);
  EXPECT_EQ(sink.file("/d3.zip!d2.zip!d1.zip!deep.txt"), nullptr);
}

TEST_F(RecursionGate, MemberCountLimitIsRecordedOnceAndEndsTheListing) {
  lim.max_members = 3;
  scan("/many.zip", zip({{"m1.txt", "1"}, {"m2.txt", "2"}, {"m3.txt", "3"}, {"m4.txt", "4"}, {"m5.txt", "5"}}));
  EXPECT_EQ(sink.limit_paths("max_members"), std::vector<std::string>{"/many.zip"});
  EXPECT_NE(sink.file("/many.zip!m3.txt"), nullptr);
  EXPECT_EQ(sink.file("/many.zip!m4.txt"), nullptr);
}

TEST_F(RecursionGate, OversizedMemberIsListedUnreadAndTheNextOneIsScanned) {
  lim.max_member_bytes = 1000;
  scan("/big.zip", zip({{"big.bin", std::string(2000, 'x')}, {"small.txt", "small\n"}}));
  EXPECT_EQ(sink.limit_paths("max_member_bytes"), std::vector<std::string>{"/big.zip!big.bin"});
  const sc::file_entry* big = sink.file("/big.zip!big.bin");
  ASSERT_NE(big, nullptr);
  EXPECT_EQ(big->skipped, "member larger than max_member_bytes");
  EXPECT_EQ(big->bytes_read, 0u);
  const sc::file_entry* small = sink.file("/big.zip!small.txt");
  ASSERT_NE(small, nullptr);
  EXPECT_TRUE(small->content_complete);
}

TEST_F(RecursionGate, DeclaredBombIsOneFindingOnTheContainerAndOneLimit) {
  lim.max_expansion_ratio = 2;  // a container under 1 MiB may expand to 2 MiB
  const auto& top = scan("/bomb.zip", zip({{"zeros.bin", zeros(3 * mib)}, {"after.txt", "never listed\n"}}));
  EXPECT_EQ(sink.limit_paths("max_expansion_ratio"), std::vector<std::string>{"/bomb.zip"});
  EXPECT_EQ(std::count_if(top.findings.begin(), top.findings.end(),
                          [](const sc::finding& f) { return f.rule == "archive_bomb"; }),
            1);
  const sc::file_entry* member = sink.file("/bomb.zip!zeros.bin");
  ASSERT_NE(member, nullptr);
  EXPECT_EQ(member->skipped, "declared size exceeds the expansion ratio");
  EXPECT_EQ(member->bytes_read, 0u) << "the header alone promised a bomb";
  EXPECT_EQ(sink.file("/bomb.zip!after.txt"), nullptr);
}

TEST_F(RecursionGate, StreamOfUnknownSizeStopsAtTheRatioWhileRead) {
  lim.max_expansion_ratio = 2;
  archive_writer gz(archive_writer::kind::gzip_stream);
  const auto& top = scan("/zeros.bin.gz", gz.add("zeros.bin", zeros(16 * mib)).bytes());
  EXPECT_EQ(sink.limit_paths("max_expansion_ratio"), std::vector<std::string>{"/zeros.bin.gz"});
  ASSERT_TRUE(has_finding(top, "archive_bomb"));
  const sc::file_entry* member = sink.file("/zeros.bin.gz!zeros.bin");
  ASSERT_NE(member, nullptr);
  // Reading stops within one read (the scanner's 4 MiB block) past the ratio, not at the end.
  EXPECT_GT(member->bytes_read, 2 * mib);
  EXPECT_LE(member->bytes_read, 6 * mib);
}

TEST_F(RecursionGate, NestedExpansionCountsAgainstTheOuterContainer) {
  // Each inner zip expands to 1.5 MiB, within its own ratio (2 x 1 MiB); the
  // two together pass the outer one's, which must be the one that stops.
  lim.max_expansion_ratio = 2;
  const std::string inner = zip({{"zeros.bin", zeros(3 * mib / 2)}, {"after.txt", "after\n"}});
  const auto& top =
      scan("/outer.zip", zip({{"inner1.zip", inner}, {"inner2.zip", inner}}, archive_writer::kind::zip_store));
  EXPECT_EQ(sink.limit_paths("max_expansion_ratio"), std::vector<std::string>{"/outer.zip"});
  ASSERT_TRUE(has_finding(top, "archive_bomb"));
  const auto bomb = std::find_if(top.findings.begin(), top.findings.end(),
                                 [](const sc::finding& f) { return f.rule == "archive_bomb"; });
  EXPECT_GT(bomb->meta.at("expanded_bytes").get<std::uint64_t>(), 2 * mib);
  for (const char* inner_path : {"/outer.zip!inner1.zip", "/outer.zip!inner2.zip"}) {
    const sc::file_entry* f = sink.file(inner_path);
    ASSERT_NE(f, nullptr) << inner_path;
    EXPECT_FALSE(has_finding(*f, "archive_bomb")) << inner_path << " stayed within its own ratio";
  }
  EXPECT_NE(sink.file("/outer.zip!inner1.zip!after.txt"), nullptr);
  EXPECT_NE(sink.file("/outer.zip!inner2.zip!zeros.bin"), nullptr);
  EXPECT_EQ(sink.file("/outer.zip!inner2.zip!after.txt"), nullptr) << "the outer container's ratio ends the listing";
}

TEST_F(RecursionGate, BudgetIsRecordedWhereItRanOutAndAtEachContainerLeftClosed) {
  lim.max_total_expanded_bytes = 1000;
  scan("/first.zip", zip({{"a.txt", std::string(1500, 'a')}, {"b.txt", "b\n"}}));
  scan("/second.zip", zip({{"c.txt", "c\n"}}));
  scan("/third.zip", zip({{"d.txt", "d\n"}}));
  EXPECT_EQ(sink.limit_paths("max_total_expanded_bytes"),
            (std::vector<std::string>{"/first.zip", "/second.zip", "/third.zip"}));
  EXPECT_NE(sink.file("/first.zip!a.txt"), nullptr);
  EXPECT_EQ(sink.file("/first.zip!b.txt"), nullptr) << "the listing stops where the budget ran out";
  EXPECT_EQ(sink.file("/second.zip!c.txt"), nullptr);
}

TEST_F(RecursionGate, ContainerTooLargeToHoldIsRecordedOnceAndNotOpened) {
  lim.member_memory_bytes = 100;
  const std::string nested = zip({{"x.txt", std::string(500, 'x')}});
  ASSERT_GT(nested.size(), 100u);
  scan("/outer.zip", zip({{"nested.zip", nested}}));
  EXPECT_EQ(sink.limit_paths("member_memory_bytes"), std::vector<std::string>{"/outer.zip!nested.zip"});
  const sc::file_entry* f = sink.file("/outer.zip!nested.zip");
  ASSERT_NE(f, nullptr);
  EXPECT_TRUE(f->content_complete) << "scanned whole as it streamed";
  EXPECT_EQ(f->skipped, "nested container too large to expand in memory");
  EXPECT_EQ(sink.file("/outer.zip!nested.zip!x.txt"), nullptr);
}

// With a scratch folder, the nested container streamed past the memory bound
// is kept there as it streams and opened afterwards; the copy is gone after.
TEST_F(RecursionGate, ContainerTooLargeToHoldIsSpooledAndOpenedWithAScratchFolder) {
  const std::filesystem::path dir = tmp / "scratch";
  std::filesystem::create_directory(dir);
  sc::scratch_space space(dir);
  scratch = &space;
  lim.member_memory_bytes = 100;
  const std::string nested = zip({{"x.txt", std::string(500, 'x')}, {"eicar.com", borderscan::test::eicar()}});
  scan("/outer.zip", zip({{"nested.zip", nested}}));
  EXPECT_TRUE(sink.limit_paths("member_memory_bytes").empty());
  const sc::file_entry* f = sink.file("/outer.zip!nested.zip");
  ASSERT_NE(f, nullptr);
  EXPECT_FALSE(f->skipped.has_value());
  const sc::file_entry* e = sink.file("/outer.zip!nested.zip!eicar.com");
  ASSERT_NE(e, nullptr);
  EXPECT_TRUE(has_finding(*e, "EICAR_Test_File")) << "found inside the spooled copy";
  EXPECT_TRUE(std::filesystem::is_empty(dir)) << "the spooled copy is removed";
}

TEST_F(RecursionGate, StopLeavesTopLevelObjectsUnreadWithTheReason) {
  sink.stop = true;
  const auto& top = scan("/a.zip", zip({{"a.txt", "a\n"}}));
  EXPECT_EQ(top.skipped, "cancelled");
  EXPECT_EQ(top.bytes_read, 0u);
  EXPECT_EQ(sink.files.size(), 1u);
  EXPECT_TRUE(sink.limits.empty()) << "the sink records its own stop";
}

// A container type of the test's own: a text file named *.lines whose lines
// are its members, stored as they are.
class lines_stage final : public sc::container_stage {
 public:
  std::string_view name() const override { return "lines"; }
  sc::member_bytes yields() const override { return sc::member_bytes::stored; }
  bool claims(const sc::file_entry& entry) const override {
    return entry.mime == "text/plain" && entry.path.ends_with(".lines");
  }
  void expand(sc::container& parent, sc::content_source& source, sc::recursion_gate& gate) const override {
    std::string text(source.size(), '\0');
    text.resize(source.read_at(0, std::as_writable_bytes(std::span(text))));
    std::size_t start = 0;
    for (int n = 1; start < text.size() && gate.more(parent); ++n) {
      const std::size_t end = std::min(text.find('\n', start), text.size());
      sc::file_entry child;
      child.path = "line-" + std::to_string(n);
      child.type = "regular";
      child.size = end - start;
      memory_member line(text.substr(start, end - start));
      gate.recurse(parent, std::move(child), line);
      start = end + 1;
    }
  }
};

TEST_F(RecursionGate, AStageAddedToTheListIsPickedByClaims) {
  const lines_stage lines;
  sc::recursion_gate::stage_list stages = sc::default_container_stages();
  stages.push_back(&lines);
  scan("/list.lines", "first line\n" + borderscan::test::eicar() + "\n", stages);
  const sc::file_entry* first = sink.file("/list.lines!line-1");
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->container, "/list.lines");
  EXPECT_EQ(first->depth, 1u);
  EXPECT_TRUE(first->content_complete);
  const sc::file_entry* second = sink.file("/list.lines!line-2");
  ASSERT_NE(second, nullptr);
  EXPECT_TRUE(has_finding(*second, "EICAR_Test_File"));

  // Not claimed: the zip stage stays in the list, the lines stage passes on it.
  scan("/a.zip", zip({{"a.txt", "a\n"}}), stages);
  EXPECT_NE(sink.file("/a.zip!a.txt"), nullptr);
  // Without the stage, the same file is only a file.
  sink.files.clear();
  scan("/list.lines", "first line\n", sc::default_container_stages());
  EXPECT_EQ(sink.files.size(), 1u);
}

// A container type whose members are copies of its own content, as files
// that share blocks are in a crafted file system.
class echo_stage final : public sc::container_stage {
 public:
  std::string_view name() const override { return "echo"; }
  sc::member_bytes yields() const override { return sc::member_bytes::stored; }
  bool claims(const sc::file_entry& entry) const override { return entry.path.ends_with(".echo"); }
  void expand(sc::container& parent, sc::content_source& source, sc::recursion_gate& gate) const override {
    std::string content(source.size(), '\0');
    content.resize(source.read_at(0, std::as_writable_bytes(std::span(content))));
    for (int n = 1; n <= 3 && gate.more(parent); ++n) {
      sc::file_entry child;
      child.path = "copy-" + std::to_string(n);
      child.type = "regular";
      child.size = content.size();
      memory_member copy(content);
      gate.recurse(parent, std::move(child), copy);
    }
  }
};

TEST_F(RecursionGate, StoredMembersCountAgainstTheRatioOnceRead) {
  lim.max_expansion_ratio = 1;  // a container under 1 MiB may yield 1 MiB
  const echo_stage echo;
  const auto& top = scan("/blocks.echo", std::string(600 * 1024, 'x'), sc::recursion_gate::stage_list{&echo});
  EXPECT_EQ(sink.limit_paths("max_expansion_ratio"), std::vector<std::string>{"/blocks.echo"});
  ASSERT_TRUE(has_finding(top, "archive_bomb"));
  const sc::file_entry* second = sink.file("/blocks.echo!copy-2");
  ASSERT_NE(second, nullptr);
  EXPECT_TRUE(second->content_complete) << "a stored member is read whole, then counted";
  EXPECT_EQ(sink.file("/blocks.echo!copy-3"), nullptr) << "the listing stops once the ratio is passed";
}

}  // namespace

TEST_F(RecursionGate, FlaggedMembersHeldOrStreamedAreKeptInTheEvidencePack) {
  keep_evidence();
  const std::string eicar = borderscan::test::eicar();
  const std::string other = "X5O" + eicar.substr(3, 60) + "-other-copy";  // not EICAR: never flagged
  const std::string bytes = zip({{"held/eicar.com", eicar}, {"note.txt", other}});
  scan("/a.zip", bytes);
  lim.member_memory_bytes = 0;  // now every member is streamed once, forward only
  scan("/b.zip", zip({{"streamed/eicar.com", eicar + "\n"}, {"note.txt", other}}));
  for (const char* path : {"/a.zip!held/eicar.com", "/b.zip!streamed/eicar.com"}) {
    const sc::file_entry* member = sink.file(path);
    ASSERT_NE(member, nullptr) << path;
    ASSERT_TRUE(has_finding(*member, "EICAR_Test_File")) << path;
    ASSERT_TRUE(member->evidence.has_value()) << path;
    EXPECT_TRUE(member->evidence->kept) << path;
  }
  for (const char* path : {"/a.zip!note.txt", "/b.zip!note.txt", "/a.zip", "/b.zip"}) {
    ASSERT_NE(sink.file(path), nullptr) << path;
    EXPECT_FALSE(sink.file(path)->evidence.has_value()) << path;
  }
  const auto content = kept();
  ASSERT_EQ(content.size(), 2u);
  EXPECT_EQ(content.at(sink.file("/a.zip!held/eicar.com")->sha256), eicar);
  EXPECT_EQ(content.at(sink.file("/b.zip!streamed/eicar.com")->sha256), eicar + "\n");
}

TEST_F(RecursionGate, ContainerFlaggedAsABombAfterItsScanIsKept) {
  keep_evidence();
  lim.max_expansion_ratio = 2;
  const std::string bytes = zip({{"zeros.bin", zeros(3 * mib)}});
  const auto& top = scan("/bomb.zip", bytes);
  ASSERT_TRUE(has_finding(top, "archive_bomb"));
  ASSERT_TRUE(top.evidence.has_value()) << "flagged by the gate, after the scanner saw it";
  EXPECT_TRUE(top.evidence->kept);
  EXPECT_EQ(kept().at(top.sha256), bytes);
}
