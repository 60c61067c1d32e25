// The HTTP server and the router in this process, on a loopback port, over
// plain TCP and TLS: the same session code as borderscand, with a few test
// routes in front of the real router. They serve bodies streamed from a file,
// from a generator and from a synthetic source that counts what it produced
// (so a test sees how far the server reads ahead of a slow client), and one
// route that waits on the blocking pool until the test opens a gate.
#include <sys/socket.h>

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <future>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include <boost/url.hpp>

#include "borderscan/server/blocking_pool.hpp"
#include "borderscan/server/body_stream.hpp"
#include "borderscan/server/http_server.hpp"
#include "server_test_support.hpp"
#include "test_clients.hpp"

namespace borderscan::server {
namespace {

using namespace test_support;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace net = boost::asio;
namespace beast = boost::beast;

// Byte i of every synthetic body.
char byte_at(std::uint64_t i) {
  return static_cast<char>((i * 2654435761ULL) >> 13);
}

std::string synthetic_bytes(std::uint64_t from, std::size_t n) {
  std::string out(n, '\0');
  for (std::size_t k = 0; k < n; ++k) {
    out[k] = byte_at(from + k);
  }
  return out;
}

// What the synthetic streams did; shared with the test while the server owns
// the stream.
struct stream_probe {
  std::atomic<std::uint64_t> produced{0};
  std::atomic<int> alive{0};
};

class synthetic_stream final : public body_stream {
 public:
  synthetic_stream(stream_probe& probe, std::uint64_t size, bool announce_size, std::uint64_t fail_at)
      : probe_(probe), size_(size), announce_size_(announce_size), fail_at_(fail_at) {
    ++probe_.alive;
  }
  ~synthetic_stream() override { --probe_.alive; }

  std::optional<std::uint64_t> size() const override {
    return announce_size_ ? std::optional<std::uint64_t>(size_) : std::nullopt;
  }

  std::size_t read(std::span<char> out) override {
    if (pos_ >= fail_at_) {
      throw std::runtime_error("synthetic read error");
    }
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>({out.size(), size_ - pos_, fail_at_ - pos_}));
    for (std::size_t k = 0; k < n; ++k) {
      out[k] = byte_at(pos_ + k);
    }
    pos_ += n;
    probe_.produced += n;
    return n;
  }

