// Access control and evidence integrity with the real borderscand: the token
// and audit subcommands on a data dir, 401/403 over real HTTP, the refusal to
// listen in clear beyond loopback, and the modes of what the daemon creates.
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <fstream>

#include "daemon_harness.hpp"
#include "server_test_support.hpp"

namespace borderscan::server {
namespace {

using namespace test_support;
using nlohmann::json;
namespace http = boost::beast::http;
namespace fs = std::filesystem;

std::string borderscand(const std::string& args) {
  return std::string(BORDERSCAND) + " " + args;
}

// Uploads `image` as station k1 (or `station`) and waits until its scan is
// done; the scan id, or "" after a recorded failure.
std::string scanned(daemon& d, const fs::path& image = test::clean_image(), const std::string& station = "k1",
                    const std::string& query = "") {
  const auto res = http_call(d.port(), http::verb::post, "/api/v1/scans" + query, read_file(image),
                             {{"Authorization", "Bearer " + d.token(station)}});
  EXPECT_EQ(res.status, 202U) << res.body;
  if (res.status != 202U) {
    return {};
  }
  const std::string id = res.json().at("id");
  const bool done = eventually([&] { return http_get(d.port(), "/api/v1/scans/" + id).json().at("status") == "done"; });
  EXPECT_TRUE(done) << d.log();
  return done ? id : std::string();
}

TEST(DaemonAccess, TokenCommandsCreateListAndRevoke) {
  test::scratch_dir dir;
  const std::string data = "--data-dir " + (dir / "data").string();
  const auto made = test::run_command(borderscand("token create --role reviewer --name rev-1 " + data));
  ASSERT_EQ(made.exit_code, 0) << made.err;
  // The token is the last word of the last stdout line.
  std::string out = made.out;
  while (!out.empty() && out.back() == '\n') {
    out.pop_back();
  }
  const std::string token = out.substr(out.find_last_of(" \n") + 1);
  EXPECT_TRUE(token.starts_with("bst_")) << made.out;

  const auto again = test::run_command(borderscand("token create --role admin --name rev-1 " + data));
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("exists"), std::string::npos) << again.err;
  EXPECT_EQ(test::run_command(borderscand("token create --role root --name x " + data)).exit_code, 2);
  EXPECT_EQ(test::run_command(borderscand("token create --role admin --name 'a b' " + data)).exit_code, 2);

  const auto listed = test::run_command(borderscand("token list " + data));
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_NE(listed.out.find("rev-1\treviewer\t"), std::string::npos) << listed.out;
  EXPECT_EQ(listed.out.find(token), std::string::npos) << "token list must never print a token";

