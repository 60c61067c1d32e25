// Rule management through the router: the active set, reloads that work and
// reloads that do not (the old set keeps serving), and what a scan that
// started before a reload keeps using.
#include <gtest/gtest.h>

#include <fstream>

#include "borderscan/scanner/engine.hpp"
#include "borderscan/server/rules_service.hpp"
#include "server_test_support.hpp"

namespace borderscan::server {
namespace {

using namespace test_support;
using nlohmann::json;
namespace fs = std::filesystem;

void write(const fs::path& p, const std::string& text) {
  std::ofstream(p, std::ios::trunc) << text;
}

// A router whose rules come from a rules_service over a folder of its own.
struct reloading {
  wired w;
  fs::path rules_dir = w.dir / "my-rules";
  std::unique_ptr<rules_service> service;
  std::unique_ptr<router> routes;

  reloading() {
    fs::create_directories(rules_dir);
    write(rules_dir / "first.yar", "rule first_rule { strings: $a = \"first-marker\" condition: $a }\n");
    service = std::make_unique<rules_service>(std::vector<std::string>{rules_dir.string()},
                                              rules_service::hashset_list{}, w.dir / "compiled", w.store, w.clk);
    router_settings settings = wired::settings_for(w.spool, 1 << 20);
    settings.reload_rules = [this](const actor& by) { return service->reload(by); };
    routes = std::make_unique<router>(w.store, w.queue, w.stats, service->holder(), w.clk, w.ids, settings);
  }

