// The real borderscand on the PostgreSQL store (storage.database a
// postgresql:// URL): upload, scan, report, review and `borderscand audit
// verify`, all against a fresh database on the test server.
#include <signal.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <thread>

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

// Two nodes, each in its own folder, on one database and one spool folder.
daemon_options node_options(const std::string& url, const std::filesystem::path& spool, const std::string& node,
                            unsigned lease_seconds) {
  daemon_options o;
  o.workers = 1;
  o.queue_capacity = 32;
  o.storage_extra = "database = \"" + url + "\"\nspool_dir = \"" + spool.string() + "\"\nnode_id = \"" + node + "\"\n";
  o.jobs_extra = "lease_seconds = " + std::to_string(lease_seconds);
  return o;
}

json scan_on(std::uint16_t port, const std::string& id) {
  return http_get(port, "/api/v1/scans/" + id).json();
}

std::size_t audit_count(std::uint16_t port, const std::string& event, const std::string& scan_id) {
  return http_get(port, "/api/v1/audit?limit=1000&event=" + event + "&scan=" + scan_id).json().at("items").size();
}

TEST(DaemonPostgres, TwoNodesShareTheQueueReviewsAndAuditChain) {
  test::scratch_dir dir;
  const std::string url = test::new_postgres_database();
  daemon a(dir / "a" / "data", node_options(url, dir / "spool", "node-a", 30));
  a.start();
  const std::string station = a.token("k1");
  const std::string reviewer = a.token("rev-1", "reviewer");
  daemon b(dir / "b" / "data", node_options(url, dir / "spool", "node-b", 30));
  b.share_tokens(a);
  b.start();
  const std::string image = read_file(test::fixture_dir() / "fat-simple.img");
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) {
    daemon& to = i % 2 == 0 ? a : b;
    const auto up = http_call(to.port(), http::verb::post, "/api/v1/scans?case_ref=C-" + std::to_string(i), image,
                              {{"Authorization", "Bearer " + station}});
    ASSERT_EQ(up.status, 202U) << up.body;
    ids.push_back(up.json().at("id"));
  }
  ASSERT_TRUE(eventually(
      [&] {
        return std::all_of(ids.begin(), ids.end(),
                           [&](const std::string& id) { return scan_on(a.port(), id).at("status") == "done"; });
      },
      std::chrono::seconds(180)))
      << a.log() << b.log();
  for (const auto& id : ids) {
    // Each ran once: one claim, one scan_done, on whichever node took it.
    EXPECT_EQ(scan_on(b.port(), id).at("attempts"), 1) << id;
    EXPECT_EQ(audit_count(a.port(), "scan_done", id), 1U) << id;
  }
  // Both nodes scanned: each has a worker, and each claims what it can.
  EXPECT_NE(a.log().find("state=done"), std::string::npos);
  EXPECT_NE(b.log().find("state=done"), std::string::npos);

  const std::map<std::string, std::string> as_reviewer = {{"Authorization", "Bearer " + reviewer},
                                                          {"Content-Type", "application/json"}};
  const auto reviewed = http_call(a.port(), http::verb::post, "/api/v1/reports/" + ids[3] + "/reviews",
                                  R"({"decision":"confirmed","note":"seen on node a"})", as_reviewer);
  ASSERT_EQ(reviewed.status, 201U) << reviewed.body;
  const auto seen = http_call(b.port(), http::verb::get, "/api/v1/reports/" + ids[3] + "/reviews", {}, as_reviewer);
  ASSERT_EQ(seen.status, 200U) << seen.body;
  ASSERT_EQ(seen.json().at("items").size(), 1U) << seen.body;
  EXPECT_EQ(seen.json().at("items")[0].at("note"), "seen on node a");

  EXPECT_EQ(a.stop(SIGTERM), 0) << a.log();
  EXPECT_EQ(b.stop(SIGTERM), 0) << b.log();
  const auto intact =
      test::run_command(std::string(BORDERSCAND) + " audit verify --config " + b.config_file().string());
  EXPECT_EQ(intact.exit_code, 0) << intact.out << intact.err;
}

