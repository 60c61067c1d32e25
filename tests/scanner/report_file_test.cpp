#include "borderscan/scanner/report_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "borderscan/scanner/digest.hpp"
#include "support/test_support.hpp"

namespace sc = borderscan::scanner;
namespace fs = std::filesystem;

namespace {

sc::report scanned(const fs::path& image) {
  const sc::engine eng({}, borderscan::test::shipped_rules());
  sc::scan_options opts;
  opts.jobs = 2;
  opts.scan_id = "s-1";
  return eng.scan({image}, opts);
}

std::string file_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace

TEST(ReportFile, WritesWhatWriteReportWritesAndSaysItsSizeAndHash) {
  borderscan::test::scratch_dir dir;
  const sc::report r = scanned(borderscan::test::fixture_dir() / "gpt-two-volumes.img");
  const fs::path file = dir / "r.json";
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  ASSERT_GE(fd, 0);
  const auto info = sc::write_report_file(fd, r);
  ::close(fd);
  std::ostringstream expected;
  sc::write_report(expected, r, true);
  expected << "\n";
  EXPECT_EQ(file_text(file), expected.str());
  EXPECT_EQ(info.size, expected.str().size());
  EXPECT_EQ(info.sha256, sc::sha256_hex(expected.str()));
}

TEST(ReportFile, StopsAtItsByteBudget) {
  borderscan::test::scratch_dir dir;
  const sc::report r = scanned(borderscan::test::fixture_dir() / "fat-simple.img");
  const int fd = ::open((dir / "r.json").c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  ASSERT_GE(fd, 0);
  EXPECT_THROW(sc::write_report_file(fd, r, 1000), std::length_error);
  ::close(fd);
  EXPECT_LE(fs::file_size(dir / "r.json"), 1000U);
}

TEST(ReportFile, ReadsBackEntryByEntryWhatWasWritten) {
  const sc::report r = scanned(borderscan::test::fixture_dir() / "gpt-two-volumes.img");
  std::stringstream text;
  sc::write_report(text, r, true);
  const nlohmann::json whole = nlohmann::json::parse(text.str());
  std::vector<nlohmann::json> seen;
  const auto reading = sc::read_report(text, sc::severity::medium, [&](const sc::file_entry& e, const std::string& t) {
    const auto j = nlohmann::json::parse(t);
    EXPECT_EQ(j.at("path"), e.path);
    seen.push_back(j);
  });
  ASSERT_EQ(seen.size(), whole.at("files").size());
  for (std::size_t i = 0; i < seen.size(); ++i) {
    EXPECT_EQ(seen[i], whole.at("files")[i]) << i;
  }
  EXPECT_EQ(reading.files, whole.at("files").size());
  EXPECT_EQ(reading.findings, whole.at("findings").size());
  EXPECT_TRUE(reading.head.files.empty()) << "entries are handed over, not kept";
  EXPECT_EQ(reading.head.scan_id, "s-1");
  EXPECT_EQ(reading.head.result, sc::verdict::flagged);
  EXPECT_EQ(reading.head.summary.files, r.summary.files);
  EXPECT_EQ(reading.head.volumes.size(), r.volumes.size());
}

TEST(ReportFile, AReportJudgedAtAnotherThresholdDoesNotPass) {
  const sc::report r = scanned(borderscan::test::fixture_dir() / "fat-simple.img");
  std::stringstream text;
  sc::write_report(text, r, false);
  // Flagged at medium; at critical the EICAR findings (high) would flag nothing.
  EXPECT_THROW(sc::read_report(text, sc::severity::critical, [](const auto&, const auto&) {}), sc::report_invalid);
}
