// Report entries spilled to a temporary file give the same report as entries
// kept in memory, with the same order, summary, findings and verdict.

#include <gtest/gtest.h>

#include <sstream>

#include "borderscan/scanner/engine.hpp"
#include "borderscan/scanner/file_spill.hpp"
#include "support/test_support.hpp"

namespace borderscan {
namespace {

namespace fs = std::filesystem;
namespace sc = borderscan::scanner;

// The report as written, without what differs between any two runs.
nlohmann::json written(const sc::report& r, bool pretty) {
  std::ostringstream out;
  sc::write_report(out, r, pretty);
  auto j = nlohmann::json::parse(out.str());
  for (const char* key : {"scan_id", "started_at", "finished_at", "timings"}) {
    j.erase(key);
  }
  return j;
}

TEST(Spill, SpilledReportsEqualInMemoryReports) {
  test::scratch_dir tmp;
  const std::vector<std::vector<fs::path>> images = {
      {test::fixture_dir() / "fat-simple.img"},
      {test::fixture_dir() / "ext4-simple.img"},
      {test::fixture_dir() / "gpt-two-volumes.img"},
      {test::fixture_dir() / "iso-simple.iso"},
      {test::clean_image()},
  };
  const sc::engine eng({}, test::shipped_rules());
  for (const auto& segments : images) {
    sc::scan_options in_memory;
    in_memory.jobs = 2;
    const sc::report kept = eng.scan(segments, in_memory);

    sc::scan_options spilled_options = in_memory;
    spilled_options.spill = std::make_shared<sc::file_spill>(tmp.path());
    const sc::report spilled = eng.scan(segments, spilled_options);
    ASSERT_TRUE(spilled.spilled_files) << segments.front();
    EXPECT_TRUE(spilled.files.empty()) << "every entry went to the spill file";
    EXPECT_GT(spilled.spilled_files->size(), 0U) << segments.front();

    for (const bool pretty : {true, false}) {
      EXPECT_EQ(written(spilled, pretty), written(kept, pretty)) << segments.front() << " pretty=" << pretty;
    }
    nlohmann::json tree = spilled;
    EXPECT_TRUE(test::validate_report(tree));
    EXPECT_EQ(tree.at("files"), nlohmann::json(kept).at("files")) << segments.front();
  }
}

TEST(Spill, SortsTalliesAndReadsBackEntries) {
  test::scratch_dir tmp;
  sc::file_spill spill(tmp.path());
  const auto entry = [](std::uint32_t volume, std::string path, std::string type, std::optional<sc::severity> level) {
    sc::file_entry f;
    f.volume = volume;
    f.path = std::move(path);
    f.type = std::move(type);
    f.mime = f.type == "directory" ? "" : "text/plain";
    f.bytes_read = 10;
    if (level) {
      sc::finding fi;
      fi.path = f.path;
      fi.volume = volume;
      fi.source = "yara";
      fi.rule = "r";
      fi.level = *level;
      f.findings.push_back(fi);
    }
    return f;
  };
  spill.add(entry(1, "/b", "regular", sc::severity::high));
  spill.add(entry(0, "/z", "regular", std::nullopt));
  spill.add(entry(1, "/a", "directory", std::nullopt));
  spill.add(entry(0, "/c \"quoted\"", "regular", sc::severity::low));
  spill.sort();
  std::vector<std::string> order;
  for (const auto& f : spill.load()) {
    order.push_back(std::to_string(f.volume) + f.path);
  }
  EXPECT_EQ(order, (std::vector<std::string>{"0/c \"quoted\"", "0/z", "1/a", "1/b"}));
  EXPECT_EQ(spill.tally().files, 3U);
  EXPECT_EQ(spill.tally().directories, 1U);
  EXPECT_EQ(spill.tally().bytes, 40U);
  EXPECT_EQ(spill.tally().by_mime.at("text/plain"), 3U);
  EXPECT_EQ(spill.findings().size(), 2U);
  EXPECT_EQ(spill.files_at_or_above(sc::severity::medium), 1U);
  EXPECT_EQ(spill.files_at_or_above(sc::severity::info), 2U);
  EXPECT_EQ(spill.files_in_volume(0), 2U);
  EXPECT_EQ(spill.files_in_volume(7), 0U);
  std::size_t texts = 0;
  spill.for_each_text({}, [&](std::string_view text) {
    EXPECT_TRUE(nlohmann::json::accept(text)) << text;
    ++texts;
  });
  EXPECT_EQ(texts, 4U);
}

TEST(Spill, AFullSpillKeepsTheRestInMemoryAndTheReportWhole) {
  test::scratch_dir tmp;
  const sc::engine eng({}, test::shipped_rules());
  const std::vector<fs::path> image = {test::fixture_dir() / "fat-simple.img"};
  sc::scan_options in_memory;
  in_memory.jobs = 2;
  const sc::report kept = eng.scan(image, in_memory);
  // Room for a few entries only: the rest stay in memory and both are merged.
  sc::scan_options spilled_options = in_memory;
  spilled_options.spill = std::make_shared<sc::file_spill>(tmp.path(), 2000);
  const sc::report r = eng.scan(image, spilled_options);
  ASSERT_TRUE(r.spilled_files);
  EXPECT_GT(r.spilled_files->size(), 0U);
  EXPECT_FALSE(r.files.empty());
  ASSERT_FALSE(r.warnings.empty());
  EXPECT_TRUE(r.warnings.back().starts_with("report entries kept in memory from here on:")) << r.warnings.back();
  for (const bool pretty : {true, false}) {
    auto got = written(r, pretty);
    got["warnings"].erase(got["warnings"].size() - 1);
    EXPECT_EQ(got, written(kept, pretty)) << "pretty=" << pretty;
  }
  nlohmann::json tree = r;
  EXPECT_EQ(tree.at("files"), nlohmann::json(kept).at("files"));
  EXPECT_THROW((void)eng.scan(image, spilled_options), std::invalid_argument) << "a used spill is not reused";
}

TEST(Spill, ADirectoryThatCannotHoldOneGivesAReason) {
  std::string why;
  EXPECT_EQ(sc::file_spill::open_in("/nonexistent/borderscan", 0, why), nullptr);
  EXPECT_NE(why.find("/nonexistent/borderscan"), std::string::npos) << why;
}

}  // namespace
}  // namespace borderscan