TEST(DaemonPostgres, ANodeKilledMidScanLosesItsLeaseAndTheOtherNodeFinishesTheScan) {
  test::scratch_dir dir;
  const std::string url = test::new_postgres_database();
  // Node a's scans wait a minute before they start: it dies while one waits.
  daemon_options slow = node_options(url, dir / "spool", "node-a", 2);
  slow.debug_scan_delay_ms = 60'000;
  daemon a(dir / "a" / "data", slow);
  a.start();
  const auto up =
      http_call(a.port(), http::verb::post, "/api/v1/scans", read_file(test::fixture_dir() / "fat-simple.img"),
                {{"Authorization", "Bearer " + a.token("k1")}});
  ASSERT_EQ(up.status, 202U) << up.body;
  const std::string id = up.json().at("id");
  ASSERT_TRUE(eventually([&] { return scan_on(a.port(), id).at("status") == "running"; })) << a.log();

  daemon b(dir / "b" / "data", node_options(url, dir / "spool", "node-b", 2));
  b.share_tokens(a);
  b.start();
  // b's start-up recovery leaves a's running scan alone, and a keeps renewing its lease.
  std::this_thread::sleep_for(std::chrono::seconds(3));
  EXPECT_EQ(scan_on(b.port(), id).at("status"), "running") << b.log();
  EXPECT_EQ(audit_count(b.port(), "scan_requeued", id), 0U);

  a.kill_hard();
  // A client of node b follows the scan node a started, to its end on node b.
  const auto events = http_get(b.port(), "/api/v1/scans/" + id + "/events");
  EXPECT_EQ(events.status, 200U);
  const auto last = events.body.rfind("event: ");
  ASSERT_NE(last, std::string::npos) << events.body;
  EXPECT_EQ(events.body.substr(last, 12), "event: done\n") << events.body;
  ASSERT_TRUE(eventually([&] { return scan_on(b.port(), id).at("status") == "done"; }, std::chrono::seconds(60)))
      << b.log();
  EXPECT_EQ(scan_on(b.port(), id).at("attempts"), 2);
  const auto requeued = http_get(b.port(), "/api/v1/audit?event=scan_requeued&scan=" + id).json().at("items");
  ASSERT_EQ(requeued.size(), 1U);
  EXPECT_EQ(requeued[0].at("detail").at("node"), "node-a");
  EXPECT_EQ(audit_count(b.port(), "scan_done", id), 1U);
  EXPECT_EQ(b.stop(SIGTERM), 0) << b.log();
}

// Node options reading the rule files of `rules`.
daemon_options with_rules(daemon_options o, const std::filesystem::path& rules) {
  o.extra_config = "[rules]\npaths = [\"" + rules.string() + "\"]\n";
  return o;
}

void write_rule(const std::filesystem::path& file, const std::string& name) {
  std::filesystem::create_directories(file.parent_path());
  std::ofstream(file) << "rule " << name << " { strings: $a = \"" << name << "-marker\" condition: $a }\n";
}

json rules_on(std::uint16_t port) {
  return http_get(port, "/api/v1/rules").json();
}

// The scan id of fat-simple.img uploaded to the node; "" (and a failure) when refused.
std::string uploaded(std::uint16_t port, const std::string& station) {
  const auto up = http_call(port, http::verb::post, "/api/v1/scans", read_file(test::fixture_dir() / "fat-simple.img"),
                            {{"Authorization", "Bearer " + station}});
  EXPECT_EQ(up.status, 202U) << up.body;
  return up.status == 202U ? up.json().at("id").get<std::string>() : std::string();
}

std::string report_digest(std::uint16_t port, const std::string& id) {
  return http_get(port, "/api/v1/scans/" + id + "/report").json().at("ruleset").at("digest");
}

