// The real daemon with TLS on its listener: a self-signed certificate made at
// test time, a Beast client that verifies it, the same API as plain HTTP, and
// the TLS-specific failure modes (plain HTTP, silent clients, old protocol
// versions, bad certificate or key files).
#include <signal.h>
#include <stdlib.h>

#include <chrono>
#include <optional>
#include <thread>

#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <openssl/ssl.h>

#include "daemon_harness.hpp"
#include "server_test_support.hpp"
#include "test_clients.hpp"

namespace borderscan::server {
namespace {

using namespace test_support;
using nlohmann::json;
namespace fs = std::filesystem;
namespace net = boost::asio;
namespace ssl = net::ssl;
namespace beast = boost::beast;
namespace http = beast::http;
using namespace std::chrono_literals;

std::string fat_image() {
  return read_file(test::fixture_dir() / "fat-simple.img");
}

std::string clean_image() {
  return read_file(test::clean_image());
}

// A client that connects and sends nothing, not even a TLS hello, is closed
// by the server after the header timeout (set to 1 s by the tests).
void expect_silent_connection_cut_off(std::uint16_t port) {
  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  stream.expires_after(30s);
  ASSERT_FALSE(await(ioc, [&](auto h) {
    stream.async_connect(net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), port), std::move(h));
  }));
  const auto began = std::chrono::steady_clock::now();
  char byte = 0;
  const auto ec = await(ioc, [&](auto h) { stream.async_read_some(net::buffer(&byte, 1), std::move(h)); });
  const auto waited = std::chrono::steady_clock::now() - began;
  EXPECT_TRUE(ec == net::error::eof || ec == net::error::connection_reset) << ec.message();
  EXPECT_GE(waited, 500ms) << "closed before the header timeout";
  EXPECT_LT(waited, 20s);
}

class Tls : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    keys_dir_ = std::make_unique<test::scratch_dir>();
    keys_ = make_key_pair(keys_dir_->path(), "server");
  }
  static void TearDownTestSuite() { keys_dir_.reset(); }

  static std::string tls_config(const key_pair& kp) {
    return "tls_certificate = \"" + kp.certificate.string() + "\"\ntls_private_key = \"" + kp.private_key.string() +
           "\"\n";
  }

  daemon& start(daemon_options options = {}) {
    options.http_extra = tls_config(keys_) + options.http_extra;
    daemon_ = std::make_unique<daemon>(scratch_ / "data", options);
    daemon_->start();
    return *daemon_;
  }

  // One request on a fresh verified connection, closed with close_notify.
  http_result call(http::verb method, const std::string& target, const std::string& body = {},
                   const std::map<std::string, std::string>& headers = {}, bool chunked = false) {
    tls_client client(daemon_->port(), keys_.certificate);
    if (!client.open()) {
      return {};
    }
    auto res = client.request(method, target, body, headers, chunked);
    const auto ec = client.shutdown();
    EXPECT_FALSE(ec) << target << ": the server did not answer close_notify: " << ec.message();
    return res;
  }
  http_result get(const std::string& target) { return call(http::verb::get, target); }

  json scan_status(const std::string& id) {
    const auto res = get("/api/v1/scans/" + id);
    EXPECT_EQ(res.status, 200U) << res.body;
    return res.status == 200 ? res.json() : json::object();
  }

  static inline std::unique_ptr<test::scratch_dir> keys_dir_;
  static inline key_pair keys_;
  test::scratch_dir scratch_;
  std::unique_ptr<daemon> daemon_;
};

TEST_F(Tls, ServesHealthzToAVerifyingClientAndKeepsTheConnectionAlive) {
  auto& d = start();
  EXPECT_NE(d.log().find("listening on https://127.0.0.1:"), std::string::npos) << d.log();
  tls_client client(d.port(), keys_.certificate);
  ASSERT_TRUE(client.open());
  for (const char* rid : {"tls-req-1", "tls-req-2"}) {
    const auto res = client.request(http::verb::get, "/healthz", {}, {{"X-Request-Id", rid}});
    EXPECT_EQ(res.status, 200U) << res.body;
    EXPECT_EQ(res.header("x-request-id"), rid);
    EXPECT_NE(res.header("connection"), "close");
  }
  EXPECT_FALSE(client.shutdown());
  EXPECT_NE(d.log().find("request=tls-req-2"), std::string::npos);

  // A client that trusts another certificate refuses this server.
  test::scratch_dir other_dir;
  const auto other = make_key_pair(other_dir.path(), "other");
  tls_client wary(d.port(), other.certificate);
  ASSERT_FALSE(wary.connect());
  EXPECT_TRUE(wary.handshake()) << "verified against the wrong certificate";
  EXPECT_EQ(get("/healthz").status, 200U);
  EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();
}

