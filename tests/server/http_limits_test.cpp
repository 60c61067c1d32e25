// The daemon's HTTP layer against clients that misbehave on purpose, over
// real sockets to the real daemon: slow request heads, many connections from
// one address, trickling uploads, bad chunk sizes, transfer codings it does
// not support, query values that are not UTF-8, garbage pipelined after a
// request, and floods of requests for the access log. Deadlines and caps are
// set small in each test's configuration so that every test stays short.
#include <poll.h>
#include <sys/socket.h>

#include <thread>

#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "daemon_fixture.hpp"
#include "server_test_support.hpp"

namespace borderscan::server {
namespace {

using namespace test_support;
using namespace std::chrono_literals;
using nlohmann::json;
namespace http = boost::beast::http;
namespace net = boost::asio;
namespace beast = boost::beast;

// A raw TCP client: writes exactly the bytes given, reads what comes back.
class raw_client {
 public:
  explicit raw_client(std::uint16_t port) : stream_(ioc_) {
    stream_.expires_after(20s);
    stream_.connect(net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  }

  void send(const std::string& bytes) {
    beast::error_code ec;
    net::write(stream_.socket(), net::buffer(bytes), ec);  // the server may have closed already
  }

  // One response; status 0 when the connection ended first.
  http_result response(std::chrono::seconds limit = 15s) {
    stream_.expires_after(limit);
    http::response_parser<http::string_body> parser;
    beast::error_code ec;
    http::read(stream_, buffer_, parser, ec);
    return ec ? http_result{} : to_result(parser.get());
  }

  // Waits (bounded) until the server ends the connection; true when it did.
  bool closed_by_server(std::chrono::seconds limit) {
    stream_.expires_after(limit);
    char sink[4096];
    beast::error_code ec;
    while (!ec) {
      stream_.read_some(net::buffer(sink), ec);
    }
    return ec != beast::error::timeout;
  }

  // Whether the server has sent something (or closed) yet, without waiting.
  bool readable() {
    pollfd p{stream_.socket().native_handle(), POLLIN, 0};
    return ::poll(&p, 1, 0) == 1;
  }

  // Sends `bytes` one at a time, `every` apart, until the server answers or
  // closes, or `limit` passes; how long it went on.
  std::chrono::steady_clock::duration trickle(const std::string& bytes, std::chrono::milliseconds every,
                                              std::chrono::seconds limit) {
    const auto began = std::chrono::steady_clock::now();
    for (std::size_t i = 0; std::chrono::steady_clock::now() - began < limit; i = (i + 1) % bytes.size()) {
      if (readable()) {
        break;
      }
      if (::send(stream_.socket().native_handle(), &bytes[i], 1, MSG_NOSIGNAL) != 1) {
        break;
      }
      std::this_thread::sleep_for(every);
    }
    return std::chrono::steady_clock::now() - began;
  }

 private:
  net::io_context ioc_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
};

std::string upload_head(daemon& d, const std::string& extra) {
  return "POST /api/v1/scans HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
         "Authorization: Bearer " +
         d.token("k1") + "\r\n" + extra + "\r\n";
}

void expect_problem(const http_result& res, unsigned status, const std::string& type) {
  EXPECT_EQ(res.status, status) << res.body;
  EXPECT_EQ(res.header("content-type"), "application/problem+json");
  if (res.header("content-type") == "application/problem+json") {
    const auto j = res.json();
    EXPECT_EQ(j.at("type"), "urn:borderscan:problem:" + type) << res.body;
    EXPECT_FALSE(j.at("detail").get<std::string>().empty());
    EXPECT_EQ(j.at("request_id"), res.header("x-request-id"));
  }
}

// The access line of request `id` in the daemon's log, or "".
std::string access_line(const daemon& d, const std::string& id) {
  const std::string log = d.log();
  const auto at = log.find("request=" + id + " ");
  return at == std::string::npos ? std::string() : log.substr(at, log.find('\n', at) - at);
}

double logged_ms(const std::string& line) {
  const auto at = line.find(" ms=");
  return at == std::string::npos ? -1 : std::stod(line.substr(at + 4));
}

using HttpLimits = daemon_test;

TEST_F(HttpLimits, OneAddressHoldsAtMostItsShareOfConnections) {
  auto& d = start({.http_extra = "max_connections_per_client = 4\nheader_timeout_seconds = 30\n"});
  std::vector<std::unique_ptr<raw_client>> slow;
  for (int i = 0; i < 4; ++i) {
    slow.push_back(std::make_unique<raw_client>(d.port()));
    slow.back()->send("GET /hea");  // a head that never ends, as slowloris sends
  }
  raw_client fifth(d.port());
  EXPECT_TRUE(fifth.closed_by_server(10s)) << "a fifth connection from the same address was kept";
  EXPECT_TRUE(
      eventually([&] { return d.log().find("over http.max_connections_per_client") != std::string::npos; }, 10s))
      << d.log();
  // A slot given back is a slot for the next connection.
  slow.pop_back();
  EXPECT_TRUE(eventually(
      [&] {
        raw_client c(d.port());
        c.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        return c.response(5s).status == 200;
      },
      10s));
}

TEST_F(HttpLimits, HealthIsAnsweredWhenEveryConnectionIsTaken) {
  auto& d =
      start({.http_extra = "max_connections = 4\nreserved_health_connections = 2\nheader_timeout_seconds = 30\n"});
  std::vector<std::unique_ptr<raw_client>> holders;
  for (int i = 0; i < 4; ++i) {
    holders.push_back(std::make_unique<raw_client>(d.port()));
    holders.back()->send("GET /hea");
  }
  // Past max_connections, a reserved slot answers health probes ...
  for (const char* probe : {"/healthz", "/readyz"}) {
    raw_client c(d.port());
    c.send(std::string("GET ") + probe + " HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(c.response().status, 200U) << probe;
  }
  // ... and nothing else.
  {
    raw_client c(d.port());
    c.send("GET /api/v1/reports HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + d.token("k1") + "\r\n\r\n");
    const auto res = c.response();
    expect_problem(res, 503, "busy");
    EXPECT_FALSE(res.header("retry-after").empty());
  }
  // With the reserved slots taken too, further connections are closed at once.
  std::vector<std::unique_ptr<raw_client>> reserved;
  for (int i = 0; i < 2; ++i) {
    reserved.push_back(std::make_unique<raw_client>(d.port()));
    reserved.back()->send("GET /hea");
  }
  ASSERT_TRUE(eventually(
      [&] {
        raw_client c(d.port());
        return c.closed_by_server(2s);
      },
      10s));
  EXPECT_TRUE(eventually([&] { return d.log().find("at http.max_connections") != std::string::npos; }, 10s));
}

TEST_F(HttpLimits, RequestHeadsMustArriveWithinTheHeaderTimeoutHoweverTheyTrickle) {
  auto& d = start({.http_extra = "header_timeout_seconds = 1\nidle_timeout_seconds = 30\n"});
  const std::string endless_head = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaa";
  // The first request on a connection ...
  {
    raw_client c(d.port());
    const auto held = c.trickle(endless_head, 100ms, 8s);
    EXPECT_LT(held, 5s) << "a head sent a byte at a time held the connection";
    EXPECT_TRUE(c.closed_by_server(5s));
  }
  // ... and one that follows on a kept-alive connection: the head's deadline
  // runs from its first byte, not from the last one, nor the idle timeout.
  raw_client c(d.port());
  c.send("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: before-slow\r\n\r\n");
  ASSERT_EQ(c.response().status, 200U);
  const auto held = c.trickle(endless_head, 100ms, 8s);
  EXPECT_LT(held, 5s) << "a second head sent a byte at a time held the connection";
  EXPECT_TRUE(c.closed_by_server(5s));
  // Logged as a 408 of its own: a fresh id, the line it got, how long it took.
  ASSERT_TRUE(eventually([&] { return d.log().find("status=408") != std::string::npos; }, 10s)) << d.log();
  const std::string log = d.log();
  const auto line_begin = log.rfind('\n', log.rfind("status=408")) + 1;
  const std::string line = log.substr(line_begin, log.find('\n', line_begin) - line_begin);
  EXPECT_EQ(line.find("before-slow"), std::string::npos) << line;
  EXPECT_NE(line.find("\"GET /hea"), std::string::npos) << "the line as far as it came: " << line;
  EXPECT_GE(logged_ms(line), 900) << line;
  EXPECT_LT(logged_ms(line), 10'000) << line;
}

TEST_F(HttpLimits, TricklingUploadsAreRefusedAndGiveBackTheirQueueSlot) {
  auto& d = start({.queue_capacity = 1,
                   .debug_scan_delay_ms = 60'000,
                   .http_extra = "min_upload_bytes_per_second = 1000\nupload_rate_window_seconds = 2\n"});
  raw_client c(d.port());
  c.send(upload_head(d, "Content-Length: 100000\r\n"));
  const auto held = c.trickle(std::string(64, 'x'), 100ms, 10s);
  EXPECT_LT(held, 8s) << "an upload at 10 bytes per second held its slot";
  const auto res = c.response();
  expect_problem(res, 408, "upload-too-slow");
  EXPECT_NE(res.body.find("min_upload_bytes_per_second"), std::string::npos) << res.body;
  EXPECT_TRUE(eventually([&] { return count_files(d.spool_dir()) == 0; }, 10s));
  EXPECT_NE(d.log().find("upload too slow"), std::string::npos) << d.log();
  // The one queue slot is free again: a real upload goes through.
  const std::string image(64 * 1024, 'i');
  ASSERT_TRUE(eventually(
      [&] {
        return http_call(d.port(), http::verb::post, "/api/v1/scans", image,
                         {{"Authorization", "Bearer " + d.token("k1")}, {"Content-Type", "application/octet-stream"}})
                   .status == 202;
      },
      10s));
}

TEST_F(HttpLimits, AnUploadMustBeWholeWithinItsDeadline) {
  // 1000 bytes at 1000 bytes per second after a 2 s grace: about 4 s.
  auto& d = start({.http_extra = "min_upload_bytes_per_second = 1000\nupload_rate_window_seconds = 2\n"
                                 "read_timeout_seconds = 60\n"});
  raw_client c(d.port());
  const auto began = std::chrono::steady_clock::now();
  c.send(upload_head(d, "Content-Length: 1000\r\n") + std::string(900, 'x'));  // then silence
  const auto res = c.response(20s);
  expect_problem(res, 408, "upload-too-slow");
  EXPECT_NE(res.body.find("deadline"), std::string::npos) << res.body;
  EXPECT_LT(std::chrono::steady_clock::now() - began, 12s) << "the silence was only cut by the read timeout";
  EXPECT_TRUE(eventually([&] { return count_files(d.spool_dir()) == 0; }, 10s));
}

TEST_F(HttpLimits, QueryValuesThatAreNotUtf8Are400) {
  auto& d = start();
  const std::map<std::string, std::string> station{{"Authorization", "Bearer " + d.token("k1")},
                                                   {"Content-Type", "application/octet-stream"}};
  // A Latin-1 "été", as a kiosk set to ISO-8859-1 would send it.
  const auto upload = http_call(d.port(), http::verb::post, "/api/v1/scans?case_ref=%e9t%e9", "image", station);
  expect_problem(upload, 400, "bad-request");
  EXPECT_NE(upload.body.find("case_ref"), std::string::npos) << upload.body;
  EXPECT_NE(upload.body.find("UTF-8"), std::string::npos) << upload.body;
  EXPECT_EQ(count_files(d.spool_dir()), 0U);
  expect_problem(http_get(d.port(), "/api/v1/reports?station=%e9t%e9"), 400, "bad-request");
  // UTF-8 is fine.
  EXPECT_EQ(http_call(d.port(), http::verb::post, "/api/v1/scans?case_ref=%c3%a9t%c3%a9", "image", station).status,
            202U);
  // A path that is not UTF-8 is still answered (404), and the daemon stays up.
  expect_problem(http_get(d.port(), "/api/v1/nowhere/%ff%fe"), 404, "not-found");
  EXPECT_EQ(http_get(d.port(), "/healthz").status, 200U);
}

TEST_F(HttpLimits, BadChunkSizesAndUnsupportedTransferCodingsAreRefusedAtOnce) {
  auto& d = start();
  // An upload whose chunk size is not hex.
  {
    raw_client c(d.port());
    c.send(upload_head(d, "Transfer-Encoding: chunked\r\n") + "5\r\nhello\r\nzz\r\nmore\r\n0\r\n\r\n");
    const auto res = c.response();
    expect_problem(res, 400, "malformed-request");
    EXPECT_NE(res.body.find("chunk"), std::string::npos) << res.body;
  }
  EXPECT_TRUE(eventually([&] { return count_files(d.spool_dir()) == 0; }, 10s));
  // The same in a body held in memory.
  {
    raw_client c(d.port());
    c.send("POST /api/v1/tokens HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + default_bearer_token() +
           "\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n-1\r\n");
    expect_problem(c.response(), 400, "malformed-request");
  }
  // A coding without chunked: the length cannot be known. Refused at once,
  // with the body still on its way.
  {
    raw_client c(d.port());
    c.send(upload_head(d, "Transfer-Encoding: gzip\r\nX-Request-Id: gzip-only\r\n") + std::string(1000, 'z'));
    const auto res = c.response(5s);
    expect_problem(res, 400, "bad-transfer-encoding");
    EXPECT_EQ(res.header("x-request-id"), "gzip-only");
  }
  // A coding the server does not decode before chunked.
  {
    raw_client c(d.port());
    c.send(upload_head(d, "Transfer-Encoding: gzip, chunked\r\n") + "3\r\nabc\r\n0\r\n\r\n");
    expect_problem(c.response(5s), 501, "unsupported-transfer-coding");
  }
  EXPECT_EQ(count_files(d.spool_dir()), 0U);
  const std::string line = access_line(d, "gzip-only");
  EXPECT_NE(line.find("\"POST /api/v1/scans\" status=400"), std::string::npos) << d.log();
}

TEST_F(HttpLimits, RejectedRequestsAreLoggedWithTheirOwnIdLineAndDuration) {
  auto& d = start();
  // Garbage pipelined behind a good request.
  raw_client c(d.port());
  c.send("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: good-one\r\n\r\nGARBAGE \x01\xe9 LINE\r\n\r\n");
  EXPECT_EQ(c.response().status, 200U);
  const auto bad = c.response();
  expect_problem(bad, 400, "malformed-request");
  const std::string bad_id = bad.header("x-request-id");
  ASSERT_FALSE(bad_id.empty());
  EXPECT_NE(bad_id, "good-one");
  ASSERT_TRUE(eventually([&] { return !access_line(d, bad_id).empty(); }, 10s)) << d.log();
  const std::string line = access_line(d, bad_id);
  EXPECT_NE(line.find("status=400"), std::string::npos) << line;
  // The line as received, its bytes escaped.
  EXPECT_NE(line.find("\"GARBAGE \\x01\\xe9 LINE\""), std::string::npos) << line;
  // Timed from its own first byte: the daemon has been up for more than that.
  EXPECT_GE(logged_ms(line), 0) << line;
  EXPECT_LT(logged_ms(line), 10'000) << line;
  EXPECT_EQ(access_line(d, "good-one").find("status=400"), std::string::npos);

  // A target with raw bytes that are not UTF-8 (not a URL either): escaped in the log.
  raw_client raw(d.port());
  raw.send("GET /x\xe9\xff\"y HTTP/1.1\r\nHost: x\r\nX-Request-Id: raw-bytes\r\n\r\n");
  expect_problem(raw.response(), 400, "bad-request");
  ASSERT_TRUE(eventually([&] { return !access_line(d, "raw-bytes").empty(); }, 10s)) << d.log();
  EXPECT_NE(access_line(d, "raw-bytes").find("\"GET /x\\xe9\\xff\\x22y\""), std::string::npos)
      << access_line(d, "raw-bytes");
  EXPECT_EQ(d.log().find('\xe9'), std::string::npos) << "a raw byte reached the log";
}

TEST_F(HttpLimits, AccessLinesPastTheRateAreCountedInASummary) {
  auto& d = start({.extra_config = "access_lines_per_second = 5\n"});
  raw_client c(d.port());
  for (int i = 0; i < 40; ++i) {
    c.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_EQ(c.response().status, 200U);
  }
  ASSERT_TRUE(eventually([&] { return d.log().find("requests not logged") != std::string::npos; }, 10s)) << d.log();
  const std::string log = d.log();
  std::size_t lines = 0;
  for (auto at = log.find("\"GET /healthz\""); at != std::string::npos; at = log.find("\"GET /healthz\"", at + 1)) {
    ++lines;
  }
  EXPECT_LT(lines, 40U);
  EXPECT_NE(log.find("log.access_lines_per_second = 5"), std::string::npos) << log;
  EXPECT_NE(log.find("2xx"), std::string::npos) << log;
}

TEST_F(HttpLimits, JsonLogsAreOneObjectPerLine) {
  auto& d = start({.extra_config = "format = \"json\"\n"});
  raw_client c(d.port());
  c.send("GET /nowhere/\xe9 HTTP/1.1\r\nHost: x\r\nX-Request-Id: json-line\r\n\r\n");
  EXPECT_EQ(c.response().status, 400U);
  ASSERT_TRUE(eventually([&] { return d.log().find("json-line") != std::string::npos; }, 10s)) << d.log();
  std::istringstream lines(d.log());
  bool seen = false;
  for (std::string line; std::getline(lines, line);) {
    const json j = json::parse(line, nullptr, false);
    ASSERT_TRUE(j.is_object()) << line;
    EXPECT_TRUE(j.contains("time") && j.contains("level") && j.contains("msg")) << line;
    if (j.value("request_id", "") == "json-line") {
      seen = true;
      EXPECT_EQ(j.at("status"), 400);
      EXPECT_EQ(j.at("request"), "GET /nowhere/\\xe9");
      EXPECT_TRUE(j.at("ms").is_number());
    }
  }
  EXPECT_TRUE(seen) << d.log();
}

}  // namespace
}  // namespace borderscan::server
