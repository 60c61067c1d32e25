// The real daemon on a loopback port: uploads, reports, errors, crashes and
// shutdown, over real HTTP.
#include <signal.h>

#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "daemon_fixture.hpp"
#include "daemon_harness.hpp"
#include "server_test_support.hpp"

namespace borderscan::server {
namespace {

using namespace test_support;
using nlohmann::json;
namespace http = boost::beast::http;
namespace net = boost::asio;

std::string fat_image() {
  return read_file(test::fixture_dir() / "fat-simple.img");
}

std::string clean_image() {
  return read_file(test::clean_image());
}

std::string hex_to_bytes(const std::string& hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  }
  return out;
}

// Submits as the station's token (made on first use): the station is the token's name.
std::string submit(daemon& d, const std::string& image, const std::string& station = "k1",
                   std::map<std::string, std::string> headers = {}) {
  headers["Authorization"] = "Bearer " + d.token(station);
  headers["Content-Type"] = "application/octet-stream";
  const auto res = http_call(d.port(), http::verb::post, "/api/v1/scans?label=test", image, headers);
  EXPECT_EQ(res.status, 202U) << res.body;
  if (res.status != 202) {
    return {};
  }
  const std::string id = res.json().at("id");
  EXPECT_EQ(res.header("location"), "/api/v1/scans/" + id);
  return id;
}

json scan_status(const daemon& d, const std::string& id) {
  const auto res = http_get(d.port(), "/api/v1/scans/" + id);
  EXPECT_EQ(res.status, 200U) << res.body;
  return res.status == 200 ? res.json() : json::object();
}

bool reaches(const daemon& d, const std::string& id, const std::string& status) {
  return eventually([&] { return scan_status(d, id).value("status", "") == status; });
}

json fetch_report(const daemon& d, const std::string& id) {
  const auto res = http_get(d.port(), "/api/v1/scans/" + id + "/report");
  EXPECT_EQ(res.status, 200U) << res.body;
  const json report = res.json();
  EXPECT_TRUE(test::validate_report(report));
  return report;
}

void expect_problem(const http_result& res, unsigned status, const std::string& what) {
  EXPECT_EQ(res.status, status) << what << ": " << res.body;
  EXPECT_EQ(res.header("content-type"), "application/problem+json") << what;
  EXPECT_FALSE(res.header("x-request-id").empty()) << what;
  if (res.header("content-type") == "application/problem+json") {
    const auto j = res.json();
    EXPECT_EQ(j.at("status"), status) << what;
    EXPECT_FALSE(j.at("detail").get<std::string>().empty()) << what;
    EXPECT_EQ(j.at("type").get<std::string>().rfind("urn:borderscan:problem:", 0), 0U) << what;
  }
}

// A value from the Prometheus text, or -1.
double metric(const daemon& d, const std::string& series) {
  const auto text = http_get(d.port(), "/metrics").body;
  const auto at = text.find("\n" + series + " ");
  if (at == std::string::npos) {
    return -1;
  }
  return std::stod(text.substr(at + series.size() + 2));
}

// Images and reports in the spool; the attempts' work folders are counted apart.
std::size_t spool_files(const daemon& d) {
  std::size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(d.spool_dir())) {
    n += e.path().filename() == "work" ? 0 : 1;
  }
  return n;
}

// spool/work/<scan id>: one per running attempt (issue #17).
std::size_t work_folders(const daemon& d) {
  const auto work = d.spool_dir() / "work";
  return std::filesystem::exists(work) ? count_files(work) : 0;
}

using Daemon = daemon_test;

TEST_F(Daemon, UploadsAFixtureAndServesASchemaValidReport) {
  auto& d = start();
  const std::string image = fat_image();
  const std::string sha = sha256_hex(image);
  const std::string id =
      submit(d, image, "kiosk-1",
             {{"X-Image-SHA256", sha}, {"Content-Digest", "sha-256=:" + base64(hex_to_bytes(sha)) + ":"}});
  ASSERT_TRUE(reaches(d, id, "done")) << d.log();
  const json report = fetch_report(d, id);
  EXPECT_EQ(report.at("scan_id"), id);
  EXPECT_EQ(report.at("station"), "kiosk-1");
  EXPECT_EQ(report.at("image").at("sha256"), sha);
  EXPECT_EQ(report.at("verdict"), "flagged");
  const json status = scan_status(d, id);
  EXPECT_EQ(status.at("verdict"), "flagged");
  EXPECT_EQ(status.at("ruleset_digest"), report.at("ruleset").at("digest"));
  // A finished scan's progress is the report's totals, not zeros.
  const json& summary = report.at("summary");
  EXPECT_EQ(status.at("progress").at("files_done"),
            summary.at("files").get<std::uint64_t>() + summary.at("directories").get<std::uint64_t>());
  EXPECT_EQ(status.at("progress").at("bytes_done"), summary.at("bytes"));
  EXPECT_GT(status.at("progress").at("bytes_done").get<std::uint64_t>(), 0U);
  EXPECT_EQ(status.at("progress").at("bytes_total"), summary.at("bytes"));
  EXPECT_TRUE(eventually([&] { return spool_files(d) == 0; }));  // image deleted once scanned
  EXPECT_EQ(work_folders(d), 0U) << "the attempt's work folder is gone with it";
  EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();
}