 private:
  stream_probe& probe_;
  std::uint64_t size_;
  bool announce_size_;
  std::uint64_t fail_at_;
  std::uint64_t pos_ = 0;
};

// Closed, it holds whoever passes until it is opened.
class gate {
 public:
  void close() {
    std::lock_guard lock(mutex_);
    open_ = false;
  }
  void open() {
    {
      std::lock_guard lock(mutex_);
      open_ = true;
    }
    changed_.notify_all();
  }
  void pass() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return open_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool open_ = true;
};

// The generated body of /test/generated?pieces=N: piece k has k*997 % 70000 + 1 bytes.
std::string generated_piece(std::uint64_t offset, int k) {
  return synthetic_bytes(offset, static_cast<std::size_t>(k) * 997 % 70'000 + 1);
}

std::string generated_body(int pieces) {
  std::string out;
  for (int k = 0; k < pieces; ++k) {
    out += generated_piece(out.size(), k);
  }
  return out;
}

// The real router, and test routes under /test/ in front of it:
//   /test/file                         file_path, as a file_body_stream
//   /test/missing                      a file that does not exist (404 before any head)
//   /test/generated?pieces=N           a chunked_body_stream of N pieces
//   /test/synthetic?size=&known=&fail_at=   a synthetic_stream
//   /test/block                        waits at `blocked`, on the blocking pool
// Finishing an upload waits at `finishing` first.
class test_routes final : public request_handler {
 public:
  explicit test_routes(router& inner) : inner_(inner) {}

  const route_info* route_of(const request_header& head) const override {
    return is_test(head.target()) ? &test_route_ : inner_.route_of(head);
  }

  response handle(const request& req, const request_context& ctx) override {
    if (!is_test(req.target())) {
      return inner_.handle(req, ctx);
    }
    response r;
    try {
      r = test_response(req.target());
    } catch (...) {
      r.message = problem_from_exception(std::current_exception(), ctx.request_id);
    }
    r.route = test_route_.pattern;
    return r;
  }

  std::variant<response, std::unique_ptr<upload>> begin_upload(const request_header& head,
                                                               std::optional<std::uint64_t> content_length,
                                                               const request_context& ctx) override {
    return inner_.begin_upload(head, content_length, ctx);
  }
  response finish_upload(std::unique_ptr<upload> up, const request_context& ctx) override {
    finishing.pass();
    return inner_.finish_upload(std::move(up), ctx);
  }
  response upload_failed(std::unique_ptr<upload> up, beast::error_code ec, const request_context& ctx) override {
    return inner_.upload_failed(std::move(up), ec, ctx);
  }
  std::uint64_t max_image_bytes() const override { return inner_.max_image_bytes(); }

  fs::path file_path;
  stream_probe probe;
  gate blocked;
  gate finishing;

 private:
  static bool is_test(std::string_view target) { return target.rfind("/test/", 0) == 0; }

  response test_response(std::string_view target) {
    const auto url = boost::urls::parse_origin_form(target).value();
    const auto number = [&](std::string_view key, std::uint64_t fallback) {
      const auto it = url.params().find(key);
      return it == url.params().end() ? fallback : std::stoull(std::string((*it).value));
    };
    response r;
    r.message = response_message{http::status::ok, 11};
    r.message.set(http::field::content_type, "application/octet-stream");
    const std::string path = url.path();
    if (path == "/test/file" || path == "/test/missing") {
      try {
        r.stream = std::make_unique<file_body_stream>(path == "/test/file" ? file_path
                                                                           : fs::path(file_path.string() + ".absent"));
      } catch (const std::system_error& e) {
        if (e.code() != std::errc::no_such_file_or_directory) {
          throw;
        }
        throw http_error(http::status::not_found, "not-found", "no such file");
      }
    } else if (path == "/test/generated") {
      r.stream = std::make_unique<chunked_body_stream>(
          [k = 0, pieces = static_cast<int>(number("pieces", 10)), offset = std::uint64_t{0}]() mutable {
            if (k == pieces) {
              return std::string();
            }
            std::string piece = generated_piece(offset, k++);
            offset += piece.size();
            return piece;
          });
    } else if (path == "/test/synthetic") {
      const auto size = number("size", 1 << 20);
      r.stream = std::make_unique<synthetic_stream>(probe, size, number("known", 1) != 0, number("fail_at", size + 1));
    } else if (path == "/test/block") {
      blocked.pass();
      r.message.body() = "released";
    } else {
      throw http_error(http::status::not_found, "not-found", "no such test route");
    }
    return r;
  }

  router& inner_;
  route_info test_route_{http::verb::get, "/test/*", runs_on::blocking_pool};
};

struct server_options {
  unsigned io_threads = 2;
  unsigned pool_threads = 2;
  std::size_t pool_queue = 64;
};

// The whole stack on a loopback port; TLS when `tls` names a key pair.
class in_process_server {
 public:
  in_process_server(const server_options& o, const key_pair* tls)
      : pool_(o.pool_threads, o.pool_queue), routes_(w_.routes), server_(routes_, w_.stats, pool_, settings(o, tls)) {
    port_ = server_.start("127.0.0.1", 0).port();
  }

  std::uint16_t port() const { return port_; }
  test_routes& routes() { return routes_; }
  blocking_pool& pool() { return pool_; }
  wired& parts() { return w_; }
  http_server& server() { return server_; }

 private:
  static http_config settings(const server_options& o, const key_pair* tls) {
    http_config s;
    s.io_threads = o.io_threads;
    if (tls != nullptr) {
      s.tls_certificate = tls->certificate;
      s.tls_private_key = tls->private_key;
    }
    return s;
  }

  wired w_;
  blocking_pool pool_;
  test_routes routes_;
  http_server server_;
  std::uint16_t port_ = 0;
};

template <class Client>
class Streams : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if constexpr (Client::is_tls) {
      keys_dir_ = std::make_unique<test::scratch_dir>();
      keys_ = make_key_pair(keys_dir_->path(), "server");
    }
  }
  static void TearDownTestSuite() { keys_dir_.reset(); }

  in_process_server& start(const server_options& o = {}) {
    server_ = std::make_unique<in_process_server>(o, Client::is_tls ? &keys_ : nullptr);
    return *server_;
  }

