// The real borderscand on the PostgreSQL store (storage.database a
// postgresql:// URL): upload, scan, report, review and `borderscand audit
// verify`, all against a fresh database on the test server.
#include <signal.h>

#include <gtest/gtest.h>

#include "daemon_harness.hpp"
#include "server_test_support.hpp"
#include "support/pg_test_server.hpp"

namespace borderscan::server {
namespace {

using namespace test_support;
using nlohmann::json;
namespace http = boost::beast::http;

TEST(DaemonPostgres, UploadScanReportReviewAndAuditVerify) {
  test::scratch_dir dir;
  const std::string url = test::new_postgres_database();
  daemon d(dir / "data", {.storage_extra = "database = \"" + url + "\"\n"});
  d.start();
  const std::string reviewer = d.token("rev-1", "reviewer");
  const auto uploaded =
      http_call(d.port(), http::verb::post, "/api/v1/scans?case_ref=C-9",
                read_file(test::fixture_dir() / "fat-simple.img"), {{"Authorization", "Bearer " + d.token("k1")}});
  ASSERT_EQ(uploaded.status, 202U) << uploaded.body;
  const std::string id = uploaded.json().at("id");
  ASSERT_TRUE(eventually([&] { return http_get(d.port(), "/api/v1/scans/" + id).json().at("status") == "done"; }))
      << d.log();
  const std::map<std::string, std::string> as_reviewer = {{"Authorization", "Bearer " + reviewer},
                                                          {"Content-Type", "application/json"}};
  const auto report = http_call(d.port(), http::verb::get, "/api/v1/scans/" + id + "/report", {}, as_reviewer);
  ASSERT_EQ(report.status, 200U) << report.body;
  EXPECT_EQ(report.json().at("verdict"), "flagged");
  const auto pending =
      http_call(d.port(), http::verb::get, "/api/v1/reports?review=pending&case_ref=C-9", {}, as_reviewer);
  EXPECT_EQ(pending.json().at("items").size(), 1U) << pending.body;
  const auto files =
      http_call(d.port(), http::verb::get, "/api/v1/reports/" + id + "/files?flagged=true", {}, as_reviewer);
  EXPECT_EQ(files.status, 200U) << files.body;
  EXPECT_FALSE(files.json().at("items").empty()) << files.body;
  const auto reviewed = http_call(d.port(), http::verb::post, "/api/v1/reports/" + id + "/reviews",
                                  R"({"decision":"confirmed","note":"EICAR"})", as_reviewer);
  ASSERT_EQ(reviewed.status, 201U) << reviewed.body;
  EXPECT_EQ(http_call(d.port(), http::verb::get, "/api/v1/reports?review=reviewed", {}, as_reviewer)
                .json()
                .at("items")
                .size(),
            1U);
  EXPECT_EQ(http_get(d.port(), "/readyz").status, 200U);
  EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();
  EXPECT_FALSE(std::filesystem::exists(d.data_dir() / "borderscan.db")) << "the store is PostgreSQL, not a file";

  const std::string verify = std::string(BORDERSCAND) + " audit verify --config " + d.config_file().string();
  const auto intact = test::run_command(verify);
  EXPECT_EQ(intact.exit_code, 0) << intact.out << intact.err;
  EXPECT_NE(intact.out.find("intact"), std::string::npos) << intact.out;
  // Someone with write access to the database rewrites who reviewed the report.
  test::postgres_exec(url, "UPDATE audit_log SET actor_name = 'nobody' WHERE event = 'review_recorded'");
  const auto broken = test::run_command(verify);
  EXPECT_EQ(broken.exit_code, 1) << broken.out << broken.err;
  EXPECT_NE(broken.out.find("BROKEN at entry"), std::string::npos) << broken.out;
}

TEST(DaemonPostgres, AnUnreachableDatabaseStopsTheStartWithAClearError) {
  test::scratch_dir dir;
  const auto r =
      test::run_command(std::string(BORDERSCAND) + " serve --listen 127.0.0.1:0 --data-dir " + (dir / "data").string() +
                        " --database 'postgresql:///none?host=" + dir.path().string() + "&user=borderscan'");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("cannot connect to PostgreSQL"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace borderscan::server