// A gzip-compressed stick holding a qcow2 disk image that holds EICAR: the
// fenced worker decompresses the upload and spools the qcow2 into its work
// folder (the only place the sandbox lets it create files), and both are
// gone when the scan is.
TEST_F(Daemon, FencedWorkerOpensCompressedUploadsAndVirtualDisksInsideThem) {
  const auto dir = scratch_ / "made";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "eicar.com") << test::eicar();
  const auto q = [&](const char* name) { return test::shell_quote((dir / name).string()); };
  const auto made = test::run_command(
      "set -e; mkfs.vfat -C " + q("inner.img") + " 2048 >/dev/null; mcopy -i " + q("inner.img") + " " + q("eicar.com") +
      " ::/eicar.com; qemu-img convert -O qcow2 " + q("inner.img") + " " + q("disk.qcow2") + "; mkfs.vfat -C " +
      q("stick.img") + " 8192 >/dev/null; mcopy -i " + q("stick.img") + " " + q("disk.qcow2") +
      " ::/disk.qcow2; gzip -c " + q("stick.img") + " > " + q("stick.img.gz"));
  ASSERT_EQ(made.exit_code, 0) << made.err;

  auto& d = start();
  const std::string id = submit(d, read_file(dir / "stick.img.gz"), "kiosk-1");
  ASSERT_TRUE(reaches(d, id, "done")) << d.log();
  const json report = fetch_report(d, id);
  EXPECT_EQ(report.at("verdict"), "flagged") << report.at("errors").dump(1);
  EXPECT_EQ(report.at("image").at("compression"), "gzip");
  EXPECT_EQ(report.at("image").at("media").at("size"), std::filesystem::file_size(dir / "stick.img"));
  bool found = false;
  for (const auto& f : report.at("findings")) {
    found = found || f.at("path") == "/disk.qcow2!/eicar.com";
  }
  EXPECT_TRUE(found) << report.at("findings").dump(1) << report.at("errors").dump(1);
  EXPECT_TRUE(eventually([&] { return work_folders(d) == 0; })) << "scratch copies go with the work folder";
  EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();
}

TEST_F(Daemon, StartUpRemovesWorkFoldersACrashLeftBehind) {
  const auto left = scratch_ / "data" / "spool" / "work" / "scan-of-a-crashed-daemon";
  std::filesystem::create_directories(left);
  std::ofstream(left / "scratch.E01") << "x";
  auto& d = start();
  EXPECT_FALSE(std::filesystem::exists(left)) << d.log();
  EXPECT_NE(d.log().find("removed 1 leftover worker folder"), std::string::npos) << d.log();
}

TEST_F(Daemon, EventStreamEndsWithDone) {
  auto& d = start({.debug_scan_delay_ms = 300});
  const std::string id = submit(d, fat_image());
  const auto res = http_get(d.port(), "/api/v1/scans/" + id + "/events");
  EXPECT_EQ(res.status, 200U);
  EXPECT_EQ(res.header("content-type"), "text/event-stream");
  EXPECT_EQ(res.body.find("id: "), 0U) << res.body;
  EXPECT_NE(res.body.find("\nevent: status\n"), std::string::npos) << res.body;
  const auto last = res.body.rfind("event: ");
  ASSERT_NE(last, std::string::npos);
  EXPECT_EQ(res.body.substr(last, 12), "event: done\n") << res.body;
  const auto data = res.body.substr(res.body.find("data: ", last) + 6);
  EXPECT_EQ(json::parse(data.substr(0, data.find('\n'))).at("verdict"), "flagged");
}