  EXPECT_EQ(test::run_command(borderscand("token revoke rev-1 " + data)).exit_code, 0);
  EXPECT_EQ(test::run_command(borderscand("token revoke rev-1 " + data)).exit_code, 1);
  EXPECT_EQ(test::run_command(borderscand("token list " + data)).out, "NAME\tROLE\tCREATED\n");
}

TEST(DaemonAccess, RoutesNeedATokenOverHttpAndRevokedTokensStopWorking) {
  test::scratch_dir dir;
  daemon d(dir / "data");
  d.start();
  const std::string station = d.token("kiosk-9");
  const std::map<std::string, std::string> none = {{"Authorization", ""}};
  EXPECT_EQ(http_call(d.port(), http::verb::get, "/healthz", {}, none).status, 200U);
  EXPECT_EQ(http_call(d.port(), http::verb::get, "/readyz", {}, none).status, 200U);
  const auto anonymous = http_call(d.port(), http::verb::get, "/metrics", {}, none);
  EXPECT_EQ(anonymous.status, 401U);
  EXPECT_EQ(anonymous.header("content-type"), "application/problem+json");
  EXPECT_EQ(anonymous.header("www-authenticate"), "Bearer realm=\"borderscan\"");
  const auto upload_anonymous =
      http_call(d.port(), http::verb::post, "/api/v1/scans", read_file(test::clean_image()), none);
  EXPECT_EQ(upload_anonymous.status, 401U);
  EXPECT_EQ(count_files(d.spool_dir()), 0U) << "nothing spooled for an unauthenticated upload";

  const std::map<std::string, std::string> as_station = {{"Authorization", "Bearer " + station}};
  EXPECT_EQ(http_call(d.port(), http::verb::get, "/api/v1/audit", {}, as_station).status, 403U);
  EXPECT_EQ(http_call(d.port(), http::verb::get, "/api/v1/reports", {}, as_station).status, 200U);

  // Revoked while the daemon runs (the CLI on the same data dir): refused at once.
  ASSERT_EQ(test::run_command(borderscand("token revoke kiosk-9 --config " + d.config_file().string())).exit_code, 0);
  EXPECT_EQ(http_call(d.port(), http::verb::get, "/api/v1/reports", {}, as_station).status, 401U);
  EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();
}

TEST(DaemonAccess, MetricsCanBeOpenedByConfiguration) {
  test::scratch_dir dir;
  daemon d(dir / "data", {.http_extra = "public_metrics = true\n"});
  d.start();
  const std::map<std::string, std::string> none = {{"Authorization", ""}};
  EXPECT_EQ(http_call(d.port(), http::verb::get, "/metrics", {}, none).status, 200U);
  EXPECT_EQ(http_call(d.port(), http::verb::get, "/api/v1/reports", {}, none).status, 401U);
  EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();
}

TEST(DaemonAccess, RefusesPlainHttpBeyondLoopbackUnlessAllowed) {
  test::scratch_dir dir;
  const fs::path config = dir / "c.toml";
  {
    std::ofstream out(config);
    out << "[http]\nlisten = \"0.0.0.0:0\"\n[storage]\ndata_dir = \"" << (dir / "data").string() << "\"\n";
  }
  const auto refused = test::run_command(borderscand("serve --config " + config.string()));
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_NE(refused.err.find("refusing to listen on 0.0.0.0 without TLS"), std::string::npos) << refused.err;

  daemon d(dir / "data2", {.http_extra = "allow_insecure_listen = true\n"});
  // The harness listens on 127.0.0.1; the switch alone changes nothing there.
  d.start();
  EXPECT_EQ(d.log().find("INSECURE"), std::string::npos) << d.log();
  EXPECT_EQ(d.stop(SIGTERM), 0);
  {
    std::ofstream out(config);
    out << "[http]\nlisten = \"0.0.0.0:0\"\nallow_insecure_listen = true\n[storage]\ndata_dir = \""
        << (dir / "data3").string() << "\"\n";
  }
  // Allowed: it starts, and says so loudly (stopped by the harness's signal).
  const auto started =
      test::run_command("timeout --preserve-status -s TERM 3 " + borderscand("serve --config " + config.string()));
  EXPECT_EQ(started.exit_code, 0) << started.err;
  EXPECT_NE(started.err.find("INSECURE: listening on 0.0.0.0"), std::string::npos) << started.err;
}

TEST(DaemonAccess, AuditVerifyPassesThenNamesTheEditedEntry) {
  test::scratch_dir dir;
  daemon d(dir / "data");
  d.start();
  const std::string id = scanned(d);
  ASSERT_FALSE(id.empty());
  ASSERT_EQ(http_get(d.port(), "/api/v1/scans/" + id + "/report").status, 200U);
  EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();

  const std::string verify = borderscand("audit verify --config " + d.config_file().string());
  const auto intact = test::run_command(verify);
  EXPECT_EQ(intact.exit_code, 0) << intact.out << intact.err;
  EXPECT_NE(intact.out.find("intact"), std::string::npos) << intact.out;

  // Someone with write access to the database rewrites who read the report.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((d.data_dir() / "borderscan.db").c_str(), &db), SQLITE_OK);
  std::int64_t seq = 0;
  {
    sqlite3_stmt* s = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT seq FROM audit_log WHERE event = 'report_read'", -1, &s, nullptr),
              SQLITE_OK);
    ASSERT_EQ(sqlite3_step(s), SQLITE_ROW);
    seq = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
  }
  const std::string edit = "UPDATE audit_log SET actor_name = 'nobody' WHERE seq = " + std::to_string(seq);
  ASSERT_EQ(sqlite3_exec(db, edit.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  const auto broken = test::run_command(verify);
  EXPECT_EQ(broken.exit_code, 1);
  EXPECT_NE(broken.out.find("BROKEN at entry " + std::to_string(seq)), std::string::npos) << broken.out;
}

TEST(DaemonAccess, SighupReloadsTheRulesAndABrokenRuleKeepsTheOldSet) {
  test::scratch_dir dir;
  const fs::path rules = dir / "rules";
  fs::create_directories(rules);
  std::ofstream(rules / "a.yar") << "rule a_rule { strings: $a = \"not-in-any-image-a\" condition: $a }\n";
  daemon d(dir / "data", {.extra_config = "[rules]\npaths = [\"" + rules.string() + "\"]\n"});
  d.start();
  const auto digest = [&] { return http_get(d.port(), "/api/v1/rules").json().at("digest").get<std::string>(); };
  const std::string first = digest();

  std::ofstream(rules / "b.yar") << "rule b_rule { condition: $nothing }\n";
  ::kill(d.pid(), SIGHUP);
  ASSERT_TRUE(eventually([&] { return d.log().find("failed; still serving ruleset " + first) != std::string::npos; }))
      << d.log();
  EXPECT_EQ(digest(), first);

  std::ofstream(rules / "b.yar", std::ios::trunc) << "rule b_rule { strings: $b = \"b-marker\" condition: $b }\n";
  ::kill(d.pid(), SIGHUP);
  ASSERT_TRUE(eventually([&] { return digest() != first; })) << d.log();
  const std::string second = digest();
  EXPECT_EQ(http_get(d.port(), "/api/v1/rules").json().at("yara_rules"), 2);

  // A scan after the reload runs with the new set, in its fenced worker too.
  const std::string id = scanned(d);
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(http_get(d.port(), "/api/v1/scans/" + id + "/report").json().at("ruleset").at("digest"), second);

  const auto audit = http_get(d.port(), "/api/v1/audit?event=rules_reloaded").json().at("items");
  ASSERT_EQ(audit.size(), 1U);
  EXPECT_EQ(audit.at(0).at("actor").at("name"), "signal");
  EXPECT_EQ(http_get(d.port(), "/api/v1/audit?event=rules_reload_failed").json().at("items").size(), 1U);
  EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();
}

TEST(DaemonAccess, AnImportedHashSetJoinsAtReloadAndFlagsItsFiles) {
  test::scratch_dir dir;
  daemon d(dir / "data");
  d.start();
  const auto scan = [&] { return http_get(d.port(), "/api/v1/scans/" + scanned(d) + "/report").json(); };
  const json before = scan();
  ASSERT_EQ(before.at("verdict"), "clean");
  std::string target_sha256, target_path;
  for (const auto& f : before.at("files")) {
    if (f.value("type", "") == "regular" && f.at("sha256").is_string() && f.at("size").get<std::uint64_t>() > 0) {
      target_sha256 = f.at("sha256");
      target_path = f.at("path");
      break;
    }
  }
  ASSERT_FALSE(target_sha256.empty()) << before.dump(1);

  // Imported on the data dir while the daemon runs, then reloaded over the API.
  const fs::path list = dir / "field.txt";
  std::ofstream(list) << target_sha256 << " seized-before-2026\n";
  const auto imported =
      test::run_command(std::string(BORDERSCAND) + " hashset import --format text --kind known-bad " +
                        "--name field-set " + list.string() + " --config " + d.config_file().string());
  ASSERT_EQ(imported.exit_code, 0) << imported.out << imported.err;
  const auto reloaded = http_call(d.port(), http::verb::post, "/api/v1/rules/reload");
  ASSERT_EQ(reloaded.status, 200U) << reloaded.body;
  bool listed = false;
  const json now_serving = reloaded.json();
  for (const auto& h : now_serving.at("hashsets")) {
    listed = listed || (h.at("name") == "field-set" && h.at("entries") == 1 && h.at("kind") == "known-bad");
  }
  EXPECT_TRUE(listed) << reloaded.body;

  const json after = scan();
  EXPECT_EQ(after.at("verdict"), "flagged");
  EXPECT_EQ(after.at("ruleset").at("digest"), now_serving.at("digest"));
  bool found = false;
  for (const auto& f : after.at("files")) {
    if (f.at("path") == target_path) {
      for (const auto& finding : f.value("findings", json::array())) {
        found = found || (finding.at("source") == "hashset" && finding.at("namespace") == "field-set" &&
                          finding.at("rule") == "seized-before-2026");
      }
    }
  }
  EXPECT_TRUE(found) << after.dump(1);
  const auto audit = http_get(d.port(), "/api/v1/audit?event=hashset_imported").json().at("items");
  ASSERT_EQ(audit.size(), 1U);
  EXPECT_EQ(audit.at(0).at("actor").at("role"), "cli");
  EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();
}

TEST(DaemonAccess, AReviewerClearsTheQueueAndAStationMayNotReview) {
  test::scratch_dir dir;
  daemon d(dir / "data");
  d.start();
  const std::string station = d.token("k1"), reviewer = d.token("rev-1", "reviewer");
  const std::string id = scanned(d, test::fixture_dir() / "fat-simple.img", "k1", "?case_ref=C-77");
  ASSERT_FALSE(id.empty());
  const std::map<std::string, std::string> as_reviewer = {{"Authorization", "Bearer " + reviewer}};
  const auto queue = [&](const std::string& q) {
    return http_call(d.port(), http::verb::get, "/api/v1/reports" + q, {}, as_reviewer).json().at("items").size();
  };
  EXPECT_EQ(queue("?review=pending&case_ref=C-77"), 1U);
  const std::string reviews = "/api/v1/reports/" + id + "/reviews";
  EXPECT_EQ(http_call(d.port(), http::verb::post, reviews, R"({"decision":"cleared"})",
                      {{"Authorization", "Bearer " + station}, {"Content-Type", "application/json"}})
                .status,
            403U);
  const auto recorded = http_call(d.port(), http::verb::post, reviews, R"({"decision":"confirmed","note":"EICAR"})",
                                  {{"Authorization", "Bearer " + reviewer}, {"Content-Type", "application/json"}});
  ASSERT_EQ(recorded.status, 201U) << recorded.body;
  EXPECT_EQ(queue("?review=pending"), 0U);
  EXPECT_EQ(queue("?review=reviewed"), 1U);
  const json history = http_call(d.port(), http::verb::get, reviews, {}, as_reviewer).json();
  ASSERT_EQ(history.at("items").size(), 1U);
  EXPECT_EQ(history.at("items").at(0).at("reviewer").at("name"), "rev-1");
  EXPECT_EQ(history.at("items").at(0).at("note"), "EICAR");
  EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();
}

mode_t mode_of(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
  return st.st_mode & 07777;
}

TEST(DaemonAccess, WhatTheDaemonCreatesIsOwnerOnlyUnderUmask022) {
  test::scratch_dir dir;
  const mode_t old = ::umask(022);  // inherited by the daemon the harness forks
  daemon d(dir / "data", {.storage_extra = "keep_images = true\n"});
  d.start();
  ::umask(old);
  const std::string id = scanned(d);
  ASSERT_FALSE(id.empty());
  const fs::path data = d.data_dir();
  EXPECT_EQ(mode_of(data), 0700U);
  EXPECT_EQ(mode_of(data / "spool"), 0700U);
  EXPECT_EQ(mode_of(data / "reports"), 0700U);
  EXPECT_EQ(mode_of(data / "rules"), 0700U);
  EXPECT_EQ(mode_of(data / "spool" / (id + ".img")), 0600U);
  EXPECT_EQ(mode_of(data / "reports" / (id + ".json")), 0600U);
  for (const char* name : {"borderscan.db", "borderscan.db-wal", "borderscan.db-shm"}) {
    EXPECT_EQ(mode_of(data / name), 0600U) << name;
  }
  for (const auto& e : fs::directory_iterator(data / "rules")) {
    EXPECT_EQ(mode_of(e.path()), 0600U) << e.path();
  }
  EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();
}

}  // namespace
}  // namespace borderscan::server