TEST(DaemonPostgres, ARuleReloadOnOneNodeIsFollowedByTheOtherBeforeItsNextScan) {
  test::scratch_dir dir;
  const std::string url = test::new_postgres_database();
  const auto rules = dir / "rules";  // one folder both nodes read
  write_rule(rules / "a.yar", "a_rule");
  daemon a(dir / "a" / "data", with_rules(node_options(url, dir / "spool", "node-a", 30), rules));
  a.start();
  const std::string station = a.token("k1");
  daemon b(dir / "b" / "data", with_rules(node_options(url, dir / "spool", "node-b", 30), rules));
  b.share_tokens(a);
  b.start();
  const std::string first = rules_on(a.port()).at("digest");
  EXPECT_EQ(rules_on(b.port()).at("digest"), first);
  EXPECT_EQ(rules_on(b.port()).at("cluster").at("digest"), first);
  EXPECT_EQ(rules_on(b.port()).at("cluster").at("in_step"), true);

  write_rule(rules / "b.yar", "b_rule");
  const auto reloaded = http_call(a.port(), http::verb::post, "/api/v1/rules/reload");
  ASSERT_EQ(reloaded.status, 200U) << reloaded.body;
  const std::string second = reloaded.json().at("digest");
  ASSERT_NE(second, first);
  EXPECT_EQ(reloaded.json().at("cluster").at("node"), "node-a");
  // Node a gone, the next scan is node b's, which was never asked to reload.
  EXPECT_EQ(a.stop(SIGTERM), 0) << a.log();
  const std::string id = uploaded(b.port(), station);
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(eventually([&] { return scan_on(b.port(), id).at("status") == "done"; })) << b.log();
  EXPECT_EQ(report_digest(b.port(), id), second) << b.log();
  EXPECT_EQ(rules_on(b.port()).at("digest"), second);
  EXPECT_EQ(rules_on(b.port()).at("yara_rules"), 2);
  const auto followed = http_get(b.port(), "/api/v1/audit?event=rules_reloaded").json().at("items");
  ASSERT_EQ(followed.size(), 2U) << "node a's reload, node b's following it";
  EXPECT_EQ(followed[0].at("detail").at("node"), "node-b");
  EXPECT_EQ(followed[0].at("detail").at("cause"), "followed node node-a");

  // Node a starts again on the same files: the same set, nothing to follow.
  a.start();
  EXPECT_EQ(rules_on(a.port()).at("digest"), second);
  EXPECT_EQ(rules_on(b.port()).at("cluster").at("digest"), second);
  EXPECT_EQ(http_get(b.port(), "/api/v1/audit?event=rules_reloaded").json().at("items").size(), 2U);
  EXPECT_EQ(a.stop(SIGTERM), 0) << a.log();
  EXPECT_EQ(b.stop(SIGTERM), 0) << b.log();
}

TEST(DaemonPostgres, ANodeWhoseRuleFilesGiveAnotherSetClaimsNothingUntilTheyMatch) {
  test::scratch_dir dir;
  const std::string url = test::new_postgres_database();
  // Each node its own rules folder, the same file in both at first.
  write_rule(dir / "rules-a" / "a.yar", "a_rule");
  write_rule(dir / "rules-b" / "a.yar", "a_rule");
  daemon a(dir / "a" / "data", with_rules(node_options(url, dir / "spool", "node-a", 30), dir / "rules-a"));
  a.start();
  const std::string station = a.token("k1");
  daemon b(dir / "b" / "data", with_rules(node_options(url, dir / "spool", "node-b", 30), dir / "rules-b"));
  b.share_tokens(a);
  b.start();
  EXPECT_EQ(rules_on(b.port()).at("cluster").at("in_step"), true);

  // A rule added on node a's disk only, and reloaded there.
  write_rule(dir / "rules-a" / "b.yar", "b_rule");
  const auto reloaded = http_call(a.port(), http::verb::post, "/api/v1/rules/reload");
  ASSERT_EQ(reloaded.status, 200U) << reloaded.body;
  const std::string second = reloaded.json().at("digest");
  EXPECT_EQ(a.stop(SIGTERM), 0) << a.log();
  const std::string id = uploaded(b.port(), station);
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(eventually([&] { return b.log().find("cannot follow the cluster's rule set") != std::string::npos; }))
      << b.log();
  const json standing = rules_on(b.port());
  EXPECT_EQ(standing.at("cluster").at("digest"), second);
  EXPECT_EQ(standing.at("cluster").at("in_step"), false);
  EXPECT_NE(standing.at("digest"), second);
  EXPECT_EQ(scan_on(b.port(), id).at("status"), "queued") << "no report from another rule set";
  const auto failed = http_get(b.port(), "/api/v1/audit?event=rules_reload_failed").json().at("items");
  ASSERT_EQ(failed.size(), 1U) << "once per cluster set, not once a second";
  EXPECT_EQ(failed[0].at("detail").at("cluster_digest"), second);

  // The operator copies the file and reloads node b: the same set, and it scans.
  write_rule(dir / "rules-b" / "b.yar", "b_rule");
  const auto fixed = http_call(b.port(), http::verb::post, "/api/v1/rules/reload");
  ASSERT_EQ(fixed.status, 200U) << fixed.body;
  EXPECT_EQ(fixed.json().at("changed"), true);
  ASSERT_TRUE(eventually([&] { return scan_on(b.port(), id).at("status") == "done"; })) << b.log();
  EXPECT_EQ(report_digest(b.port(), id), second);
  EXPECT_EQ(rules_on(b.port()).at("cluster").at("in_step"), true);
  EXPECT_EQ(b.stop(SIGTERM), 0) << b.log();
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