TEST_F(Daemon, ListsReportsWithFiltersAndCursorPaging) {
  auto& d = start();
  const std::string a = submit(d, fat_image(), "alpha");
  const std::string b = submit(d, clean_image(), "bravo");
  const std::string c = submit(d, clean_image(), "alpha");
  for (const auto& id : {a, b, c}) {
    ASSERT_TRUE(reaches(d, id, "done")) << d.log();
  }
  const auto list = [&](const std::string& query) {
    const auto res = http_get(d.port(), "/api/v1/reports" + query);
    EXPECT_EQ(res.status, 200U) << query << ": " << res.body;
    return res.json();
  };
  const auto ids = [](const json& page) {
    std::vector<std::string> out;
    for (const auto& item : page.at("items")) {
      out.push_back(item.at("id"));
    }
    return out;
  };
  EXPECT_EQ(ids(list("")), (std::vector<std::string>{c, b, a}));
  EXPECT_EQ(ids(list("?verdict=flagged")), std::vector<std::string>{a});
  EXPECT_EQ(ids(list("?verdict=clean&station=alpha")), std::vector<std::string>{c});
  EXPECT_EQ(ids(list("?review=unreviewed")).size(), 3U);
  EXPECT_TRUE(ids(list("?until=2000-01-01")).empty());
  EXPECT_EQ(ids(list("?since=2000-01-01T00:00:00Z")).size(), 3U);

  std::vector<std::string> paged;
  std::string query = "?limit=1";
  for (int guard = 0; guard < 10; ++guard) {
    const auto page = list(query);
    for (const auto& id : ids(page)) {
      paged.push_back(id);
    }
    if (page.at("next_cursor").is_null()) {
      break;
    }
    query = "?limit=1&cursor=" + page.at("next_cursor").get<std::string>();
  }
  EXPECT_EQ(paged, (std::vector<std::string>{c, b, a}));

  const auto files = http_get(d.port(), "/api/v1/reports/" + a + "/files?flagged=true&limit=50");
  ASSERT_EQ(files.status, 200U) << files.body;
  const json hits = files.json();
  ASSERT_FALSE(hits.at("items").empty());
  for (const auto& f : hits.at("items")) {
    EXPECT_FALSE(f.at("findings").empty()) << f.dump();
  }
  fetch_report(d, a);
  EXPECT_EQ(http_get(d.port(), "/api/v1/reports/" + a + "/files?deleted=maybe").status, 400U);
}