  response call(http::verb method, const std::string& target, const std::string& token) {
    request req{method, target, 11};
    req.set(http::field::authorization, "Bearer " + token);
    req.prepare_payload();
    return routes->handle(req, {"rid-rules", "127.0.0.1:1"});
  }
  json rules() { return json::parse(call(http::verb::get, "/api/v1/rules", w.tokens.at("admin")).message.body()); }
};

TEST(RulesReload, ABrokenRuleKeepsTheOldSetAndListsEveryError) {
  reloading r;
  const json before = r.rules();
  EXPECT_EQ(before.at("yara_rules"), 1);
  EXPECT_TRUE(before.at("digest").get<std::string>().starts_with("sha256:"));
  EXPECT_FALSE(before.at("loaded_at").is_null());

  write(r.rules_dir / "second.yar", "rule second_rule {\n  strings: $a = \"x\"\n  condition: $b\n}\n");
  const auto refused = r.call(http::verb::post, "/api/v1/rules/reload", r.w.tokens.at("admin"));
  ASSERT_EQ(refused.message.result(), http::status::unprocessable_entity) << refused.message.body();
  EXPECT_EQ(refused.message[http::field::content_type], "application/problem+json");
  const json problem = json::parse(refused.message.body());
  ASSERT_FALSE(problem.at("errors").empty());
  const std::string first_error = problem.at("errors").at(0);
  EXPECT_NE(first_error.find("second.yar:4: undefined string \"$b\""), std::string::npos) << first_error;
  EXPECT_TRUE(first_error.ends_with("\"$b\"")) << first_error;
  EXPECT_EQ(problem.at("digest"), before.at("digest"));
  EXPECT_EQ(r.rules().at("digest"), before.at("digest")) << "the old set keeps serving";

  audit_filter failed;
  failed.event = "rules_reload_failed";
  const auto entries = r.w.store.list_audit(failed).items;
  ASSERT_EQ(entries.size(), 1U);
  EXPECT_EQ(entries[0].by.name, "admin");
  EXPECT_EQ(entries[0].detail.at("kept_digest"), before.at("digest"));
}

TEST(RulesReload, AWorkingReloadSwapsAndAScanKeepsTheSetItStartedWith) {
  reloading r;
  const json before = r.rules();
  // A scan takes its snapshot when it starts, as the runners do.
  const rules_snapshot running = r.service->holder().snapshot();

  write(r.rules_dir / "second.yar", "rule second_rule { strings: $a = \"second-marker\" condition: $a }\n");
  // Reviewers may look at the rules but not reload them.
  r.w.token("rev", role::reviewer);
  EXPECT_EQ(r.call(http::verb::post, "/api/v1/rules/reload", r.w.tokens.at("rev")).message.result(),
            http::status::forbidden);
  const auto reloaded = r.call(http::verb::post, "/api/v1/rules/reload", r.w.tokens.at("admin"));
  ASSERT_EQ(reloaded.message.result(), http::status::ok) << reloaded.message.body();
  const json after = json::parse(reloaded.message.body());
  EXPECT_EQ(after.at("yara_rules"), 2);
  EXPECT_EQ(after.at("previous_digest"), before.at("digest"));
  EXPECT_TRUE(after.at("changed").get<bool>());
  EXPECT_NE(after.at("digest"), before.at("digest"));
  EXPECT_EQ(r.rules().at("digest"), after.at("digest"));

  // The running scan's set is whole and unchanged: its rules, its digest, and
  // the compiled file its worker loads, still on disk.
  EXPECT_EQ(running.rules->info().digest, before.at("digest"));
  EXPECT_EQ(running.rules->info().yara_rules, 1U);
  EXPECT_TRUE(fs::exists(running.compiled));
  const auto now = r.service->holder().snapshot();
  EXPECT_TRUE(fs::exists(now.compiled));
  EXPECT_NE(now.compiled, running.compiled);

  // A scan with the old snapshot reports the old set; one with the new, the new.
  for (const auto& [snapshot, digest] : {std::pair{running, before.at("digest").get<std::string>()},
                                         std::pair{now, after.at("digest").get<std::string>()}}) {
    scanner::engine engine({}, snapshot.rules);
    scanner::scan_options options;
    const scanner::report report = engine.scan(test::clean_image(), options);
    EXPECT_EQ(report.ruleset.digest, digest);
  }

  audit_filter ok;
  ok.event = "rules_reloaded";
  ASSERT_EQ(r.w.store.list_audit(ok).items.size(), 1U);
  EXPECT_EQ(r.w.store.list_audit(ok).items[0].detail.at("digest"), after.at("digest"));
  EXPECT_TRUE(r.w.store.verify_audit().intact());
}

// Nodes on one store (here one SQLite store, as one PostgreSQL database
// would be): the last to load rules sets the cluster's set, the others follow
// it when their own files give it, and claim nothing while they do not.
TEST(RulesReload, NodesFollowTheClusterSetWhenTheirFilesGiveItAndHoldWhenNot) {
  wired w;
  const auto node = [&w](const std::string& name, const fs::path& rules) {
    auto s = std::make_unique<rules_service>(std::vector<std::string>{rules.string()}, rules_service::hashset_list{},
                                             w.dir / ("compiled-" + name), w.store, w.clk, name);
    s->publish_at_start();
    return s;
  };
  const fs::path shared = w.dir / "shared-rules", own = w.dir / "b-rules";
  fs::create_directories(shared);
  fs::create_directories(own);
  write(shared / "first.yar", "rule first_rule { strings: $a = \"first-marker\" condition: $a }\n");
  write(own / "first.yar", "rule first_rule { strings: $a = \"first-marker\" condition: $a }\n");
  auto a = node("node-a", shared);
  auto b = node("node-b", own);     // its own folder, the same file
  auto c = node("node-c", shared);  // the folder node a reads
  const std::string first = a->holder().snapshot().rules->info().digest;
  EXPECT_TRUE(b->follow());
  EXPECT_TRUE(b->standing().in_step);
  EXPECT_EQ(w.store.cluster_rules()->digest, first);

  write(shared / "second.yar", "rule second_rule { strings: $a = \"second-marker\" condition: $a }\n");
  const reload_result reloaded = a->reload(actor{"admin", "admin", "", ""});
  ASSERT_TRUE(reloaded.ok);
  EXPECT_EQ(w.store.cluster_rules()->node, "node-a");
  EXPECT_EQ(c->holder().snapshot().rules->info().digest, first) << "nothing changes until it looks";
  EXPECT_TRUE(c->follow());
  EXPECT_EQ(c->holder().snapshot().rules->info().digest, reloaded.digest);

  EXPECT_FALSE(b->follow()) << "its files give the first set";
  EXPECT_FALSE(b->follow());
  EXPECT_EQ(b->holder().snapshot().rules->info().digest, first) << "it keeps serving nothing new";
  const rules_standing held = b->standing();
  EXPECT_FALSE(held.in_step);
  EXPECT_EQ(held.cluster->digest, reloaded.digest);
  audit_filter failed;
  failed.event = "rules_reload_failed";
  const auto failures = w.store.list_audit(failed).items;
  ASSERT_EQ(failures.size(), 1U) << "once per cluster set";
  EXPECT_EQ(failures[0].detail.at("cluster_digest"), reloaded.digest);
  EXPECT_EQ(failures[0].detail.at("node"), "node-b");

  // The file copied and node b reloaded: the same set; nothing changes for the others.
  write(own / "second.yar", "rule second_rule { strings: $a = \"second-marker\" condition: $a }\n");
  ASSERT_TRUE(b->reload(actor{"admin", "admin", "", ""}).ok);
  EXPECT_TRUE(b->follow());
  EXPECT_EQ(b->holder().snapshot().rules->info().digest, reloaded.digest);
  EXPECT_EQ(w.store.cluster_rules()->digest, reloaded.digest);
  EXPECT_TRUE(a->follow());
  EXPECT_TRUE(w.store.verify_audit().intact());
}

}  // namespace
}  // namespace borderscan::server