TEST_F(Tls, UploadsAFixtureAndServesTheReportAndEvents) {
  auto& d = start();
  const std::string image = fat_image();
  const auto submitted = call(http::verb::post, "/api/v1/scans?label=tls", image,
                              {{"Authorization", "Bearer " + d.token("kiosk-tls")},
                               {"Content-Type", "application/octet-stream"},
                               {"X-Image-SHA256", sha256_hex(image)}});
  ASSERT_EQ(submitted.status, 202U) << submitted.body;
  const std::string id = submitted.json().at("id");
  ASSERT_TRUE(eventually([&] { return scan_status(id).value("status", "") == "done"; })) << d.log();
  const auto report_res = get("/api/v1/scans/" + id + "/report");
  ASSERT_EQ(report_res.status, 200U) << report_res.body;
  const json report = report_res.json();
  EXPECT_TRUE(test::validate_report(report));
  EXPECT_EQ(report.at("scan_id"), id);
  EXPECT_EQ(report.at("station"), "kiosk-tls");
  EXPECT_EQ(report.at("image").at("sha256"), sha256_hex(image));
  EXPECT_EQ(report.at("verdict"), "flagged");

  // The chunked event stream works over TLS too.
  const auto events = get("/api/v1/scans/" + id + "/events");
  EXPECT_EQ(events.status, 200U);
  EXPECT_EQ(events.header("content-type"), "text/event-stream");
  const auto last = events.body.rfind("event: ");
  ASSERT_NE(last, std::string::npos) << events.body;
  EXPECT_EQ(events.body.substr(last, 12), "event: done\n") << events.body;
  EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();
}

TEST_F(Tls, RefusalsBeforeTheBodyIsReadReachTheClient) {
  // The lingering close discards the unread body through TLS, so the client
  // reads the answer rather than a reset.
  start({.max_image_bytes = 1 << 20});
  const std::string big = fat_image();  // 2 MiB, over the 1 MiB limit
  const auto declared = call(http::verb::post, "/api/v1/scans", big);
  EXPECT_EQ(declared.status, 413U) << declared.body;
  EXPECT_EQ(declared.header("content-type"), "application/problem+json");
  const auto chunked = call(http::verb::post, "/api/v1/scans", big, {}, true);
  EXPECT_EQ(chunked.status, 413U) << chunked.body;
  const auto bad_digest = call(http::verb::post, "/api/v1/scans", clean_image().substr(0, 4096),
                               {{"X-Image-SHA256", std::string(64, 'f')}});
  EXPECT_EQ(bad_digest.status, 422U) << bad_digest.body;
  EXPECT_EQ(count_files(daemon_->spool_dir()), 0U);
}

TEST_F(Tls, PlainHttpToTheTlsPortGetsNoHttpResponseAndTheDaemonStaysUp) {
  auto& d = start();
  for (int i = 0; i < 3; ++i) {
    net::io_context ioc;
    beast::tcp_stream stream(ioc);
    stream.expires_after(30s);
    ASSERT_FALSE(await(ioc, [&](auto h) {
      stream.async_connect(net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), d.port()), std::move(h));
    }));
    const std::string req = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    await(ioc, [&](auto h) { net::async_write(stream, net::buffer(req), std::move(h)); });
    std::string received;
    beast::error_code ec;
    while (!ec) {
      char chunk[1024];
      std::size_t n = 0;
      ec = await(ioc, [&](auto h) {
        stream.async_read_some(net::buffer(chunk),
                               [&n, h = std::move(h)](beast::error_code e, std::size_t got) mutable {
                                 n = got;
                                 h(e);
                               });
      });
      received.append(chunk, n);
    }
    EXPECT_NE(ec, beast::error::timeout) << "the server kept the connection open";
    EXPECT_EQ(received.find("HTTP/"), std::string::npos) << received;
  }
  EXPECT_EQ(get("/healthz").status, 200U);
  EXPECT_NE(d.log().find("TLS handshake failed"), std::string::npos) << d.log();
  EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();
}