TEST_F(Daemon, ErrorsAreProblemDetails) {
  auto& d = start({.max_image_bytes = 1 << 20, .debug_scan_delay_ms = 60'000});
  const auto port = d.port();
  expect_problem(http_get(port, "/api/v1/scans/" + std::string(32, 'e')), 404, "unknown scan");
  expect_problem(http_get(port, "/api/v1/nowhere"), 404, "unknown route");
  expect_problem(http_call(port, http::verb::patch, "/api/v1/reports"), 405, "wrong method");
  expect_problem(http_get(port, "/api/v1/reports?limit=many"), 400, "bad query");

  const std::string small = clean_image().substr(0, 512 * 1024);
  const std::string id = submit(d, small);
  ASSERT_TRUE(reaches(d, id, "running"));
  expect_problem(http_get(port, "/api/v1/scans/" + id + "/report"), 409, "report not ready");

  const std::string big = fat_image();  // 2 MiB, over the 1 MiB limit
  expect_problem(http_call(port, http::verb::post, "/api/v1/scans", big), 413, "declared too large");
  expect_problem(http_call(port, http::verb::post, "/api/v1/scans", big, {}, true), 413, "chunked too large");
  expect_problem(http_call(port, http::verb::post, "/api/v1/scans", small, {{"X-Image-SHA256", std::string(64, 'f')}}),
                 422, "digest mismatch");
  expect_problem(
      http_call(port, http::verb::post, "/api/v1/scans", small, {{"Content-Digest", "sha-256=:not-base64!:"}}), 400,
      "malformed digest");

  // A request line that is not HTTP.
  {
    net::io_context ioc;
    boost::beast::tcp_stream stream(ioc);
    stream.expires_after(std::chrono::seconds(60));
    stream.connect(net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    net::write(stream, net::buffer(std::string("HELLO THERE\r\n\r\n")));
    boost::beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(stream, buffer, res);
    EXPECT_EQ(res.result_int(), 400U);
    EXPECT_EQ(res[http::field::content_type], "application/problem+json");
  }

  EXPECT_TRUE(eventually([&] { return spool_files(d) == 1; })) << "only the running scan's image stays";
  const auto cancel = http_call(port, http::verb::delete_, "/api/v1/scans/" + id);
  EXPECT_EQ(cancel.status, 202U) << cancel.body;
  ASSERT_TRUE(reaches(d, id, "cancelled"));
  EXPECT_EQ(scan_status(d, id).at("cancelled_by").at("role"), "admin");
  EXPECT_EQ(scan_status(d, id).at("error"), nullptr);
  expect_problem(http_call(port, http::verb::delete_, "/api/v1/scans/" + id), 409, "cancel twice");
}

TEST_F(Daemon, EchoesRequestIdsAndKeepsConnectionsAlive) {
  auto& d = start();
  net::io_context ioc;
  boost::beast::tcp_stream stream(ioc);
  stream.expires_after(std::chrono::seconds(60));
  stream.connect(net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), d.port()));
  boost::beast::flat_buffer buffer;
  for (const char* rid : {"kiosk-req-1", "kiosk-req-2"}) {
    http::request<http::empty_body> req{http::verb::get, "/healthz", 11};
    req.set("X-Request-Id", rid);
    http::write(stream, req);
    http::response<http::string_body> res;
    http::read(stream, buffer, res);
    EXPECT_EQ(res.result_int(), 200U);
    EXPECT_EQ(res["X-Request-Id"], rid);
    EXPECT_TRUE(res.keep_alive());
  }
  EXPECT_NE(d.log().find("request=kiosk-req-2"), std::string::npos);
}

TEST_F(Daemon, SpoolWriteFailuresAnswer507AndKeepNothing) {
  // Writes past 4 MiB fail in the daemon, as they would on a full disk.
  auto& d = start({.file_size_limit_bytes = 4 << 20});
  const std::string too_big(6 << 20, 'x');
  for (const bool chunked : {false, true}) {
    const auto res = http_call(d.port(), http::verb::post, "/api/v1/scans", too_big,
                               {{"Content-Type", "application/octet-stream"}}, chunked);
    expect_problem(res, 507, chunked ? "chunked upload" : "upload of known length");
    EXPECT_EQ(res.json().value("type", ""), "urn:borderscan:problem:spool-full");
    EXPECT_EQ(spool_files(d), 0U);
  }
  EXPECT_TRUE(http_get(d.port(), "/api/v1/reports").json().at("items").empty());
  EXPECT_EQ(metric(d, "borderscan_queue_depth"), 0);
  // An image that fits still goes through.
  const std::string id = submit(d, fat_image());
  ASSERT_TRUE(reaches(d, id, "done")) << d.log();
}

TEST_F(Daemon, ReadsUploadBodiesExactlySoPipelinedRequestsFollow) {
  auto& d = start();
  const std::string image = fat_image();
  // A chunked upload (no length known in advance) is stored whole.
  const auto chunked = http_call(d.port(), http::verb::post, "/api/v1/scans", image,
                                 {{"Content-Type", "application/octet-stream"}}, true);
  ASSERT_EQ(chunked.status, 202U) << chunked.body;
  EXPECT_EQ(chunked.json().at("image_sha256"), sha256_hex(image));
  EXPECT_EQ(chunked.json().at("size"), image.size());

  // An upload of known length and a request behind it, sent in one write:
  // a body larger than one read, and one that arrives with its header.
  for (const std::string& body : {image, image.substr(0, 700)}) {
    net::io_context ioc;
    boost::beast::tcp_stream stream(ioc);
    stream.expires_after(std::chrono::seconds(60));
    stream.connect(net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), d.port()));
    const std::string pipelined =
        "POST /api/v1/scans HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
        "Authorization: Bearer " +
        d.token("k1") + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body +
        "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    net::write(stream, net::buffer(pipelined));
    boost::beast::flat_buffer buffer;
    http::response<http::string_body> uploaded, health;
    http::read(stream, buffer, uploaded);
    EXPECT_EQ(uploaded.result_int(), 202U) << uploaded.body();
    EXPECT_EQ(json::parse(uploaded.body()).at("image_sha256"), sha256_hex(body));
    EXPECT_EQ(json::parse(uploaded.body()).at("size"), body.size());
    http::read(stream, buffer, health);
    EXPECT_EQ(health.result_int(), 200U) << health.body();
    EXPECT_TRUE(health.keep_alive());
    ASSERT_TRUE(reaches(d, json::parse(uploaded.body()).at("id"), "done")) << d.log();
  }
}

TEST_F(Daemon, ClientDisconnectMidUploadKeepsNothing) {
  auto& d = start();
  {
    net::io_context ioc;
    net::ip::tcp::socket socket(ioc);
    begin_upload(socket, d.port(), d.token("k1"), 256 * 1024);
    // Wait until the server has started spooling, then vanish.
    ASSERT_TRUE(eventually([&] { return spool_files(d) == 1; })) << d.log();
  }
  ASSERT_TRUE(eventually([&] { return d.log().find("upload abandoned") != std::string::npos; })) << d.log();
  EXPECT_EQ(spool_files(d), 0U);
  EXPECT_EQ(metric(d, "borderscan_uploads_total"), 0);
  EXPECT_EQ(metric(d, "borderscan_queue_depth"), 0);
  EXPECT_TRUE(http_get(d.port(), "/api/v1/reports").json().at("items").empty());
}