  std::unique_ptr<Client> connect() {
    std::unique_ptr<Client> c;
    if constexpr (Client::is_tls) {
      c = std::make_unique<Client>(server_->port(), keys_.certificate);
    } else {
      c = std::make_unique<Client>(server_->port());
    }
    EXPECT_TRUE(c->open());
    return c;
  }

  // The server is healthy: a fresh connection gets /healthz, and every
  // connection but the ones still open in the test has ended.
  void expect_healthy(std::size_t still_open = 0) {
    EXPECT_TRUE(eventually([&] { return server_->parts().stats.connections() == still_open; }, 30s))
        << server_->parts().stats.connections() << " connections open";
    EXPECT_EQ(connect()->request(http::verb::get, "/healthz").status, 200U);
  }

  static inline std::unique_ptr<test::scratch_dir> keys_dir_;
  static inline key_pair keys_;
  test::scratch_dir scratch_;
  std::unique_ptr<in_process_server> server_;
};

using client_types = ::testing::Types<plain_client, tls_client>;
class client_names {
 public:
  template <class T>
  static std::string GetName(int) {
    return T::is_tls ? "Tls" : "Plain";
  }
};
TYPED_TEST_SUITE(Streams, client_types, client_names);

TYPED_TEST(Streams, SendsAFileOfSeveralMiBWithItsLengthThenServesTheNextRequest) {
  auto& s = this->start();
  const std::string data = synthetic_bytes(12345, (6 << 20) + 4321);
  s.routes().file_path = this->scratch_ / "report.json";
  std::ofstream(s.routes().file_path, std::ios::binary) << data;
  auto client = this->connect();
  const auto res = client->request(http::verb::get, "/test/file");
  EXPECT_EQ(res.status, 200U);
  EXPECT_EQ(res.header("content-length"), std::to_string(data.size()));
  EXPECT_EQ(res.header("transfer-encoding"), "");
  EXPECT_FALSE(res.header("x-request-id").empty());
  EXPECT_TRUE(res.body == data) << res.body.size() << " bytes received of " << data.size();
  // Same connection: a file that is missing is a clean 404, then the next request.
  const auto missing = client->request(http::verb::get, "/test/missing");
  EXPECT_EQ(missing.status, 404U) << missing.body;
  EXPECT_EQ(missing.header("content-type"), "application/problem+json");
  EXPECT_EQ(client->request(http::verb::get, "/healthz").status, 200U);
  this->expect_healthy(1);
}

TYPED_TEST(Streams, SendsGeneratedAndUnsizedBodiesChunked) {
  this->start();
  auto client = this->connect();
  const auto generated = client->request(http::verb::get, "/test/generated?pieces=150");
  EXPECT_EQ(generated.status, 200U);
  EXPECT_EQ(generated.header("transfer-encoding"), "chunked");
  EXPECT_EQ(generated.header("content-length"), "");
  EXPECT_TRUE(generated.body == generated_body(150)) << generated.body.size() << " bytes";
  const auto empty = client->request(http::verb::get, "/test/generated?pieces=0");
  EXPECT_EQ(empty.status, 200U);
  EXPECT_EQ(empty.body, "");
  const std::uint64_t size = (3 << 20) + 17;
  const auto unsized = client->request(http::verb::get, "/test/synthetic?known=0&size=" + std::to_string(size));
  EXPECT_EQ(unsized.header("transfer-encoding"), "chunked");
  EXPECT_TRUE(unsized.body == synthetic_bytes(0, size)) << unsized.body.size() << " bytes";
  const auto sized = client->request(http::verb::get, "/test/synthetic?known=1&size=" + std::to_string(size));
  EXPECT_EQ(sized.header("content-length"), std::to_string(size));
  EXPECT_TRUE(sized.body == synthetic_bytes(0, size)) << sized.body.size() << " bytes";
  EXPECT_EQ(client->request(http::verb::get, "/healthz").status, 200U);
  this->expect_healthy(1);
  EXPECT_EQ(this->server_->routes().probe.alive.load(), 0);
}

