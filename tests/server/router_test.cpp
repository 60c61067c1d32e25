#include "borderscan/server/router.hpp"

#include <gtest/gtest.h>

#include <set>

#include "borderscan/scanner/digest.hpp"
#include "borderscan/scanner/text.hpp"
#include "server_test_support.hpp"

namespace borderscan::server {
namespace {

using namespace test_support;
using nlohmann::json;

// A request with the test router's admin token (wired sets it).
request make(http::verb method, const std::string& target, std::string body = {}) {
  request req{method, target, 11};
  req.set(http::field::authorization, "Bearer " + default_bearer_token());
  req.body() = std::move(body);
  req.prepare_payload();
  return req;
}

json problem_of(const response& r) {
  EXPECT_EQ(r.message[http::field::content_type], "application/problem+json");
  const auto j = json::parse(r.message.body());
  EXPECT_EQ(j.at("status"), r.message.result_int());
  EXPECT_TRUE(j.contains("type") && j.contains("title") && j.contains("detail"));
  return j;
}

std::string fixture_image() {
  return read_file(test::fixture_dir() / "fat-simple.img");
}

// Uploads the bytes and returns the scan id.
std::string upload(wired& w, const std::string& body, const std::string& station = "k1") {
  auto req = make(http::verb::post, "/api/v1/scans?label=bag%2012", body);
  req.set(http::field::authorization, "Bearer " + w.token(station));
  const auto res = w.routes.handle(req, "t");
  EXPECT_EQ(res.message.result(), http::status::accepted) << res.message.body();
  return json::parse(res.message.body()).at("id");
}

TEST(Router, HealthzAnswersOk) {
  wired w;
  const auto res = w.routes.handle(make(http::verb::get, "/healthz"));
  EXPECT_EQ(res.message.result(), http::status::ok);
  EXPECT_EQ(json::parse(res.message.body()).at("status"), "ok");
}

TEST(Router, ReadyzFailsWhenTheSpoolIsGone) {
  wired w;
  EXPECT_EQ(w.routes.handle(make(http::verb::get, "/readyz")).message.result(), http::status::ok);
  std::filesystem::remove_all(w.spool);
  const auto res = w.routes.handle(make(http::verb::get, "/readyz"));
  EXPECT_EQ(res.message.result(), http::status::service_unavailable);
  EXPECT_NE(problem_of(res).at("detail").get<std::string>().find("\"spool\":false"), std::string::npos);
}

TEST(Router, UnknownRouteIsNotFoundProblem) {
  wired w;
  const auto res = w.routes.handle(make(http::verb::get, "/api/v1/nothing"), "rid-1");
  EXPECT_EQ(res.message.result(), http::status::not_found);
  EXPECT_EQ(problem_of(res).at("request_id"), "rid-1");
}

TEST(Router, WrongMethodIsMethodNotAllowedWithAllow) {
  wired w;
  const auto res = w.routes.handle(make(http::verb::put, "/api/v1/scans/" + std::string(32, 'a')));
  EXPECT_EQ(res.message.result(), http::status::method_not_allowed);
  EXPECT_EQ(res.message[http::field::allow], "GET, DELETE");
  problem_of(res);
}

TEST(Router, TheTableTellsTheTransportWhereEachRouteRunsAndWhichBodyItStreams) {
  wired w;
  std::set<std::string> inline_routes, streamed;
  for (const auto& r : router::routes()) {
    std::string target = r.pattern;
    if (const auto at = target.find('{'); at != std::string::npos) {
      target.replace(at, target.find('}', at) + 1 - at, std::string(32, 'a'));
    }
    if (const auto at = target.find('{'); at != std::string::npos) {
      target.replace(at, target.find('}', at) + 1 - at, std::string(32, 'b'));
    }
    request_header head;
    head.method(r.method);
    head.target(target + "?any=query");
    const route_info* found = w.routes.route_of(head);
    ASSERT_NE(found, nullptr) << r.pattern;
    EXPECT_EQ(found->pattern, r.pattern);
    EXPECT_EQ(found->method, r.method);
    if (found->where == runs_on::io_thread) {
      inline_routes.insert(r.pattern);
    }
    if (found->streamed_upload) {
      streamed.insert(std::string(http::to_string(r.method)) + " " + r.pattern);
    }
  }
  // Only what never touches the store or the disk answers on an I/O thread
  // (/metrics checks its caller's token in the store).
  EXPECT_EQ(inline_routes, (std::set<std::string>{"/healthz"}));
  EXPECT_EQ(streamed, (std::set<std::string>{"POST /api/v1/scans"}));
  for (const auto& [method, target] :
       std::vector<std::pair<http::verb, std::string>>{{http::verb::get, "/api/v1/nothing"},
                                                       {http::verb::put, "/api/v1/scans"},
                                                       {http::verb::get, "http://x/healthz"}}) {
    request_header head;
    head.method(method);
    head.target(target);
    EXPECT_EQ(w.routes.route_of(head), nullptr) << target;
  }
}

TEST(Router, MalformedQueriesAreBadRequests) {
  wired w;
  for (const char* target : {"/api/v1/reports?limit=abc", "/api/v1/reports?limit=0", "/api/v1/reports?colour=red",
                             "/api/v1/reports?verdict=dirty", "/api/v1/reports?since=yesterday",
                             "/api/v1/reports?cursor=zz", "/api/v1/reports?limit=1&limit=2", "/healthz?x=1"}) {
    const auto res = w.routes.handle(make(http::verb::get, target));
    EXPECT_EQ(res.message.result(), http::status::bad_request) << target;
    problem_of(res);
  }
}

TEST(Router, AcceptsUploadSpoolsItAndQueuesAScan) {
  wired w;
  const std::string image = fixture_image();
  auto req = make(http::verb::post, "/api/v1/scans?filename=stick.img", image);
  req.set(http::field::authorization, "Bearer " + w.token("kiosk-7"));
  req.set("X-Station", "someone-else");  // ignored: the station is the token's name
  const auto res = w.routes.handle(req);
  ASSERT_EQ(res.message.result(), http::status::accepted) << res.message.body();
  const auto body = json::parse(res.message.body());
  const std::string id = body.at("id");
  EXPECT_EQ(res.message[http::field::location], "/api/v1/scans/" + id);
  EXPECT_EQ(body.at("status"), "queued");
  EXPECT_EQ(body.at("size"), image.size());
  EXPECT_TRUE(std::filesystem::exists(w.spool / (id + ".img")));
  EXPECT_EQ(count_files(w.spool), 1U);

  const auto status = w.routes.handle(make(http::verb::get, "/api/v1/scans/" + id));
  const auto s = json::parse(status.message.body());
  EXPECT_EQ(s.at("status"), "queued");
  EXPECT_EQ(s.at("station"), "kiosk-7");
  EXPECT_EQ(s.at("filename"), "stick.img");
  EXPECT_EQ(s.at("image_sha256"), body.at("image_sha256"));
}

TEST(Router, DigestMismatchIsUnprocessableAndKeepsNothing) {
  wired w;
  const std::string image = fixture_image();
  auto req = make(http::verb::post, "/api/v1/scans", image);
  req.set("X-Image-SHA256", std::string(64, '0'));
  auto res = w.routes.handle(req);
  EXPECT_EQ(res.message.result(), http::status::unprocessable_entity);
  EXPECT_EQ(problem_of(res).at("type"), "urn:borderscan:problem:digest-mismatch");

  auto req2 = make(http::verb::post, "/api/v1/scans", image);
  req2.set("Content-Digest", "sha-256=:LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=:");
  res = w.routes.handle(req2);
  EXPECT_EQ(res.message.result(), http::status::unprocessable_entity);
  EXPECT_EQ(count_files(w.spool), 0U);
  EXPECT_EQ(w.queue.queued(), 0U);
  EXPECT_EQ(w.store.count(scan_status::queued), 0U);
}

TEST(Router, MatchingDigestsAreAccepted) {
  wired w;
  auto req = make(http::verb::post, "/api/v1/scans", "hello");
  req.set("X-Image-SHA256", "2CF24DBA5FB0A30E26E83B2AC5B9E29E1B161E5C1FA7425E73043362938B9824");
  req.set("Content-Digest", "sha-256=:LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=:");
  EXPECT_EQ(w.routes.handle(req).message.result(), http::status::accepted);
}

TEST(Router, RejectsUploadOverTheImageLimit) {
  wired w(8, 1024);
  const auto res = w.routes.handle(make(http::verb::post, "/api/v1/scans", std::string(2048, 'x')));
  EXPECT_EQ(res.message.result(), http::status::payload_too_large);
  problem_of(res);
  EXPECT_EQ(count_files(w.spool), 0U);
}

TEST(Router, RejectsBadUploadHeads) {
  wired w;
  auto typed = make(http::verb::post, "/api/v1/scans", "x");
  typed.set(http::field::content_type, "application/json");
  EXPECT_EQ(w.routes.handle(typed).message.result(), http::status::unsupported_media_type);
  EXPECT_EQ(w.routes.handle(make(http::verb::post, "/api/v1/scans", "")).message.result(), http::status::bad_request);
  EXPECT_EQ(w.routes.handle(make(http::verb::post, "/api/v1/scans?filename=a/b", "x")).message.result(),
            http::status::bad_request);
}

TEST(Router, FullQueueIsServiceUnavailableWithRetryAfter) {
  wired w(2);
  upload(w, "one");
  upload(w, "two");
  const auto res = w.routes.handle(make(http::verb::post, "/api/v1/scans", "three"));
  EXPECT_EQ(res.message.result(), http::status::service_unavailable);
  EXPECT_EQ(res.message[http::field::retry_after], "30");
  EXPECT_EQ(problem_of(res).at("type"), "urn:borderscan:problem:queue-full");
  EXPECT_EQ(count_files(w.spool), 2U);
}

TEST(Router, ReportIsConflictUntilTheScanIsDone) {
  wired w;
  const std::string id = upload(w, fixture_image());
  auto res = w.routes.handle(make(http::verb::get, "/api/v1/scans/" + id + "/report"));
  EXPECT_EQ(res.message.result(), http::status::conflict);
  problem_of(res);
  EXPECT_EQ(w.routes.handle(make(http::verb::get, "/api/v1/reports/" + id + "/files")).message.result(),
            http::status::conflict);

  finish_next(w);
  res = w.routes.handle(make(http::verb::get, "/api/v1/scans/" + id + "/report"));
  ASSERT_EQ(res.message.result(), http::status::ok);
  EXPECT_EQ(res.stream->size(), std::filesystem::file_size(w.store.find_report(id)->path));
  const std::string body = body_of(res);
  const auto report = json::parse(body);
  std::array<std::uint8_t, 32> digest{};
  ASSERT_TRUE(scanner::from_hex(w.store.find_report(id)->sha256, digest));
  EXPECT_EQ(res.message["Repr-Digest"], "sha-256=:" + scanner::base64_encode(digest) + ":");
  EXPECT_EQ(scanner::sha256_hex(body), w.store.find_report(id)->sha256);
  EXPECT_TRUE(test::validate_report(report));
  EXPECT_EQ(report.at("scan_id"), id);
  EXPECT_EQ(report.at("station"), "k1");
  EXPECT_EQ(report.at("verdict"), "flagged");
  const auto status = json::parse(w.routes.handle(make(http::verb::get, "/api/v1/scans/" + id)).message.body());
  EXPECT_EQ(status.at("status"), "done");
  EXPECT_EQ(status.at("verdict"), "flagged");
  EXPECT_EQ(status.at("ruleset_digest"), report.at("ruleset").at("digest"));
}

TEST(Router, FilePagesStreamAcrossStoreBatchesAndContinueByCursor) {
  wired w;
  // 300 files: pages of 250 span three store batches, the second page two.
  const auto content = w.dir / "content";
  std::filesystem::create_directories(content);
  for (int i = 0; i < 300; ++i) {
    std::ofstream(content / ("note-" + std::to_string(i) + ".txt")) << "note " << i << "\n";
  }
  const auto image = w.dir / "many.img";
  const auto made = test::run_command("mke2fs -q -t ext4 -d " + test::shell_quote(content.string()) + " " +
                                      test::shell_quote(image.string()) + " 8M");
  ASSERT_EQ(made.exit_code, 0) << made.err;
  const std::string id = upload(w, read_file(image));
  finish_next(w);
  const json stored = stored_report_json(w.store, id);
  json seen = json::array();
  std::string cursor;
  int pages = 0;
  do {
    auto res = w.routes.handle(make(
        http::verb::get, "/api/v1/reports/" + id + "/files?limit=250" + (cursor.empty() ? "" : "&cursor=" + cursor)));
    ASSERT_EQ(res.message.result(), http::status::ok);
    EXPECT_FALSE(res.stream->size().has_value()) << "chunked: the length is not known up front";
    const json page = json::parse(body_of(res));
    EXPECT_LE(page.at("items").size(), 250U);
    for (json item : page.at("items")) {
      // Each item says where it is in the report; the rest is the entry as stored.
      EXPECT_EQ(item.at("index"), seen.size());
      item.erase("index");
      seen.push_back(item);
    }
    cursor = page.at("next_cursor").is_null() ? "" : page.at("next_cursor").get<std::string>();
    ++pages;
  } while (!cursor.empty() && pages < 10);
  EXPECT_EQ(pages, 2);
  EXPECT_EQ(seen, stored.at("files")) << "every entry once, in the report's order";
}

TEST(Router, UnknownOrMalformedScanIdsAreNotFound) {
  wired w;
  for (const std::string& id : {std::string(32, 'a'), std::string("..%2F..%2Fetc"), std::string("ABC")}) {
    for (const auto* suffix : {"", "/report", "/events"}) {
      const auto res = w.routes.handle(make(http::verb::get, "/api/v1/scans/" + id + suffix));
      EXPECT_EQ(res.message.result(), http::status::not_found) << id << suffix;
    }
  }
}

TEST(Router, CancelsAQueuedScanOnceThenConflicts) {
  wired w;
  const std::string id = upload(w, "image");
  auto res = w.routes.handle(make(http::verb::delete_, "/api/v1/scans/" + id));
  ASSERT_EQ(res.message.result(), http::status::ok) << res.message.body();
  const auto body = json::parse(res.message.body());
  EXPECT_EQ(body.at("status"), "cancelled");
  EXPECT_EQ(body.at("error"), nullptr);
  EXPECT_EQ(body.at("cancelled_by").at("role"), "admin");  // the test router's default token
  EXPECT_EQ(count_files(w.spool), 0U);
  res = w.routes.handle(make(http::verb::delete_, "/api/v1/scans/" + id));
  EXPECT_EQ(res.message.result(), http::status::conflict);
  EXPECT_EQ(w.queue.queued(), 0U);
}

TEST(Router, ListsReportsWithFiltersAndPagesFiles) {
  wired w;
  const std::string flagged = upload(w, fixture_image(), "a");
  finish_next(w);
  const std::string clean = upload(w, read_file(test::clean_image()), "b");
  finish_next(w);

  const auto list = [&](const std::string& q) {
    const auto res = w.routes.handle(make(http::verb::get, "/api/v1/reports" + q));
    EXPECT_EQ(res.message.result(), http::status::ok) << q << " " << res.message.body();
    return json::parse(res.message.body());
  };
  EXPECT_EQ(list("").at("items").size(), 2U);
  EXPECT_EQ(list("").at("items").at(0).at("id"), clean);  // newest first
  EXPECT_EQ(list("?verdict=flagged").at("items").at(0).at("id"), flagged);
  EXPECT_EQ(list("?station=b").at("items").size(), 1U);
  EXPECT_EQ(list("?review=unreviewed").at("items").size(), 2U);
  EXPECT_EQ(list("?since=2030-01-01").at("items").size(), 0U);
  const auto first = list("?limit=1");
  ASSERT_TRUE(first.at("next_cursor").is_string());
  const auto second = list("?limit=1&cursor=" + first.at("next_cursor").get<std::string>());
  EXPECT_EQ(second.at("items").at(0).at("id"), flagged);
  EXPECT_TRUE(second.at("next_cursor").is_null());

  const auto files = [&](const std::string& q) {
    auto res = w.routes.handle(make(http::verb::get, "/api/v1/reports/" + flagged + "/files" + q));
    EXPECT_EQ(res.message.result(), http::status::ok) << res.message.body();
    return json::parse(body_of(res));
  };
  const auto hits = files("?flagged=true");
  ASSERT_FALSE(hits.at("items").empty());
  for (const auto& f : hits.at("items")) {
    EXPECT_FALSE(f.at("findings").empty());
  }
  std::size_t total = 0;
  std::string q = "?limit=2";
  for (int guard = 0; guard < 100; ++guard) {
    const auto page = files(q);
    total += page.at("items").size();
    if (page.at("next_cursor").is_null()) {
      break;
    }
    q = "?limit=2&cursor=" + page.at("next_cursor").get<std::string>();
  }
  const auto report = stored_report_json(w.store, flagged);
  EXPECT_EQ(total, report.at("files").size());
  EXPECT_EQ(
      w.routes.handle(make(http::verb::get, "/api/v1/reports/" + std::string(32, 'f') + "/files")).message.result(),
      http::status::not_found);
}

TEST(Router, EventStreamEndsWithDone) {
  wired w;
  const std::string id = upload(w, fixture_image());
  const auto res = w.routes.handle(make(http::verb::get, "/api/v1/scans/" + id + "/events"));
  ASSERT_TRUE(res.events);
  EXPECT_EQ(res.message[http::field::content_type], "text/event-stream");
  bool done = false;
  EXPECT_NE(res.events->poll(done).find("event: status"), std::string::npos);
  EXPECT_FALSE(done);
  EXPECT_EQ(res.events->poll(done), "");  // nothing changed
  finish_next(w);
  const std::string last = res.events->poll(done);
  EXPECT_TRUE(done);
  EXPECT_EQ(last.rfind("id: done.1.", 0), 0U) << last;
  EXPECT_NE(last.find("\nevent: done\ndata: "), std::string::npos) << last;
}

TEST(Router, MetricsCountUploadsAndRequests) {
  wired w;
  upload(w, "12345");
  w.stats.on_http_request("/api/v1/scans", 202);
  const auto res = w.routes.handle(make(http::verb::get, "/metrics"));
  EXPECT_EQ(res.message.result(), http::status::ok);
  const std::string& text = res.message.body();
  EXPECT_NE(text.find("borderscan_upload_bytes_total 5\n"), std::string::npos) << text;
  EXPECT_NE(text.find("borderscan_queue_depth 1\n"), std::string::npos);
  EXPECT_NE(text.find("borderscan_http_requests_total{route=\"/api/v1/scans\",status=\"202\"} 1\n"), std::string::npos);
}

}  // namespace
}  // namespace borderscan::server