TEST_F(Daemon, KillNineWithQueuedAndRunningScansLosesNothing) {
  auto& d = start({.workers = 1, .debug_scan_delay_ms = 60'000});
  const std::string running = submit(d, fat_image());
  const std::string queued = submit(d, clean_image());
  ASSERT_TRUE(reaches(d, running, "running"));
  EXPECT_EQ(scan_status(d, queued).at("status"), "queued");
  // The active list: both, in queue order; another station sees neither.
  const json active = http_get(d.port(), "/api/v1/scans").json().at("items");
  ASSERT_EQ(active.size(), 2U) << active.dump();
  EXPECT_EQ(active.at(0).at("id"), running);
  EXPECT_EQ(active.at(0).at("status"), "running");
  EXPECT_EQ(active.at(1).at("id"), queued);
  const auto other =
      http_call(d.port(), http::verb::get, "/api/v1/scans", {}, {{"Authorization", "Bearer " + d.token("k-other")}});
  EXPECT_TRUE(other.json().at("items").empty()) << other.body;
  d.kill_hard();

  d.options().debug_scan_delay_ms = 0;
  d.start();
  ASSERT_TRUE(reaches(d, running, "done")) << d.log();
  ASSERT_TRUE(reaches(d, queued, "done")) << d.log();
  EXPECT_EQ(scan_status(d, running).at("attempts"), 2);  // the interrupted attempt counts
  EXPECT_EQ(fetch_report(d, running).at("verdict"), "flagged");
  EXPECT_EQ(fetch_report(d, queued).at("verdict"), "clean");
  EXPECT_EQ(d.stop(SIGTERM), 0);
}

TEST_F(Daemon, SigtermLetsARunningScanFinish) {
  auto& d = start({.workers = 1, .debug_scan_delay_ms = 1'000});
  const std::string id = submit(d, fat_image());
  ASSERT_TRUE(reaches(d, id, "running"));
  EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();
  const std::string log = d.log();
  const auto done = log.find("job=" + id + " state=done");
  ASSERT_NE(done, std::string::npos) << log;
  EXPECT_LT(done, log.find("stopped cleanly"));

  d.options().debug_scan_delay_ms = 0;
  d.start();
  EXPECT_EQ(scan_status(d, id).at("status"), "done");
  fetch_report(d, id);
}

TEST_F(Daemon, SigtermPastTheGracePeriodQueuesTheScanAgain) {
  auto& d = start({.workers = 1, .shutdown_grace_seconds = 0, .debug_scan_delay_ms = 60'000});
  const std::string id = submit(d, fat_image());
  ASSERT_TRUE(reaches(d, id, "running"));
  EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();
  EXPECT_NE(d.log().find("job=" + id + " state=queued reason='interrupted by shutdown'"), std::string::npos) << d.log();

  d.options().debug_scan_delay_ms = 0;
  d.start();
  ASSERT_TRUE(reaches(d, id, "done")) << d.log();
  EXPECT_EQ(scan_status(d, id).at("attempts"), 1);
}

TEST_F(Daemon, MetricsCountersMoveAsScansRun) {
  auto& d = start();
  EXPECT_EQ(metric(d, "borderscan_scans_total{verdict=\"flagged\"}"), 0);
  const std::string image = fat_image();
  const std::string id = submit(d, image);
  ASSERT_TRUE(reaches(d, id, "done"));
  EXPECT_TRUE(eventually([&] { return metric(d, "borderscan_scans_total{verdict=\"flagged\"}") == 1; }));
  EXPECT_EQ(metric(d, "borderscan_upload_bytes_total"), static_cast<double>(image.size()));
  EXPECT_EQ(metric(d, "borderscan_uploads_total"), 1);
  EXPECT_GT(metric(d, "borderscan_scanned_files_total"), 0);
  EXPECT_EQ(metric(d, "borderscan_scan_duration_seconds_count"), 1);
  EXPECT_EQ(metric(d, "borderscan_http_requests_total{route=\"/api/v1/scans\",status=\"202\"}"), 1);
}

TEST(DaemonStartup, RefusesBadConfigurationWithAClearMessage) {
  test::scratch_dir dir;
  std::ofstream(dir / "bad.toml") << "[jobs]\nworkerz = 2\n";
  const auto r =
      test::run_command(std::string(BORDERSCAND) + " --config " + test::shell_quote((dir / "bad.toml").string()));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("unknown key 'jobs.workerz'"), std::string::npos) << r.err;
}

TEST(DaemonStartup, PrintsTheEffectiveConfiguration) {
  const auto r = test::run_command(std::string(BORDERSCAND) + " --listen 127.0.0.1:9999 --print-config");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("listen = '127.0.0.1:9999'"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("max_attempts = 3"), std::string::npos);
}

TEST(DaemonStartup, RefusesRulesThatDoNotCompile) {
  test::scratch_dir dir;
  std::ofstream(dir / "broken.yar") << "rule x { condition: nonsense }\n";
  std::ofstream(dir / "c.toml") << "[rules]\npaths = [\"" << (dir / "broken.yar").string()
                                << "\"]\n[storage]\ndata_dir = \"" << (dir / "var").string() << "\"\n";
  const auto r =
      test::run_command(std::string(BORDERSCAND) + " --config " + test::shell_quote((dir / "c.toml").string()));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("broken.yar"), std::string::npos) << r.err;
}

TEST_F(Daemon, MisbehavingWorkersFailTheirScansWhileOthersCompleteAndHealthStaysGreen) {
  // A stand-in worker command that misbehaves for some stations and runs the
  // real worker for the others.
  const std::filesystem::path script = scratch_ / "worker.sh";
  std::ofstream(script) << "#!/bin/sh\n"
                        << "case \"$*\" in\n"
                        << "  *'--station crasher'*) kill -SEGV $$ ;;\n"
                        << "  *'--station sleeper'*) exec sleep 600 ;;\n"
                        << "  *'--station garbage'*) echo garbage; exit 0 ;;\n"
                        << "esac\n"
                        << "exec '" << BORDERSCAN_CLI << "' \"$@\"\n";
  std::filesystem::permissions(script, std::filesystem::perms::owner_all);
  auto& d =
      start({.workers = 4, .extra_config = "[worker]\ncommand = \"" + script.string() + "\"\ntimeout_seconds = 3\n"});
  const std::string image = fat_image();
  const std::string crasher = submit(d, image, "crasher");
  const std::string sleeper = submit(d, image, "sleeper");
  const std::string garbage = submit(d, image, "garbage");
  const std::string normal = submit(d, image, "kiosk-1");
  EXPECT_EQ(http_get(d.port(), "/healthz").status, 200U);
  ASSERT_TRUE(reaches(d, normal, "done")) << d.log();
  EXPECT_EQ(fetch_report(d, normal).at("verdict"), "flagged");
  ASSERT_TRUE(reaches(d, crasher, "failed")) << d.log();
  EXPECT_EQ(scan_status(d, crasher).at("error"), "crashed: SIGSEGV");
  ASSERT_TRUE(reaches(d, garbage, "failed")) << d.log();
  EXPECT_EQ(scan_status(d, garbage).at("error"), "malformed worker output: a line that is not a JSON message");
  ASSERT_TRUE(reaches(d, sleeper, "failed")) << d.log();
  EXPECT_EQ(scan_status(d, sleeper).at("error"), "timed out after 3 s");
  EXPECT_EQ(scan_status(d, crasher).at("attempts"), 1) << "a crash is not retried";
  EXPECT_EQ(http_get(d.port(), "/healthz").status, 200U);

  // Each failure is audited, and its image kept for examination (72 h by
  // default) while the finished scan's image is gone.
  const auto failures = http_get(d.port(), "/api/v1/audit?event=scan_failed");
  ASSERT_EQ(failures.status, 200U) << failures.body;
  std::map<std::string, std::string> reasons;
  const json failure_list = failures.json();
  for (const auto& e : failure_list.at("items")) {
    reasons[e.at("scan_id")] = e.at("detail").at("reason");
  }
  EXPECT_EQ(reasons,
            (std::map<std::string, std::string>{{crasher, "crashed: SIGSEGV"},
                                                {garbage, "malformed worker output: a line that is not a JSON message"},
                                                {sleeper, "timed out after 3 s"}}));
  for (const auto& id : {crasher, garbage, sleeper}) {
    EXPECT_TRUE(scan_status(d, id).at("image_kept_until").is_string()) << id;
    EXPECT_TRUE(std::filesystem::exists(d.spool_dir() / (id + ".img"))) << id;
  }
  EXPECT_TRUE(scan_status(d, normal).at("image_kept_until").is_null());
  EXPECT_FALSE(std::filesystem::exists(d.spool_dir() / (normal + ".img")));
  EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();

  // The start-up sweep of leftovers spares kept images.
  d.start();
  EXPECT_TRUE(std::filesystem::exists(d.spool_dir() / (crasher + ".img"))) << d.log();
  EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();
}

TEST_F(Daemon, AnAdminFreesAFailedScansKeptImageAndTheScanSaysWho) {
  // A worker that crashes for station "crasher": its scan fails and its image
  // is kept for keep_failed_hours (72 by default).
  const std::filesystem::path script = scratch_ / "worker.sh";
  std::ofstream(script) << "#!/bin/sh\n"
                        << "case \"$*\" in *'--station crasher'*) kill -SEGV $$ ;; esac\n"
                        << "exec '" << BORDERSCAN_CLI << "' \"$@\"\n";
  std::filesystem::permissions(script, std::filesystem::perms::owner_all);
  auto& d = start({.debug_scan_delay_ms = 1500, .extra_config = "[worker]\ncommand = \"" + script.string() + "\"\n"});
  const std::string image = fat_image();
  const std::string failed = submit(d, image, "crasher");
  ASSERT_TRUE(reaches(d, failed, "failed")) << d.log();
  const std::filesystem::path kept = d.spool_dir() / (failed + ".img");
  ASSERT_TRUE(std::filesystem::exists(kept));
  ASSERT_TRUE(scan_status(d, failed).at("image_kept_until").is_string());
  EXPECT_TRUE(scan_status(d, failed).at("image_deleted").is_null());

  const std::string target = "/api/v1/scans/" + failed + "/image";
  // Only admins free images; a station (even the scan's own) is refused and nothing goes.
  const auto as_station =
      http_call(d.port(), http::verb::delete_, target, {}, {{"Authorization", "Bearer " + d.token("crasher")}});
  expect_problem(as_station, 403, "station deletes an image");
  EXPECT_TRUE(std::filesystem::exists(kept));

  // A scan still running reads its image: 409, and the image stays.
  const std::string running = submit(d, image, "k1");
  ASSERT_TRUE(reaches(d, running, "running")) << d.log();
  const auto busy = http_call(d.port(), http::verb::delete_, "/api/v1/scans/" + running + "/image");
  expect_problem(busy, 409, "image of a running scan");
  EXPECT_EQ(busy.json().at("type"), "urn:borderscan:problem:scan-active");
  EXPECT_NE(busy.json().at("detail").get<std::string>().find("running"), std::string::npos) << busy.body;
  expect_problem(http_call(d.port(), http::verb::delete_, "/api/v1/scans/" + std::string(32, 'e') + "/image"), 404,
                 "image of an unknown scan");

  const auto freed = http_call(d.port(), http::verb::delete_, target);
  EXPECT_EQ(freed.status, 204U) << freed.body;
  EXPECT_TRUE(freed.body.empty());
  EXPECT_FALSE(std::filesystem::exists(kept));
  const json after = scan_status(d, failed);
  EXPECT_TRUE(after.at("image_kept_until").is_null()) << after.dump();
  ASSERT_TRUE(after.at("image_deleted").is_object()) << after.dump();
  EXPECT_EQ(after.at("image_deleted").at("reason").get<std::string>().rfind("deleted by admin (admin, request ", 0), 0U)
      << after.dump();
  const auto audit = http_get(d.port(), "/api/v1/audit?event=image_deleted&scan=" + failed).json();
  ASSERT_EQ(audit.at("items").size(), 1U) << audit.dump();
  EXPECT_EQ(audit.at("items").at(0).at("detail").at("reason"), after.at("image_deleted").at("reason"));

  // Twice: nothing left to free, and the answer says why.
  const auto again = http_call(d.port(), http::verb::delete_, target);
  expect_problem(again, 409, "image deleted twice");
  EXPECT_NE(again.json().at("detail").get<std::string>().find("deleted by admin"), std::string::npos) << again.body;
  ASSERT_TRUE(reaches(d, running, "done")) << d.log();
  EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();
}

// Processes whose command line names `needle` (a worker left behind would
// still name its spool image).
std::vector<std::string> processes_naming(const std::string& needle) {
  std::vector<std::string> found;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const auto pid = e.path().filename().string();
    if (pid.find_first_not_of("0123456789") != std::string::npos) {
      continue;
    }
    std::ifstream in(e.path() / "cmdline");
    const std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (cmdline.find(needle) != std::string::npos) {
      found.push_back(pid);
    }
  }
  return found;
}

TEST_F(Daemon, CorpusEveryHostileImageEndsDoneOrFailedWithAReasonNeverHung) {
  BORDERSCAN_REQUIRE_CORPUS();
  const auto images = test::hostile_images(scratch_.path());
  ASSERT_GE(images.size(), 11U);

  auto& d = start({.workers = 2, .queue_capacity = 32, .extra_config = "[worker]\ntimeout_seconds = 10\n"});
  std::vector<std::pair<std::string, std::filesystem::path>> scans;
  for (const auto& image : images) {
    if (std::filesystem::file_size(image) == 0) {
      // Nothing to scan: refused at the door with a reason, not queued.
      expect_problem(http_call(d.port(), http::verb::post, "/api/v1/scans", ""), 400, image.string());
      continue;
    }
    scans.emplace_back(submit(d, read_file(image), "hostile"), image);
  }
  for (const auto& [id, image] : scans) {
    ASSERT_FALSE(id.empty()) << image;
    std::string status;
    ASSERT_TRUE(eventually(
        [&] {
          status = scan_status(d, id).value("status", "");
          return status == "done" || status == "failed";
        },
        std::chrono::seconds(120)))
        << image << " is still " << status << "\n"
        << d.log();
    const json record = scan_status(d, id);
    if (status == "done") {
      const json report = fetch_report(d, id);
      EXPECT_TRUE(report.at("verdict") != "clean" || !report.at("warnings").empty() ||
                  image.filename() == "fatcat-infinite-file.img")
          << image << ": a hostile image ended clean without a word\n"
          << report.dump(1);
    } else {
      ADD_FAILURE() << image << ": every hostile image ends in a report with its errors: " << record.dump();
    }
    EXPECT_EQ(http_get(d.port(), "/healthz").status, 200U) << image;
  }
  EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();
  EXPECT_EQ(processes_naming(d.spool_dir().string()), std::vector<std::string>{}) << "a worker outlived the daemon";
}

TEST_F(Daemon, KeepsFlaggedImagesForTheConfiguredDaysAndAuditsTheirLife) {
  auto& d = start({.storage_extra = "keep_flagged_days = 2\n"});
  const std::string flagged = submit(d, fat_image());
  const std::string clean = submit(d, clean_image());
  ASSERT_TRUE(reaches(d, flagged, "done")) << d.log();
  ASSERT_TRUE(reaches(d, clean, "done")) << d.log();
  EXPECT_EQ(fetch_report(d, flagged).at("verdict"), "flagged");
  EXPECT_EQ(fetch_report(d, clean).at("verdict"), "clean");

  const json kept = scan_status(d, flagged);
  ASSERT_TRUE(kept.at("image_kept_until").is_string()) << kept.dump();
  std::int64_t until = 0, finished = 0;
  ASSERT_TRUE(parse_time(kept.at("image_kept_until").get<std::string>(), until));
  ASSERT_TRUE(parse_time(kept.at("finished_at").get<std::string>(), finished));
  EXPECT_NEAR(static_cast<double>(until - finished), 2 * 86'400'000.0, 60'000.0);
  EXPECT_TRUE(std::filesystem::exists(d.spool_dir() / (flagged + ".img")));
  EXPECT_TRUE(scan_status(d, clean).at("image_kept_until").is_null());
  EXPECT_FALSE(std::filesystem::exists(d.spool_dir() / (clean + ".img")));

  const auto audit = http_get(d.port(), "/api/v1/audit?scan=" + flagged);
  ASSERT_EQ(audit.status, 200U) << audit.body;
  const json entries = audit.json().at("items");
  std::vector<std::string> events;
  for (const auto& e : entries) {
    events.insert(events.begin(), e.at("event").get<std::string>());
  }
  // The report fetched above is on the record too, with who read it.
  // The flagged file's content is kept as evidence (evidence.enabled by default).
  ASSERT_EQ(events,
            (std::vector<std::string>{"scan_submitted", "scan_done", "evidence_kept", "image_kept", "report_read"}));
  EXPECT_EQ(entries.at(0).at("actor").at("name"), "admin");
  EXPECT_EQ(entries.at(4).at("actor").at("name"), "k1");
  EXPECT_EQ(entries.at(4).at("actor").at("role"), "station");
  EXPECT_GE(entries.at(2).at("detail").at("copies").get<int>(), 1);
  const json done = entries.at(3);
  EXPECT_EQ(done.at("detail").at("verdict"), "flagged");
  expect_problem(http_get(d.port(), "/api/v1/audit?event=nonsense"), 400, "unknown audit event");
  expect_problem(http_get(d.port(), "/api/v1/audit?scan=../etc"), 400, "bad scan id");
  EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();
}

}  // namespace
}  // namespace borderscan::server