TYPED_TEST(Streams, AReadErrorMidBodyEndsTheConnectionWithAShortBody) {
  auto& s = this->start();
  for (const char* known : {"1", "0"}) {
    auto client = this->connect();
    client->send(http::verb::get, std::string("/test/synthetic?size=4194304&fail_at=1048576&known=") + known);
    http::response_parser<http::string_body> parser;
    const auto ec = client->receive(parser);
    EXPECT_TRUE(ec) << "a whole response arrived although its body failed (known size: " << known << ")";
    EXPECT_TRUE(parser.is_header_done());
    EXPECT_EQ(parser.get().result_int(), 200U);
    EXPECT_LE(parser.get().body().size(), 1U << 20);
    EXPECT_TRUE(eventually([&] { return s.routes().probe.alive.load() == 0; }, 30s));
  }
  this->expect_healthy();
}

// How far the server may run ahead of a client that does not read: the
// kernel's socket buffers on both ends, one piece, and TLS records.
std::uint64_t max_read_ahead() {
  const auto max_of = [](const char* file) {
    std::ifstream in(file);
    std::uint64_t min = 0, def = 0, max = 0;
    in >> min >> def >> max;
    return max != 0 ? max : std::uint64_t{16 << 20};
  };
  return max_of("/proc/sys/net/ipv4/tcp_rmem") + max_of("/proc/sys/net/ipv4/tcp_wmem") + (1 << 20);
}

TYPED_TEST(Streams, ASlowReaderHoldsTheServerToOnePieceAheadAndMayLeaveMidBody) {
  auto& s = this->start();
  const std::uint64_t size = 1ULL << 30;  // never sent whole: the client leaves early
  auto client = this->connect();
  client->send(http::verb::get, "/test/synthetic?known=1&size=" + std::to_string(size));
  // Read 2 MiB slowly, checking every byte of the body after the head.
  std::string head;
  std::uint64_t body_bytes = 0;
  std::vector<char> buf(32 * 1024);
  client->tcp().expires_after(60s);
  while (body_bytes < (2U << 20)) {
    beast::error_code ec;
    const std::size_t n = client->read_some(buf, ec);
    ASSERT_FALSE(ec) << ec.message();
    std::string_view got(buf.data(), n);
    if (head.find("\r\n\r\n") == std::string::npos) {
      head.append(got);
      const auto end = head.find("\r\n\r\n");
      if (end == std::string::npos) {
        continue;
      }
      got = std::string_view(head).substr(end + 4);
      ASSERT_NE(head.find("Content-Length: " + std::to_string(size)), std::string::npos) << head;
    }
    ASSERT_TRUE(got == synthetic_bytes(body_bytes, got.size())) << "body bytes from " << body_bytes;
    body_bytes += got.size();
    std::this_thread::sleep_for(2ms);
  }
  // The client stops reading: the server fills the socket buffers, then waits.
  std::this_thread::sleep_for(1s);
  const std::uint64_t ahead = s.routes().probe.produced.load() - body_bytes;
  EXPECT_LE(ahead, max_read_ahead()) << "the server read " << ahead << " bytes ahead of a client that stopped";
  EXPECT_LT(s.routes().probe.produced.load(), size / 8);
  // And leaves mid-body: the session ends and drops its stream.
  beast::error_code ignored;
  client->tcp().socket().shutdown(net::ip::tcp::socket::shutdown_both, ignored);
  client->tcp().close();
  client.reset();
  EXPECT_TRUE(eventually([&] { return s.routes().probe.alive.load() == 0; }, 30s));
  this->expect_healthy();
}

TYPED_TEST(Streams, ServerStopEndsABodyBetweenPiecesWithACleanClose) {
  auto& s = this->start();
  auto client = this->connect();
  client->send(http::verb::get, "/test/synthetic?known=0&size=" + std::to_string(1ULL << 30));
  std::vector<char> buf(64 * 1024);
  beast::error_code ec;
  client->tcp().expires_after(60s);
  ASSERT_GT(client->read_some(buf, ec), 0U) << ec.message();
  auto stopped = std::async(std::launch::async, [&] { s.server().stop(); });
  // Keeps reading (slowly) what the server still sends until it closes.
  client->tcp().expires_after(30s);
  do {
    client->read_some(buf, ec);
    std::this_thread::sleep_for(1ms);
  } while (!ec);
  if constexpr (TypeParam::is_tls) {
    EXPECT_EQ(ec, net::error::eof) << "no close_notify after the last whole record: " << ec.message();
  } else {
    EXPECT_TRUE(ec == net::error::eof || ec == net::error::connection_reset) << ec.message();
  }
  EXPECT_EQ(stopped.wait_for(30s), std::future_status::ready);
}

