// Who may call what: every route × every kind of caller, against a table
// written here by hand (not read from the router), and the audit trail's
// record of who did it.
#include <gtest/gtest.h>

#include <set>

#include "server_test_support.hpp"

namespace borderscan::server {
namespace {

using namespace test_support;
using nlohmann::json;

enum class caller { none, bad_token, revoked, own_station, other_station, reviewer, admin };

const char* name_of(caller c) {
  switch (c) {
    case caller::none:
      return "no token";
    case caller::bad_token:
      return "unknown token";
    case caller::revoked:
      return "revoked token";
    case caller::own_station:
      return "the scan's station";
    case caller::other_station:
      return "another station";
    case caller::reviewer:
      return "reviewer";
    case caller::admin:
      return "admin";
  }
  return "?";
}

// What a caller gets: allowed (the handler ran: any status but 401/403),
// unauthorized (401) or forbidden (403).
enum class outcome { allowed, unauthorized, forbidden };

struct route_case {
  http::verb method;
  std::string pattern;  // as router::routes() lists it
  std::string target;   // {id} filled in below
  std::set<caller> allowed;
  bool open = false;  // no token needed at all
};

struct access_fixture {
  wired w;
  std::string scan_id, running_id, spare_token_name = "spare";

  access_fixture() {
    w.token("reviewer-1", role::reviewer);
    w.token("k1");
    w.token("k2");
    w.token("spare", role::station);
    w.token("gone", role::station);
    w.store.revoke_token("gone", {}, w.clk.now);
    scan_id = upload_as("k1");
    finish_next(w);
  }

  std::string upload_as(const std::string& station, const std::filesystem::path& image = test::clean_image()) {
    request req{http::verb::post, "/api/v1/scans?case_ref=" + station + "-case", 11};
    req.set(http::field::authorization, "Bearer " + w.tokens.at(station));
    req.body() = read_file(image);
    req.prepare_payload();
    const auto res = w.routes.handle(req);
    EXPECT_EQ(res.message.result(), http::status::accepted) << res.message.body();
    return json::parse(res.message.body()).at("id");
  }

  std::string token_of(caller c) {
    switch (c) {
      case caller::none:
        return {};
      case caller::bad_token:
        return "bst_this-token-was-never-issued-by-anyone-at-all-000";
      case caller::revoked:
        return w.tokens.at("gone");
      case caller::own_station:
        return w.tokens.at("k1");
      case caller::other_station:
        return w.tokens.at("k2");
      case caller::reviewer:
        return w.tokens.at("reviewer-1");
      case caller::admin:
        return w.tokens.at("admin");
    }
    return {};
  }