TEST_F(Tls, SilentClientsAreCutOffAfterTheHeaderTimeout) {
  auto& d = start({.http_extra = "header_timeout_seconds = 1\n"});
  // Connects and never starts the handshake.
  expect_silent_connection_cut_off(d.port());
  // Handshakes, then sends no request.
  {
    tls_client client(d.port(), keys_.certificate);
    const auto began = std::chrono::steady_clock::now();
    ASSERT_TRUE(client.open());
    const auto ec = client.read_until_closed(30s);
    const auto waited = std::chrono::steady_clock::now() - began;
    EXPECT_NE(ec, beast::error::timeout) << "the server kept the connection open";
    EXPECT_GE(waited, 500ms) << "closed before the header timeout";
    EXPECT_LT(waited, 20s);
  }
  EXPECT_EQ(get("/healthz").status, 200U);
  EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();
}

TEST_F(Tls, RefusesTls11Clients) {
  // OpenSSL 3 refuses TLS 1.1 at its default security level anyway; the
  // daemon runs with a system configuration that allows it (as some
  // distributions' do), so only its own minimum stands in the way.
  const fs::path lenient = scratch_ / "openssl-lenient.cnf";
  std::ofstream(lenient) << "openssl_conf = default_conf\n[default_conf]\nssl_conf = ssl_sect\n[ssl_sect]\n"
                         << "system_default = system_default_sect\n[system_default_sect]\n"
                         << "MinProtocol = TLSv1\nCipherString = DEFAULT:@SECLEVEL=0\n";
  ::setenv("OPENSSL_CONF", lenient.c_str(), 1);
  auto& d = start();
  ::unsetenv("OPENSSL_CONF");
  // Control: the TLS 1.1 client handshakes with a server that allows TLS 1.1,
  // so its refusal below is the daemon's doing.
  {
    net::io_context server_ioc;
    ssl::context server_ctx(ssl::context::tls_server);
    server_ctx.use_certificate_chain_file(keys_.certificate.string());
    server_ctx.use_private_key_file(keys_.private_key.string(), ssl::context::pem);
    SSL_CTX_set_min_proto_version(server_ctx.native_handle(), TLS1_1_VERSION);
    SSL_CTX_set_security_level(server_ctx.native_handle(), 0);
    net::ip::tcp::acceptor acceptor(server_ioc, {net::ip::make_address("127.0.0.1"), 0});
    std::thread server([&] {
      beast::ssl_stream<beast::tcp_stream> stream(server_ioc, server_ctx);
      beast::get_lowest_layer(stream).expires_after(30s);
      acceptor.async_accept(beast::get_lowest_layer(stream).socket(), [&](beast::error_code ec) {
        if (!ec) {
          stream.async_handshake(ssl::stream_base::server, [](beast::error_code) {});
        }
      });
      server_ioc.run();
    });
    tls_client old_client(acceptor.local_endpoint().port(), keys_.certificate, tls_version::tls_1_1_only);
    const auto connected = old_client.connect();
    const auto control = connected ? connected : old_client.handshake();
    beast::get_lowest_layer(old_client.stream()).close();
    if (connected) {
      server_ioc.stop();  // the accept would wait for ever
    }
    server.join();
    ASSERT_FALSE(connected) << connected.message();
    if (control) {
      GTEST_SKIP() << "this OpenSSL cannot do TLS 1.1 at all: " << control.message();
    }
    EXPECT_EQ(SSL_version(old_client.stream().native_handle()), TLS1_1_VERSION);
  }
  tls_client old_client(d.port(), keys_.certificate, tls_version::tls_1_1_only);
  ASSERT_FALSE(old_client.connect());
  EXPECT_TRUE(old_client.handshake()) << "the daemon accepted TLS 1.1";
  EXPECT_EQ(get("/healthz").status, 200U);
  EXPECT_TRUE(eventually([&] { return d.log().find("TLS handshake failed") != std::string::npos; })) << d.log();
}

