#include "borderscan/server/report_ingest.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <fstream>

#include "borderscan/scanner/digest.hpp"
#include "borderscan/scanner/report_file.hpp"
#include "server_test_support.hpp"

namespace borderscan::server {
namespace {

using namespace test_support;
using nlohmann::json;

// A done-looking scan of fat-simple.img (flagged: EICAR), its report written
// as the worker writes it, ready for ingest.
struct ingest_case {
  wired w;
  scan_record scan;
  report_file file;
  json document;

  ingest_case() {
    const auto image = w.spool / "x.img";
    std::filesystem::copy_file(test::fixture_dir() / "fat-simple.img", image);
    scan.id = w.ids.next();
    scan.station = "k1";
    scan.spool_path = image.string();
    w.store.add_scan(scan, {});
    std::atomic<bool> cancel{false};
    in_process_runner runner({}, w.rules, 1);
    file = runner.run({scan, cancel, nullptr});
    document = json::parse(read_file(file.path));
  }

  // Replaces the report file with `doc` and claims what is now on disk.
  void rewrite(const json& doc) { rewrite_text(doc.dump(2)); }
  void rewrite_text(const std::string& text) {
    std::ofstream(file.path, std::ios::binary | std::ios::trunc) << text;
    file.size = text.size();
    file.sha256 = scanner::sha256_hex(text);
  }

  // The failure ingest ends with ("" when it stored the report).
  std::string failure() {
    try {
      w.ingest.ingest(scan, file, scanner::severity::medium);
      return "";
    } catch (const scan_failed& e) {
      return e.what();
    }
  }
};

TEST(ReportIngest, StoresRowsInBatchesAndMovesTheUntouchedFileIntoTheReportFolder) {
  ingest_case c;
  const std::string bytes = read_file(c.file.path);
  report_ingest small_batches(c.w.store, {c.w.dir / "reports", 512ULL << 20, 2, nullptr, {}});
  const stored_report stored = small_batches.ingest(c.scan, c.file, scanner::severity::medium);
  EXPECT_FALSE(std::filesystem::exists(c.file.path)) << "moved, not copied";
  EXPECT_EQ(stored.path, (c.w.dir / "reports" / (c.scan.id + ".json")).string());
  EXPECT_EQ(read_file(stored.path), bytes) << "served exactly as the worker wrote it";
  EXPECT_EQ(stored.sha256, scanner::sha256_hex(bytes));
  EXPECT_EQ(stored.size, bytes.size());
  EXPECT_EQ(stored.verdict, "flagged");
  EXPECT_EQ(stored.files, c.document.at("files").size());
  EXPECT_EQ(stored.flagged_files, 1U);
  EXPECT_EQ(stored.ruleset_digest, c.w.rules.current()->info().digest);

  c.w.store.complete(c.scan.id, stored, 5);
  file_filter all;
  all.limit = 1000;
  const auto rows = c.w.store.list_files(c.scan.id, all);
  ASSERT_TRUE(rows);
  ASSERT_EQ(rows->items.size(), c.document.at("files").size());
  for (std::size_t i = 0; i < rows->items.size(); ++i) {
    EXPECT_EQ(json::parse(rows->items[i]), c.document.at("files")[i]) << i;
  }
}

TEST(ReportIngest, ARetryReplacesTheRowsOfAnEarlierAttempt) {
  ingest_case c;
  const std::string bytes = read_file(c.file.path);
  c.w.ingest.ingest(c.scan, c.file, scanner::severity::medium);  // rows stored, then (say) the daemon died
  std::ofstream(c.file.path, std::ios::binary) << bytes;
  c.w.store.complete(c.scan.id, c.w.ingest.ingest(c.scan, c.file, scanner::severity::medium), 5);
  file_filter all;
  all.limit = 1000;
  EXPECT_EQ(c.w.store.list_files(c.scan.id, all)->items.size(), c.document.at("files").size());
}

TEST(ReportIngest, RefusesAFileThatIsNotWhatTheWorkerClaimed) {
  ingest_case c;
  c.file.sha256 = std::string(64, '0');
  EXPECT_EQ(c.failure().rfind("malformed worker output: the report file's SHA-256 is ", 0), 0U) << c.failure();
  c.file.size += 1;
  EXPECT_NE(c.failure().find("the worker said " + std::to_string(c.file.size)), std::string::npos) << c.failure();
  EXPECT_TRUE(std::filesystem::exists(c.file.path)) << "a refused report is not moved into the store";
}

TEST(ReportIngest, RefusesDocumentsThatAreNotAReportOrContradictThemselves) {
  ingest_case c;
  const json good = c.document;
  struct damage {
    const char* what;
    std::function<void(json&)> apply;
    const char* expected;
  };
  const std::vector<damage> cases = {
      {"one entry less", [](json& d) { d.at("files").erase(d.at("files").begin()); }, "summary."},
      {"summary off", [](json& d) { d.at("summary").at("bytes") = 1; }, "summary.bytes is 1"},
      {"flagged hidden", [](json& d) { d.at("verdict") = "clean"; }, "verdict clean does not follow"},
      {"score raised", [](json& d) { d.at("score") = 100; }, "score 100 does not follow"},
      {"mistyped entry", [](json& d) { d.at("files")[1].at("size") = "big"; }, "file entry 1:"},
      {"no files", [](json& d) { d.erase("files"); }, "no files or findings"},
      {"other scan", [](json& d) { d.at("scan_id") = "ffff"; }, "the report is of scan 'ffff'"},
      {"other schema", [](json& d) { d.at("schema") = "x/v9"; }, "not a borderscan.report/v1 document"},
  };
  for (const auto& d : cases) {
    json doc = good;
    d.apply(doc);
    c.rewrite(doc);
    const std::string got = c.failure();
    EXPECT_NE(got.find(d.expected), std::string::npos) << d.what << ": " << got;
    EXPECT_EQ(got.rfind("malformed worker output: ", 0), 0U) << d.what << ": " << got;
  }
  c.rewrite_text(good.dump().substr(0, 200));
  EXPECT_NE(c.failure().find("not JSON at byte"), std::string::npos) << c.failure();
  c.rewrite(good);
  EXPECT_EQ(c.failure(), "");
}

TEST(ReportIngest, ReportsOfAnotherRuleSetAreARuleSetMismatch) {
  ingest_case c;
  try {
    c.w.ingest.ingest(c.scan, c.file, scanner::severity::medium, "sha256:other");
    FAIL() << "accepted";
  } catch (const scan_failed& e) {
    EXPECT_EQ(std::string(e.what()).rfind("rule-set digest mismatch: the report names ", 0), 0U) << e.what();
  }
}

}  // namespace
}  // namespace borderscan::server