  response call(caller c, http::verb method, const std::string& target, std::string body = {}) {
    request req{method, target, 11};
    if (const std::string t = token_of(c); !t.empty()) {
      req.set(http::field::authorization, "Bearer " + t);
    }
    req.body() = std::move(body);
    req.prepare_payload();
    return w.routes.handle(req, {"rid-access", "127.0.0.1:5555"});
  }
};

outcome outcome_of(const response& r) {
  switch (r.message.result()) {
    case http::status::unauthorized:
      return outcome::unauthorized;
    case http::status::forbidden:
      return outcome::forbidden;
    default:
      return outcome::allowed;
  }
}

std::vector<route_case> route_cases(const std::string& scan) {
  using enum caller;
  const std::set<caller> everyone_with_a_token = {own_station, reviewer, admin};
  return {
      {http::verb::get, "/healthz", "/healthz", {}, true},
      {http::verb::get, "/readyz", "/readyz", {}, true},
      {http::verb::get, "/metrics", "/metrics", {own_station, other_station, reviewer, admin}},
      {http::verb::post, "/api/v1/scans", "/api/v1/scans", {own_station, other_station, admin}},
      {http::verb::get, "/api/v1/scans", "/api/v1/scans", {own_station, other_station, reviewer, admin}},
      {http::verb::get, "/api/v1/scans/{id}", "/api/v1/scans/" + scan, everyone_with_a_token},
      // Cancelling a done scan is allowed (the handler answers 409), not forbidden.
      {http::verb::delete_, "/api/v1/scans/{id}", "/api/v1/scans/" + scan, {own_station, admin}},
      // The done scan's image is already gone: admins get 409 saying so, everyone else never reaches it.
      {http::verb::delete_, "/api/v1/scans/{id}/image", "/api/v1/scans/" + scan + "/image", {admin}},
      {http::verb::get, "/api/v1/scans/{id}/report", "/api/v1/scans/" + scan + "/report", everyone_with_a_token},
      {http::verb::get, "/api/v1/scans/{id}/events", "/api/v1/scans/" + scan + "/events", everyone_with_a_token},
      {http::verb::get, "/api/v1/events", "/api/v1/events", {own_station, other_station, reviewer, admin}},
      {http::verb::get, "/api/v1/whoami", "/api/v1/whoami", {own_station, other_station, reviewer, admin}},
      {http::verb::get, "/api/v1/reports", "/api/v1/reports", {own_station, other_station, reviewer, admin}},
      {http::verb::get, "/api/v1/reports/{id}/overview", "/api/v1/reports/" + scan + "/overview",
       everyone_with_a_token},
      {http::verb::get, "/api/v1/reports/{id}/verification", "/api/v1/reports/" + scan + "/verification",
       everyone_with_a_token},
      {http::verb::get, "/api/v1/reports/{id}/file-types", "/api/v1/reports/" + scan + "/file-types",
       everyone_with_a_token},
      {http::verb::get, "/api/v1/reports/{id}/files", "/api/v1/reports/" + scan + "/files", everyone_with_a_token},
      {http::verb::get, "/api/v1/audit", "/api/v1/audit", {admin}},
      {http::verb::get, "/api/v1/signing-key", "/api/v1/signing-key", {own_station, other_station, reviewer, admin}},
      {http::verb::get, "/api/v1/rules", "/api/v1/rules", {own_station, other_station, reviewer, admin}},
      // The test router cannot reload (501): allowed, not forbidden.
      {http::verb::post, "/api/v1/rules/reload", "/api/v1/rules/reload", {admin}},
      // A scan id that is not there: admins get 404, everyone else never reaches the handler.
      {http::verb::delete_, "/api/v1/reports/{id}", "/api/v1/reports/" + std::string(32, 'f'), {admin}},
      {http::verb::post, "/api/v1/reports/{id}/reviews", "/api/v1/reports/" + scan + "/reviews", {reviewer, admin}},
      {http::verb::get, "/api/v1/reports/{id}/reviews", "/api/v1/reports/" + scan + "/reviews", {reviewer, admin}},
      // A finding id the report does not have: reviewers get 404, stations never reach the handler.
      {http::verb::post,
       "/api/v1/reports/{id}/findings/{finding}/disposition",
       "/api/v1/reports/" + scan + "/findings/" + std::string(32, '0') + "/disposition",
       {reviewer, admin}},
      {http::verb::get,
       "/api/v1/reports/{id}/dispositions",
       "/api/v1/reports/" + scan + "/dispositions",
       {reviewer, admin}},
      {http::verb::get, "/api/v1/files", "/api/v1/files?sha256=" + std::string(64, 'a'), {reviewer, admin}},
      // Evidence of a file that has none kept: reviewers get 404 saying why; stations never reach it.
      {http::verb::get,
       "/api/v1/reports/{id}/files/{index}/content",
       "/api/v1/reports/" + scan + "/files/0/content",
       {reviewer, admin}},
      {http::verb::post, "/api/v1/tokens", "/api/v1/tokens", {admin}},
      {http::verb::get, "/api/v1/tokens", "/api/v1/tokens", {admin}},
      {http::verb::delete_, "/api/v1/tokens/{name}", "/api/v1/tokens/spare", {admin}},
  };
}

TEST(Access, EveryRouteTimesEveryCaller) {
  access_fixture f;
  const auto cases = route_cases(f.scan_id);
  // The table covers every route the router serves, so a new route without
  // an entry here fails.
  std::set<std::string> listed, served;
  for (const auto& rc : cases) {
    listed.insert(std::string(http::to_string(rc.method)) + " " + rc.pattern);
  }
  for (const auto& info : router::routes()) {
    served.insert(std::string(http::to_string(info.method)) + " " + info.pattern);
  }
  EXPECT_EQ(listed, served);

  using enum caller;
  for (const auto& rc : cases) {
    for (const caller c : {none, bad_token, revoked, own_station, other_station, reviewer, admin}) {
      std::string body;
      if (rc.method == http::verb::post && rc.pattern == "/api/v1/scans") {
        body = read_file(test::clean_image());
      } else if (rc.method == http::verb::post) {
        body = R"({"name": "made-by-test", "role": "station"})";
      }
      const response r = f.call(c, rc.method, rc.target, body);
      outcome want = outcome::allowed;
      if (!rc.open && (c == none || c == bad_token || c == revoked)) {
        want = outcome::unauthorized;
      } else if (!rc.open && !rc.allowed.contains(c)) {
        want = outcome::forbidden;
      }
      EXPECT_EQ(outcome_of(r), want) << http::to_string(rc.method) << " " << rc.target << " as " << name_of(c) << ": "
                                     << r.message.result_int() << " " << r.message.body();
      if (want != outcome::allowed) {
        EXPECT_EQ(r.message[http::field::content_type], "application/problem+json");
      }
      if (want == outcome::unauthorized) {
        EXPECT_EQ(r.message[http::field::www_authenticate], "Bearer realm=\"borderscan\"");
      }
      // Undo what an allowed call changed, so every caller meets the same state.
      if (want == outcome::allowed && rc.pattern == "/api/v1/tokens" && rc.method == http::verb::post) {
        f.w.store.revoke_token("made-by-test", {}, f.w.clk.now);
      }
      if (want == outcome::allowed && rc.pattern == "/api/v1/tokens/{name}") {
        f.w.tokens.erase("spare");
        f.w.token("spare");
      }
    }
  }
}

TEST(Access, MetricsCanBeMadePublic) {
  wired w;
  router_settings settings = wired::settings_for(w.spool, 1 << 20);
  settings.public_metrics = true;
  router open_metrics(w.store, w.queue, w.stats, w.rules, w.clk, w.ids, settings);
  request req{http::verb::get, "/metrics", 11};
  EXPECT_EQ(open_metrics.handle(req).message.result(), http::status::ok);
  request audit{http::verb::get, "/api/v1/audit", 11};
  EXPECT_EQ(open_metrics.handle(audit).message.result(), http::status::unauthorized);
}

TEST(Access, AStationListsOnlyItsOwnReports) {
  access_fixture f;
  f.upload_as("k2");
  finish_next(f.w);
  const auto mine = json::parse(f.call(caller::own_station, http::verb::get, "/api/v1/reports").message.body());
  ASSERT_EQ(mine.at("items").size(), 1U);
  EXPECT_EQ(mine.at("items").at(0).at("station"), "k1");
  EXPECT_EQ(f.call(caller::own_station, http::verb::get, "/api/v1/reports?station=k2").message.result(),
            http::status::forbidden);
  const auto all = json::parse(f.call(caller::reviewer, http::verb::get, "/api/v1/reports").message.body());
  EXPECT_EQ(all.at("items").size(), 2U);
}

TEST(Access, TheStationIsTheTokensNameNotAHeader) {
  access_fixture f;
  request req{http::verb::post, "/api/v1/scans", 11};
  req.set(http::field::authorization, "Bearer " + f.w.tokens.at("k2"));
  req.set("X-Station", "k1");
  req.body() = read_file(test::clean_image());
  req.prepare_payload();
  const auto res = f.w.routes.handle(req);
  ASSERT_EQ(res.message.result(), http::status::accepted);
  const std::string id = json::parse(res.message.body()).at("id");
  EXPECT_EQ(f.w.store.find_scan(id)->station, "k2");
}

TEST(Access, TheAuditTrailNamesWhoReadAndWhoCancelled) {
  access_fixture f;
  const std::string queued = f.upload_as("k2");
  ASSERT_EQ(f.call(caller::reviewer, http::verb::get, "/api/v1/scans/" + f.scan_id + "/report").message.result(),
            http::status::ok);
  ASSERT_EQ(f.call(caller::admin, http::verb::delete_, "/api/v1/scans/" + queued).message.result(), http::status::ok);
  audit_filter reads;
  reads.event = "report_read";
  const auto read_entries = f.w.store.list_audit(reads).items;
  ASSERT_EQ(read_entries.size(), 1U);
  EXPECT_EQ(read_entries[0].scan_id, f.scan_id);
  EXPECT_EQ(read_entries[0].by.name, "reviewer-1");
  EXPECT_EQ(read_entries[0].by.role, "reviewer");
  EXPECT_EQ(read_entries[0].by.request_id, "rid-access");
  EXPECT_EQ(read_entries[0].by.client, "127.0.0.1:5555");
  EXPECT_EQ(read_entries[0].detail.at("report_sha256"), f.w.store.find_report(f.scan_id)->sha256);

  audit_filter of_queued;
  of_queued.scan_id = queued;
  const auto entries = f.w.store.list_audit(of_queued).items;  // newest first
  ASSERT_EQ(entries.size(), 2U);
  EXPECT_EQ(entries[0].event, "scan_cancelled");
  EXPECT_EQ(entries[0].detail.at("was"), "queued");
  EXPECT_EQ(entries[0].by.name, "admin");
  const auto cancelled = f.w.store.find_scan(queued);
  ASSERT_TRUE(cancelled && cancelled->cancelled_by);
  EXPECT_EQ(cancelled->status, scan_status::cancelled);
  EXPECT_EQ(cancelled->cancelled_by->name, "admin");
  EXPECT_EQ(entries[1].event, "scan_submitted");
  EXPECT_EQ(entries[1].by.name, "k2");
  EXPECT_EQ(entries[1].by.role, "station");
  EXPECT_TRUE(f.w.store.verify_audit().intact());
}

TEST(Access, TokensAreMadeListedAndRevokedOverTheApi) {
  access_fixture f;
  const auto made = f.call(caller::admin, http::verb::post, "/api/v1/tokens", R"({"name":"k9","role":"station"})");
  ASSERT_EQ(made.message.result(), http::status::created) << made.message.body();
  const json j = json::parse(made.message.body());
  const std::string token = j.at("token");
  EXPECT_TRUE(token.starts_with("bst_"));
  EXPECT_GE(token.size(), 4U + 43U);  // 256 bits in base64url
  // Stored as a digest only: the token's text is nowhere in the database.
  const std::string db = read_file(f.w.dir / "borderscan.db") + read_file(f.w.dir / "borderscan.db-wal");
  EXPECT_EQ(db.find(token), std::string::npos);

  EXPECT_EQ(
      f.call(caller::admin, http::verb::post, "/api/v1/tokens", R"({"name":"k9","role":"station"})").message.result(),
      http::status::conflict);
  for (const char* bad : {R"({"name":"a b","role":"station"})", R"({"name":"x","role":"root"})", R"([1])",
                          R"({"name":"system","role":"admin"})", R"({"name":"x","role":"admin","extra":1})"}) {
    EXPECT_EQ(f.call(caller::admin, http::verb::post, "/api/v1/tokens", bad).message.result(),
              http::status::bad_request)
        << bad;
  }
  request with_new{http::verb::get, "/api/v1/reports", 11};
  with_new.set(http::field::authorization, "Bearer " + token);
  EXPECT_EQ(f.w.routes.handle(with_new).message.result(), http::status::ok);

  const auto listed = json::parse(f.call(caller::admin, http::verb::get, "/api/v1/tokens").message.body());
  EXPECT_NE(listed.dump().find("\"k9\""), std::string::npos);
  EXPECT_EQ(listed.dump().find("bst_"), std::string::npos);

  EXPECT_EQ(f.call(caller::admin, http::verb::delete_, "/api/v1/tokens/k9").message.result(), http::status::ok);
  EXPECT_EQ(f.w.routes.handle(with_new).message.result(), http::status::unauthorized);
  EXPECT_EQ(f.call(caller::admin, http::verb::delete_, "/api/v1/tokens/k9").message.result(), http::status::not_found);
  // The last admin cannot lock everyone out over the API.
  EXPECT_EQ(f.call(caller::admin, http::verb::delete_, "/api/v1/tokens/admin").message.result(),
            http::status::conflict);
}

TEST(Access, AnAdminPurgesAReportWithItsRowsFilesAndAnAuditEntry) {
  access_fixture f;
  const auto stored = f.w.store.find_report(f.scan_id);
  ASSERT_TRUE(stored);
  ASSERT_TRUE(std::filesystem::exists(stored->path));
  EXPECT_EQ(f.call(caller::reviewer, http::verb::delete_, "/api/v1/reports/" + f.scan_id).message.result(),
            http::status::forbidden);
  const std::string queued = f.upload_as("k2");
  EXPECT_EQ(f.call(caller::admin, http::verb::delete_, "/api/v1/reports/" + queued).message.result(),
            http::status::conflict);

  const auto purged = f.call(caller::admin, http::verb::delete_, "/api/v1/reports/" + f.scan_id);
  ASSERT_EQ(purged.message.result(), http::status::ok) << purged.message.body();
  EXPECT_EQ(json::parse(purged.message.body()).at("report_sha256"), stored->sha256);
  EXPECT_FALSE(std::filesystem::exists(stored->path));
  EXPECT_FALSE(f.w.store.find_scan(f.scan_id));
  EXPECT_FALSE(f.w.store.find_report(f.scan_id));
  EXPECT_FALSE(f.w.store.list_files(f.scan_id, {}));
  EXPECT_EQ(f.call(caller::admin, http::verb::get, "/api/v1/scans/" + f.scan_id + "/report").message.result(),
            http::status::not_found);
  EXPECT_EQ(f.call(caller::admin, http::verb::delete_, "/api/v1/reports/" + f.scan_id).message.result(),
            http::status::not_found);

  audit_filter purges;
  purges.event = "report_purged";
  const auto entries = f.w.store.list_audit(purges).items;
  ASSERT_EQ(entries.size(), 1U);
  EXPECT_EQ(entries[0].scan_id, f.scan_id);
  EXPECT_EQ(entries[0].detail.at("report_sha256"), stored->sha256);
  EXPECT_EQ(entries[0].by.name, "admin");
  EXPECT_TRUE(f.w.store.verify_audit().intact());
}

TEST(Reviews, ADecisionIsRecordedListedAndMovesTheReportOutOfThePendingQueue) {
  access_fixture f;
  const std::string flagged = f.upload_as("k2", test::fixture_dir() / "fat-simple.img");
  finish_next(f.w);
  const auto list = [&](const std::string& q) {
    const auto res = f.call(caller::reviewer, http::verb::get, "/api/v1/reports" + q);
    EXPECT_EQ(res.message.result(), http::status::ok) << res.message.body();
    std::vector<std::string> ids;
    const json page = json::parse(res.message.body());
    for (const auto& item : page.at("items")) {
      ids.push_back(item.at("id"));
    }
    return ids;
  };
  EXPECT_EQ(list("?review=pending"), std::vector<std::string>{flagged});
  EXPECT_EQ(list("?review=not_required"), std::vector<std::string>{f.scan_id});
  EXPECT_TRUE(list("?review=reviewed").empty());
  EXPECT_EQ(list("?case_ref=k2-case"), std::vector<std::string>{flagged});
  EXPECT_EQ(list("?review=pending&case_ref=k1-case"), std::vector<std::string>{});

  const std::string reviews = "/api/v1/reports/" + flagged + "/reviews";
  // The served report, which must be a report: two equal error bodies prove nothing.
  const auto served_report = [&] {
    response res = f.call(caller::admin, http::verb::get, "/api/v1/scans/" + flagged + "/report");
    EXPECT_EQ(res.message.result(), http::status::ok);
    std::string body = body_of(res);
    EXPECT_TRUE(test::validate_report(json::parse(body)));
    return body;
  };
  const std::string report_before = served_report();
  auto first = f.call(caller::reviewer, http::verb::post, reviews, R"({"decision":"escalated","note":"ask the lab"})");
  ASSERT_EQ(first.message.result(), http::status::created) << first.message.body();
  EXPECT_EQ(json::parse(first.message.body()).at("review_state"), "reviewed");
  f.w.clk.now += 60'000;
  ASSERT_EQ(f.call(caller::admin, http::verb::post, reviews, R"({"decision":"confirmed"})").message.result(),
            http::status::created);
  for (const char* bad : {R"({"decision":"maybe"})", R"({"note":"x"})", R"({"decision":"cleared","extra":1})",
                          R"({"decision":"cleared","note":5})", "not json"}) {
    EXPECT_EQ(f.call(caller::reviewer, http::verb::post, reviews, bad).message.result(), http::status::bad_request)
        << bad;
  }
  EXPECT_EQ(f.call(caller::own_station, http::verb::post, reviews, R"({"decision":"cleared"})").message.result(),
            http::status::forbidden);

  const json history = json::parse(f.call(caller::reviewer, http::verb::get, reviews).message.body());
  ASSERT_EQ(history.at("items").size(), 2U);  // oldest first
  EXPECT_EQ(history.at("items").at(0).at("decision"), "escalated");
  EXPECT_EQ(history.at("items").at(0).at("note"), "ask the lab");
  EXPECT_EQ(history.at("items").at(0).at("reviewer").at("name"), "reviewer-1");
  EXPECT_EQ(history.at("items").at(1).at("decision"), "confirmed");
  EXPECT_EQ(history.at("items").at(1).at("reviewer").at("name"), "admin");
  EXPECT_EQ(history.at("review_state"), "reviewed");

  EXPECT_TRUE(list("?review=pending").empty());
  EXPECT_EQ(list("?review=reviewed"), std::vector<std::string>{flagged});
  EXPECT_EQ(list("?review=confirmed"), std::vector<std::string>{flagged});
  // The report document is untouched: still the signed bytes the scan produced.
  const std::string report_after = served_report();
  EXPECT_EQ(report_after, report_before);

  audit_filter recorded;
  recorded.event = "review_recorded";
  const auto entries = f.w.store.list_audit(recorded).items;
  ASSERT_EQ(entries.size(), 2U);
  EXPECT_EQ(entries[1].by.name, "reviewer-1");
  EXPECT_EQ(entries[1].detail.at("decision"), "escalated");
  EXPECT_TRUE(f.w.store.verify_audit().intact());

  // Not reviewable: a scan that is not done, one that does not exist.
  const std::string queued = f.upload_as("k1");
  EXPECT_EQ(
      f.call(caller::reviewer, http::verb::post, "/api/v1/reports/" + queued + "/reviews", R"({"decision":"cleared"})")
          .message.result(),
      http::status::conflict);
  EXPECT_EQ(f.call(caller::reviewer, http::verb::get, "/api/v1/reports/" + std::string(32, 'e') + "/reviews")
                .message.result(),
            http::status::not_found);
}

TEST(Access, BearerHeadersAreParsedStrictly) {
  EXPECT_EQ(bearer_token("Bearer abc"), "abc");
  EXPECT_EQ(bearer_token("bearer   abc  "), "abc");
  EXPECT_FALSE(bearer_token("Basic abc"));
  EXPECT_FALSE(bearer_token("Bearer "));
  EXPECT_FALSE(bearer_token(""));
  EXPECT_FALSE(bearer_token("Bearerabc"));
}

}  // namespace
}  // namespace borderscan::server
