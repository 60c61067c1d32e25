// Load on the real daemon over loopback (issue #17, "Load and fault suite"):
// slow request heads and trickling uploads from one address and from many
// while a normal client is served, wrk on the listing and report routes, and
// 32 concurrent uploads of real fixture images. The tests assert correctness
// only (every answer right, nothing lost, attackers cut off per the configured
// limits) and print their figures; docs/reliability.md "Load" keeps the latest.
// BORDERSCAN_LOAD_SECONDS makes the attack and wrk runs longer.
#include <algorithm>
#include <atomic>
#include <iostream>
#include <regex>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "daemon_fixture.hpp"
#include "load_client.hpp"
#include "server_test_support.hpp"

namespace borderscan::server {
namespace {

using namespace test_support;
using namespace std::chrono_literals;
using nlohmann::json;
using clock_type = std::chrono::steady_clock;

// 127.0.0.<first> .. 127.0.0.<first + count - 1>.
std::vector<std::string> loopback_addresses(unsigned first, unsigned count) {
  std::vector<std::string> out;
  for (unsigned i = 0; i < count; ++i) {
    out.push_back("127.0.0." + std::to_string(first + i));
  }
  return out;
}

std::string figures_of(const latency_figures& l) {
  return std::to_string(l.count) + " requests, p50 " + std::to_string(l.p50) + " ms, p99 " + std::to_string(l.p99) +
         " ms, max " + std::to_string(l.max) + " ms";
}

std::string figures_of(const slow_group& g, const slow_group_figures& f) {
  std::string answers;
  for (const auto& [answer, n] : f.answers) {
    answers += (answers.empty() ? "" : ", ") + answer + ": " + std::to_string(n);
  }
  return g.name + ": " + std::to_string(f.opened) + " connections opened, " + std::to_string(f.cut_unanswered) +
         " closed by the server without an answer, answered {" + answers + "}, " + std::to_string(f.bytes_trickled) +
         " bytes trickled";
}

// The sum of the daemon's "refused N connections in the last second: A at
// http.max_connections, B over http.max_connections_per_client" lines.
std::pair<unsigned, unsigned> refusals_logged(const daemon& d) {
  static const std::regex line(
      R"(refused \d+ connections in the last second: (\d+) at http\.max_connections, (\d+) over)");
  const std::string log = d.log();
  std::pair<unsigned, unsigned> sum;
  for (std::sregex_iterator it(log.begin(), log.end(), line), end; it != end; ++it) {
    sum.first += static_cast<unsigned>(std::stoul((*it)[1]));
    sum.second += static_cast<unsigned>(std::stoul((*it)[2]));
  }
  return sum;
}

// Uploads `image` until it is accepted: a 503 that says Retry-After is
// retried (sooner than it asks, to keep the test short). The scan's id, or ""
// with a test failure; `refusals` counts the 503s by problem type.
std::string upload_until_accepted(const daemon& d, const std::string& image, const std::string& token,
                                  std::map<std::string, unsigned>& refusals) {
  const auto give_up = clock_type::now() + 300s;
  while (clock_type::now() < give_up) {
    const auto r = upload_image(d.port(), image, token);
    if (r.result.status == 202) {
      EXPECT_EQ(r.result.json().at("image_sha256"), sha256_hex(image));
      return r.result.json().at("id").get<std::string>();
    }
    if (r.result.status != 503 || r.result.header("retry-after").empty()) {
      ADD_FAILURE() << "upload answered " << r.result.status << " " << r.result.body << r.error;
      return {};
    }
    ++refusals[problem_type(r.result)];
    std::this_thread::sleep_for(200ms);
  }
  ADD_FAILURE() << "an upload was refused for 300 s";
  return {};
}

// " 12 x 503 queue-full, 1 x 503 busy" (" no 503" when none).
std::string refusals_text(const std::map<std::string, unsigned>& refusals) {
  std::string out;
  for (const auto& [type, n] : refusals) {
    out += (out.empty() ? " " : ", ") + std::to_string(n) + " x 503 " + type;
  }
  return out.empty() ? " no 503" : out;
}

std::string scan_status(const daemon& d, const std::string& id) {
  const auto r = timed_get(d.port(), "/api/v1/scans/" + id, default_bearer_token());
  return r.result.status == 200 ? r.result.json().value("status", "") : "";
}

// Every audit entry of `event` (admin token), across pages.
std::vector<json> audit_entries(const daemon& d, const std::string& event) {
  std::vector<json> out;
  std::string cursor;
  do {
    const auto r = timed_get(d.port(), "/api/v1/audit?event=" + event + "&limit=1000" + cursor, default_bearer_token());
    EXPECT_EQ(r.result.status, 200U) << r.result.body << r.error;
    if (r.result.status != 200) {
      break;
    }
    const json page = r.result.json();
    for (const auto& e : page.at("items")) {
      out.push_back(e);
    }
    cursor = page.at("next_cursor").is_string() ? "&cursor=" + page.at("next_cursor").get<std::string>() : "";
  } while (!cursor.empty());
  return out;
}

// What the spool holds besides the (empty) folder of scan attempts: images,
// partial uploads, reports, work folders.
std::string spool_leftovers(const daemon& d) {
  std::string out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(d.spool_dir())) {
    if (e.path() != d.spool_dir() / "work") {
      out += std::filesystem::relative(e.path(), d.spool_dir()).string() + " ";
    }
  }
  return out;
}

using Load = daemon_test;

TEST_F(Load, SlowHeadsAndTricklingUploadsFromOneAndManyAddressesLeaveANormalClientServed) {
  const auto attack_time = std::chrono::seconds(load_seconds(6));
  // The shipped limits, with deadlines short enough for a test.
  auto& d = start({.workers = 1,
                   .queue_capacity = 64,
                   .http_extra = "max_connections = 256\nmax_connections_per_client = 64\n"
                                 "reserved_health_connections = 4\nheader_timeout_seconds = 3\n"
                                 "min_upload_bytes_per_second = 1000\nupload_rate_window_seconds = 2\n"});
  const std::string kiosk = d.token("kiosk-1");
  const std::string rogue = d.token("kiosk-rogue");
  const std::string image = read_file(test::fixture_dir() / "fat-clean.img");

  // A request head that never ends, a byte every 250 ms; and uploads of 100 kB
  // whose body comes a byte a second. The one-address group is more than
  // max_connections_per_client; all groups together stay below
  // max_connections, which the per-address cap is there to guarantee.
  const std::string endless_head = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + std::string(200, 'a');
  const std::vector<slow_group> groups = {
      {.name = "slow heads from 127.0.0.2",
       .sources = {"127.0.0.2"},
       .connections = 300,
       .trickle = endless_head,
       .every = 250ms},
      {.name = "slow heads from 127.0.0.3-12",
       .sources = loopback_addresses(3, 10),
       .connections = 100,
       .trickle = endless_head,
       .every = 250ms},
      {.name = "trickling uploads from 127.0.0.13-16",
       .sources = loopback_addresses(13, 4),
       .connections = 64,
       .opening = "POST /api/v1/scans HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
                  "Authorization: Bearer " +
                  rogue + "\r\nContent-Length: 100000\r\n\r\n",
       .trickle = "x",
       .every = 1000ms},
  };
  slow_attack attack(d.port(), groups);

  // The normal client, from 127.0.0.1: health checks and the listing as a
  // kiosk polls them, and a real upload, retried while the queue is full.
  std::vector<double> health_ms;
  std::vector<double> listing_ms;
  std::vector<std::string> errors;
  std::map<std::string, unsigned> upload_refusals;
  std::string id;
  const auto attack_end = clock_type::now() + attack_time;
  std::thread uploader([&] { id = upload_until_accepted(d, image, kiosk, upload_refusals); });
  // A 503 "busy" (the daemon's blocking pool has too much waiting, as when
  // the 64 trickling uploads come back at once) says Retry-After: the client
  // asks again, and the busy answers are counted.
  unsigned busy = 0;
  const auto get = [&](const std::string& target) {
    auto r = timed_get(d.port(), target, kiosk);
    for (int retries = 0; r.result.status == 503 && problem_type(r.result) == "busy" && retries < 20; ++retries) {
      ++busy;
      std::this_thread::sleep_for(100ms);
      r = timed_get(d.port(), target, kiosk);
    }
    return r;
  };
  while (clock_type::now() < attack_end) {
    const auto health = get("/healthz");
    if (health.result.status == 200 && health.result.body.find("ok") != std::string::npos) {
      health_ms.push_back(health.ms);
    } else {
      errors.push_back("/healthz: " + std::to_string(health.result.status) + " " + health.result.body + health.error);
    }
    const auto listing = get("/api/v1/scans");
    if (listing.result.status == 200 && listing.result.json().at("items").is_array()) {
      listing_ms.push_back(listing.ms);
    } else {
      errors.push_back("/api/v1/scans: " + std::to_string(listing.result.status) + " " + listing.result.body +
                       listing.error);
    }
    std::this_thread::sleep_for(20ms);
  }
  uploader.join();

  // The attackers stop reconnecting but go on trickling: the server must end
  // every connection by its own limits.
  attack.stop_reconnecting();
  EXPECT_TRUE(attack.wait_all_ended(60s)) << "an attacker still holds a connection";
  EXPECT_TRUE(errors.empty()) << errors.size() << " normal requests failed, the first: " << errors.front();
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(eventually([&] { return scan_status(d, id) == "done"; }, 120s)) << scan_status(d, id);
  EXPECT_EQ(timed_get(d.port(), "/api/v1/scans/" + id + "/report", kiosk).result.status, 200U);

  const auto figures = attack.figures();
  for (std::size_t g = 0; g < 2; ++g) {
    for (const auto& [answer, n] : figures[g].answers) {
      EXPECT_NE(answer[0], '2') << groups[g].name << " got " << answer;
    }
  }
  // Every trickling upload was refused with a reason: too slow, or no queue slot.
  const auto& uploads = figures[2];
  EXPECT_EQ(uploads.cut_unanswered, 0U);
  for (const auto& [answer, n] : uploads.answers) {
    EXPECT_TRUE(answer == "408 upload-too-slow" || answer == "503 queue-full") << answer;
  }
  // The first wave held every queue slot but the one the normal upload may have won.
  EXPECT_GE(uploads.answers.count("408 upload-too-slow") ? uploads.answers.at("408 upload-too-slow") : 0U, 63U);
  // The single address was held to its cap: at least the 236 connections of
  // its first wave beyond 64 were refused (the daemon logs a count a second).
  std::pair<unsigned, unsigned> refused;
  EXPECT_TRUE(eventually(
      [&] {
        refused = refusals_logged(d);
        return refused.second >= 300 - 64;
      },
      10s))
      << d.log();
  EXPECT_TRUE(eventually([&] { return spool_leftovers(d).empty(); }, 30s))
      << "left in the spool: " << spool_leftovers(d);

  const auto health = latency_of(health_ms);
  const auto listing = latency_of(listing_ms);
  std::cout << "[load figures] " << attack_time.count() << " s of attack\n"
            << "  normal client: " << health.count + listing.count << " requests, " << errors.size() << " errors, "
            << busy << " answered 503 busy first and asked again\n"
            << "    GET /healthz: " << figures_of(health) << "\n"
            << "    GET /api/v1/scans: " << figures_of(listing) << "\n"
            << "    upload: accepted after" << refusals_text(upload_refusals) << ", scan done\n";
  for (std::size_t g = 0; g < groups.size(); ++g) {
    std::cout << "  " << figures_of(groups[g], figures[g]) << "\n";
  }
  std::cout << "  daemon: refused " << refused.second << " connections over http.max_connections_per_client, "
            << refused.first << " at http.max_connections" << std::endl;
}

TEST_F(Load, WrkOnTheListingAndReportRoutesGetsOnly2xx) {
  if (test::run_command("command -v wrk").exit_code != 0) {
    GTEST_SKIP() << "wrk is not installed (Debian package wrk; scripts/deps.sh installs it for the tests)";
  }
  const unsigned seconds = std::max(2U, load_seconds(6) / 2);
  auto& d = start({.workers = 2});
  const std::string kiosk = d.token("kiosk-1");
  std::map<std::string, unsigned> refusals;
  std::vector<std::string> ids;
  for (const char* fixture : {"fat-clean.img", "fat-simple.img", "iso-simple.iso"}) {
    ids.push_back(upload_until_accepted(d, read_file(test::fixture_dir() / fixture), kiosk, refusals));
  }
  for (const auto& id : ids) {
    ASSERT_TRUE(eventually([&] { return scan_status(d, id) == "done"; }, 120s)) << id;
  }
  // A reviewer's console reads reports; every report read is audited.
  const std::string reviewer = d.token("reviewer-1", "reviewer");
  const std::string base = "http://127.0.0.1:" + std::to_string(d.port());
  for (const std::string& route :
       std::vector<std::string>{"/api/v1/reports", "/api/v1/scans", "/api/v1/scans/" + ids[1] + "/report"}) {
    const auto run = test::run_command(
        "wrk -t2 -c16 -d" + std::to_string(seconds) + "s --timeout 30s -s " + test::shell_quote(WRK_SUMMARY_SCRIPT) +
        " -H " + test::shell_quote("Authorization: Bearer " + reviewer) + " " + test::shell_quote(base + route));
    ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
    const auto at = run.out.find("wrk-summary ");
    ASSERT_NE(at, std::string::npos) << run.out << run.err;
    const json s = json::parse(run.out.substr(at + 12, run.out.find('\n', at) - at - 12));
    EXPECT_GT(s.at("requests").get<unsigned>(), 0U) << route;
    for (const char* error : {"connect", "read", "write", "timeout", "status", "non_2xx"}) {
      EXPECT_EQ(s.at(error), 0) << route << ": " << error << " errors\n" << run.out;
    }
    const double rate = s.at("requests").get<double>() / (s.at("duration_us").get<double>() / 1e6);
    std::cout << "[load figures] wrk -t2 -c16 -d" << seconds << "s " << route << ": " << s.at("requests")
              << " requests, " << rate << " requests/s, p50 " << s.at("p50_us").get<double>() / 1000 << " ms, p99 "
              << s.at("p99_us").get<double>() / 1000 << " ms, errors 0" << std::endl;
  }
  EXPECT_EQ(timed_get(d.port(), "/healthz", kiosk).result.status, 200U);
}

TEST_F(Load, ThirtyTwoConcurrentUploadsAreEachAcceptedAndScannedExactlyOnce) {
  constexpr unsigned uploads = 32;
  auto& d = start({.workers = 2, .queue_capacity = 8});
  std::vector<std::string> images;
  for (const char* fixture : {"fat-clean.img", "fat-simple.img", "iso-simple.iso", "exfat-simple.img"}) {
    images.push_back(read_file(test::fixture_dir() / fixture));
  }
  std::vector<std::string> kiosks;
  for (int k = 0; k < 4; ++k) {
    kiosks.push_back(d.token("kiosk-" + std::to_string(k)));
  }

  const auto began = clock_type::now();
  std::vector<std::string> ids(uploads);
  std::vector<std::map<std::string, unsigned>> refusals(uploads);
  std::vector<std::thread> clients;
  for (unsigned i = 0; i < uploads; ++i) {
    clients.emplace_back([&, i] {
      ids[i] = upload_until_accepted(d, images[i % images.size()], kiosks[i % kiosks.size()], refusals[i]);
    });
  }
  for (auto& c : clients) {
    c.join();
  }
  const double accepted_s = std::chrono::duration<double>(clock_type::now() - began).count();
  const std::set<std::string> distinct(ids.begin(), ids.end());
  ASSERT_EQ(distinct.size(), uploads);
  ASSERT_EQ(distinct.count(""), 0U);
  for (const auto& id : ids) {
    ASSERT_TRUE(eventually([&] { return scan_status(d, id) == "done"; }, 300s)) << id << ": " << scan_status(d, id);
  }
  const double done_s = std::chrono::duration<double>(clock_type::now() - began).count();

  // Each accepted upload was submitted and ended done exactly once.
  for (const std::string event : {"scan_submitted", "scan_done"}) {
    std::map<std::string, unsigned> per_scan;
    for (const auto& e : audit_entries(d, event)) {
      ++per_scan[e.at("scan_id").get<std::string>()];
    }
    EXPECT_EQ(per_scan.size(), uploads) << event;
    for (const auto& id : ids) {
      EXPECT_EQ(per_scan[id], 1U) << event << " of " << id;
    }
  }
  EXPECT_TRUE(audit_entries(d, "scan_failed").empty());
  EXPECT_TRUE(eventually([&] { return spool_leftovers(d).empty(); }, 30s))
      << "left in the spool: " << spool_leftovers(d);

  std::map<std::string, unsigned> refused;
  unsigned retried = 0;
  for (const auto& r : refusals) {
    retried += r.empty() ? 0 : 1;
    for (const auto& [type, n] : r) {
      refused[type] += n;
    }
  }
  std::cout << "[load figures] " << uploads << " concurrent uploads (queue_capacity 8, 2 workers): " << uploads
            << " accepted, " << retried << " of them after a 503 (" << refusals_text(refused)
            << " ); all accepted after " << accepted_s << " s, all done after " << done_s
            << " s; one scan_submitted and one scan_done each, spool empty" << std::endl;
}

}  // namespace
}  // namespace borderscan::server