TEST_F(Tls, SigtermSendsCloseNotifyToOpenConnectionsAndExitsCleanly) {
  auto& d = start({.workers = 1, .shutdown_grace_seconds = 0, .debug_scan_delay_ms = 60'000});
  // An idle keep-alive connection.
  tls_client idle(d.port(), keys_.certificate);
  ASSERT_TRUE(idle.open());
  EXPECT_EQ(idle.request(http::verb::get, "/healthz").status, 200U);
  // An event stream that stays open (its scan runs for a minute).
  const auto submitted = call(http::verb::post, "/api/v1/scans", clean_image());
  ASSERT_EQ(submitted.status, 202U) << submitted.body;
  const std::string id = submitted.json().at("id");
  tls_client events(d.port(), keys_.certificate);
  ASSERT_TRUE(events.open());
  http::request<http::empty_body> req{http::verb::get, "/api/v1/scans/" + id + "/events", 11};
  req.set(http::field::host, "127.0.0.1");
  req.set(http::field::authorization, "Bearer " + default_bearer_token());
  events.tcp().expires_after(30s);
  ASSERT_FALSE(await(events.ioc(), [&](auto h) { http::async_write(events.stream(), req, std::move(h)); }));
  beast::flat_buffer buffer;
  http::response_parser<http::empty_body> head;
  ASSERT_FALSE(
      await(events.ioc(), [&](auto h) { http::async_read_header(events.stream(), buffer, head, std::move(h)); }));
  EXPECT_EQ(head.get().result_int(), 200U);

  const auto began = std::chrono::steady_clock::now();
  EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();
  EXPECT_LT(std::chrono::steady_clock::now() - began, 30s);
  EXPECT_EQ(idle.read_until_closed(30s), net::error::eof) << "no close_notify on the idle connection";
  EXPECT_EQ(events.read_until_closed(30s), net::error::eof) << "no close_notify on the event stream";
}

// The session code is shared: without TLS the header timeout (counted from
// the accept) still cuts off a silent client.
TEST(TlsOff, PlainSilentClientsAreCutOffAfterTheHeaderTimeout) {
  test::scratch_dir scratch;
  daemon d(scratch / "data", {.http_extra = "header_timeout_seconds = 1\n"});
  d.start();
  expect_silent_connection_cut_off(d.port());
  EXPECT_EQ(http_get(d.port(), "/healthz").status, 200U);
  EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();
}

// Start-up with broken TLS files: exit code 2 and a message naming the file.
TEST(TlsStartup, RefusesMissingOrMismatchedFilesNamingTheFile) {
  test::scratch_dir dir;
  const auto good = make_key_pair(dir.path(), "good");
  const auto other = make_key_pair(dir.path(), "other");
  const fs::path missing = dir / "missing.key";
  const fs::path garbage = dir / "garbage.crt";
  std::ofstream(garbage) << "not a certificate\n";
  const fs::path encrypted = dir / "encrypted.key";
  const auto enc = test::run_command("openssl pkey -aes256 -passout pass:secret -in " +
                                     test::shell_quote(good.private_key.string()) + " -out " +
                                     test::shell_quote(encrypted.string()));
  ASSERT_EQ(enc.exit_code, 0) << enc.err;
  struct case_t {
    std::string what;
    fs::path certificate, key;
    fs::path named;      // the file the message must name
    std::string reason;  // and what it must say
  };
  const std::vector<case_t> cases = {
      {"missing key", good.certificate, missing, missing, "No such file or directory"},
      {"key of another certificate", good.certificate, other.private_key, other.private_key,
       "does not match the certificate " + good.certificate.string()},
      {"missing certificate", dir / "missing.crt", good.private_key, dir / "missing.crt", "No such file or directory"},
      {"certificate that is not PEM", garbage, good.private_key, garbage, "no start line"},
      // Refused at once: no passphrase prompt.
      {"encrypted key", good.certificate, encrypted, encrypted, "an unencrypted PEM key is expected"},
  };
  for (const auto& c : cases) {
    const fs::path config = dir / "c.toml";
    std::ofstream(config) << "[http]\nlisten = \"127.0.0.1:0\"\ntls_certificate = \"" << c.certificate.string()
                          << "\"\ntls_private_key = \"" << c.key.string() << "\"\n[storage]\ndata_dir = \""
                          << (dir / "var").string() << "\"\nmin_free_spool_bytes = 0\n[jobs]\nworkers = 1\n";
    // `timeout`: a daemon that wrongly starts fails the test instead of hanging it.
    const auto r = test::run_command("timeout 60 " + std::string(BORDERSCAND) + " --config " +
                                     test::shell_quote(config.string()) + " < /dev/null");
    EXPECT_EQ(r.exit_code, 2) << c.what << ":\n" << r.err;
    EXPECT_NE(r.err.find("cannot start: TLS"), std::string::npos) << c.what << ":\n" << r.err;
    EXPECT_NE(r.err.find(c.named.string()), std::string::npos) << c.what << ":\n" << r.err;
    EXPECT_NE(r.err.find(c.reason), std::string::npos) << c.what << ":\n" << r.err;
    EXPECT_EQ(r.err.find("listening on"), std::string::npos) << c.what << ":\n" << r.err;
  }
}

}  // namespace
}  // namespace borderscan::server
