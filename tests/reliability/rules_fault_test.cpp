// An unreadable rules folder at reload (issue #17), with the real daemon on
// loopback: the reload is refused with a problem+json saying why, the old
// rules keep serving scans, and the refusal is audited.
//
// Root reads a folder of mode 000 anyway (CAP_DAC_OVERRIDE), and CI runs as
// root. So the daemon starts without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH
// (dropped from its bounding set): the folder's mode then binds it exactly
// as it binds the unprivileged service user of a real install, through the
// same kernel check, and the folder is made unreadable the way an operator
// would do it by mistake (chmod, or a root-owned 0700 folder).
#include <signal.h>

#include <string>

#include <gtest/gtest.h>

#include "daemon_harness.hpp"
#include "server_test_support.hpp"
#include "support/test_support.hpp"

namespace borderscan::server {
namespace {

using namespace test_support;
using nlohmann::json;
namespace http = boost::beast::http;
namespace fs = std::filesystem;

// Uploads `image` and waits for its scan to end; the scan's report.
json report_of_scan(daemon& d, const fs::path& image) {
  const auto res = http_call(d.port(), http::verb::post, "/api/v1/scans", read_file(image),
                             {{"Authorization", "Bearer " + d.token("k1")}});
  EXPECT_EQ(res.status, 202U) << res.body;
  const std::string id = res.json().value("id", "");
  const bool done = !id.empty() &&
                    eventually([&] { return http_get(d.port(), "/api/v1/scans/" + id).json().at("status") == "done"; });
  EXPECT_TRUE(done) << d.log();
  return done ? http_get(d.port(), "/api/v1/scans/" + id + "/report").json() : json::object();
}

TEST(RulesFault, AnUnreadableRulesFolderAtReloadIsRefusedAndTheOldRulesKeepServing) {
  test::scratch_dir dir;
  const fs::path rules = dir / "rules";
  fs::copy(test::source_dir() / "rules" / "yara", rules, fs::copy_options::recursive);
  daemon d(
      dir / "data",
      {.workers = 1, .extra_config = "[rules]\npaths = [\"" + rules.string() + "\"]\n", .without_dac_override = true});
  d.start();
  const auto active = [&] { return http_get(d.port(), "/api/v1/rules").json(); };
  const json before = active();
  ASSERT_GT(before.at("yara_rules").get<int>(), 0) << before.dump();
  const fs::path image = test::fixture_dir() / "fat-simple.img";
  const json first = report_of_scan(d, image);
  ASSERT_EQ(first.at("ruleset").at("digest"), before.at("digest"));

  fs::permissions(rules, fs::perms::none);
  const auto refused = http_call(d.port(), http::verb::post, "/api/v1/rules/reload");
  fs::permissions(rules, fs::perms::owner_all);  // the scratch folder must go at the end
  EXPECT_EQ(refused.status, 422U) << refused.body;
  EXPECT_EQ(refused.header("content-type"), "application/problem+json");
  const json problem = refused.json();
  EXPECT_EQ(problem.value("type", ""), "urn:borderscan:problem:rules-invalid") << refused.body;
  EXPECT_NE(problem.value("detail", "").find("cannot be loaded"), std::string::npos) << refused.body;
  EXPECT_EQ(problem.value("digest", ""), before.at("digest")) << refused.body;
  EXPECT_NE(problem.at("errors").dump().find("Permission denied"), std::string::npos) << refused.body;
  EXPECT_NE(problem.at("errors").dump().find(rules.string()), std::string::npos) << refused.body;

  // The old set still serves: the same digest, the same rules, the same verdict.
  EXPECT_EQ(active(), before);
  const json second = report_of_scan(d, image);
  EXPECT_EQ(second.at("ruleset").at("digest"), before.at("digest"));
  EXPECT_EQ(second.at("verdict"), first.at("verdict"));
  EXPECT_EQ(second.at("findings").size(), first.at("findings").size());
  const auto failed = http_get(d.port(), "/api/v1/audit?event=rules_reload_failed").json().at("items");
  ASSERT_EQ(failed.size(), 1U) << failed.dump();
  EXPECT_EQ(failed.at(0).at("detail").at("kept_digest"), before.at("digest"));

  // SIGHUP takes the same way.
  fs::permissions(rules, fs::perms::none);
  ::kill(d.pid(), SIGHUP);
  const bool logged = eventually(
      [&] { return http_get(d.port(), "/api/v1/audit?event=rules_reload_failed").json().at("items").size() == 2U; });
  fs::permissions(rules, fs::perms::owner_all);
  EXPECT_TRUE(logged) << d.log();
  EXPECT_EQ(active(), before);

  // Readable again: the reload works, and finds the same rules.
  const auto reloaded = http_call(d.port(), http::verb::post, "/api/v1/rules/reload");
  EXPECT_EQ(reloaded.status, 200U) << reloaded.body;
  EXPECT_EQ(reloaded.json().value("changed", true), false) << reloaded.body;
  EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();
}

}  // namespace
}  // namespace borderscan::server