// One I/O thread: a handler that blocks would stop every other connection.
class OffTheIoThread : public ::testing::Test {
 protected:
  in_process_server& start(const server_options& o) {
    server_ = std::make_unique<in_process_server>(o, nullptr);
    return *server_;
  }

  // /healthz on another connection answers while something is blocked.
  void expect_healthz_answers_now() {
    plain_client other(server_->port());
    ASSERT_TRUE(other.open());
    other.tcp().expires_after(10s);
    const auto began = std::chrono::steady_clock::now();
    EXPECT_EQ(other.request(http::verb::get, "/healthz").status, 200U);
    EXPECT_LT(std::chrono::steady_clock::now() - began, 5s);
  }

  // A test that failed half-way must not leave a handler waiting for ever.
  void TearDown() override {
    if (server_) {
      server_->routes().blocked.open();
      server_->routes().finishing.open();
    }
  }

  std::unique_ptr<in_process_server> server_;
};

TEST_F(OffTheIoThread, StoreRoutesRunOnTheBlockingPool) {
  auto& s = start({.io_threads = 1});
  s.routes().blocked.close();
  plain_client blocked(s.port());
  ASSERT_TRUE(blocked.open());
  blocked.send(http::verb::get, "/test/block");
  ASSERT_TRUE(eventually([&] { return s.pool().pending() == 1; }, 30s));
  expect_healthz_answers_now();
  s.routes().blocked.open();
  const auto res = blocked.receive();
  EXPECT_EQ(res.status, 200U);
  EXPECT_EQ(res.body, "released");
}

TEST_F(OffTheIoThread, UploadsAreFinishedOnTheBlockingPool) {
  auto& s = start({.io_threads = 1});
  s.routes().finishing.close();
  plain_client uploader(s.port());
  ASSERT_TRUE(uploader.open());
  const std::string image = synthetic_bytes(0, 3 << 20);
  uploader.send(http::verb::post, "/api/v1/scans", image, {{"X-Station", "k1"}, {"X-Image-SHA256", sha256_hex(image)}});
  ASSERT_TRUE(eventually([&] { return s.pool().pending() == 1; }, 30s));
  expect_healthz_answers_now();
  s.routes().finishing.open();
  const auto res = uploader.receive();
  EXPECT_EQ(res.status, 202U) << res.body;
  EXPECT_EQ(res.json().at("image_sha256"), sha256_hex(image));
  EXPECT_EQ(s.parts().queue.queued(), 1U);
}

TEST_F(OffTheIoThread, AFullPoolAnswersBusyAtOnce) {
  auto& s = start({.pool_threads = 1, .pool_queue = 1});
  s.routes().blocked.close();
  plain_client first(s.port());
  ASSERT_TRUE(first.open());
  first.send(http::verb::get, "/test/block");
  ASSERT_TRUE(eventually([&] { return s.pool().pending() == 1; }, 30s));
  plain_client second(s.port());
  ASSERT_TRUE(second.open());
  const auto busy = second.request(http::verb::get, "/api/v1/reports");
  EXPECT_EQ(busy.status, 503U) << busy.body;
  EXPECT_EQ(busy.header("retry-after"), "1");
  EXPECT_EQ(busy.json().at("type"), "urn:borderscan:problem:busy");
  EXPECT_EQ(second.request(http::verb::get, "/healthz").status, 200U);  // runs on the I/O thread
  plain_client uploader(s.port());
  ASSERT_TRUE(uploader.open());
  const auto refused = uploader.request(http::verb::post, "/api/v1/scans", "image", {{"X-Station", "k1"}});
  EXPECT_EQ(refused.status, 503U) << refused.body;
  EXPECT_EQ(refused.header("connection"), "close");  // its body was not read
  EXPECT_EQ(count_files(s.parts().spool), 0U);
  s.routes().blocked.open();
  EXPECT_EQ(first.receive().status, 200U);
  ASSERT_TRUE(eventually([&] { return s.pool().pending() == 0; }, 30s));
  EXPECT_EQ(second.request(http::verb::get, "/api/v1/reports").status, 200U);
}

}  // namespace
}  // namespace borderscan::server
