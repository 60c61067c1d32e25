#include "borderscan/client/http_client.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <thread>

#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "borderscan/client/sse.hpp"

namespace borderscan::client {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;

// A server that plays a script per connection (the n-th connection, its
// socket), on its own thread, and records the request heads it read.
class scripted_server {
 public:
  using script = std::function<void(unsigned n, tcp::socket& socket)>;

  explicit scripted_server(script play)
      : play_(std::move(play)), acceptor_(ioc_, {net::ip::make_address("127.0.0.1"), 0}) {
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] {
      for (unsigned n = 0;; ++n) {
        tcp::socket socket(ioc_);
        boost::system::error_code ec;
        acceptor_.accept(socket, ec);
        if (ec || stopping_) {
          return;
        }
        play_(n, socket);
        socket.close(ec);
      }
    });
  }
  ~scripted_server() {
    stopping_ = true;
    // Wake the blocking accept with one last connection.
    net::io_context ioc;
    tcp::socket wake(ioc);
    boost::system::error_code ec;
    wake.connect({net::ip::make_address("127.0.0.1"), port_}, ec);
    thread_.join();
  }
  std::uint16_t port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // Reads one request head and keeps it.
  std::string read_head(tcp::socket& socket) {
    net::streambuf buf;
    boost::system::error_code ec;
    const std::size_t n = net::read_until(socket, buf, "\r\n\r\n", ec);
    std::string head(net::buffers_begin(buf.data()), net::buffers_begin(buf.data()) + static_cast<std::ptrdiff_t>(n));
    const std::lock_guard lock(mutex_);
    heads_.push_back(head);
    return head;
  }
  std::vector<std::string> heads() const {
    const std::lock_guard lock(mutex_);
    return heads_;
  }
  static void send(tcp::socket& socket, const std::string& bytes) {
    boost::system::error_code ec;
    net::write(socket, net::buffer(bytes), ec);
  }

 private:
  script play_;
  net::io_context ioc_;
  tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mutex_;
  std::vector<std::string> heads_;
};

std::string problem_answer(unsigned status, const std::string& reason, const std::string& detail) {
  const std::string body = "{\"status\":" + std::to_string(status) + ",\"detail\":\"" + detail + "\"}";
  return "HTTP/1.1 " + std::to_string(status) + " " + reason +
         "\r\nContent-Type: application/problem+json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
         body;
}

client_options options_for(const scripted_server& server) {
  client_options o;
  o.server = server.url();
  o.token = "t0ken";
  o.read_timeout = 3s;
  return o;
}

TEST(HttpClient, SendsTheTokenAndHostAndReturnsTheAnswer) {
  scripted_server server([&](unsigned, tcp::socket& s) {
    server.read_head(s);
    scripted_server::send(s, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}");
  });
  http_client client(options_for(server));
  const auto res = client.request(boost::beast::http::verb::get, "/api/v1/reports?limit=1");
  EXPECT_EQ(res.status, 200U);
  EXPECT_EQ(res.body, "{}");
  EXPECT_EQ(res.header("content-type"), "application/json");
  const auto head = server.heads().at(0);
  EXPECT_TRUE(head.starts_with("GET /api/v1/reports?limit=1 HTTP/1.1\r\n")) << head;
  EXPECT_NE(head.find("Authorization: Bearer t0ken\r\n"), std::string::npos) << head;
  EXPECT_NE(head.find("Host: 127.0.0.1:" + std::to_string(server.port()) + "\r\n"), std::string::npos) << head;
}

TEST(HttpClient, AServerThatSaysNothingTimesOutInWords) {
  scripted_server server([&](unsigned, tcp::socket& s) {
    server.read_head(s);
    std::this_thread::sleep_for(1500ms);
  });
  auto options = options_for(server);
  options.read_timeout = 300ms;
  http_client client(options);
  try {
    client.request(boost::beast::http::verb::get, "/healthz");
    FAIL() << "no timeout";
  } catch (const client_error& e) {
    EXPECT_EQ(e.error_kind(), client_error::kind::network);
    EXPECT_EQ(std::string(e.what()), "127.0.0.1:" + std::to_string(server.port()) + " did not answer within 300 ms");
  }
}

TEST(HttpClient, AnUploadStopsWhenTheServerRefusesItEarlyAndStopsReading) {
  // The server answers after the head and never reads the body: the client
  // must not wait for its write (the read timeout) to see the answer.
  scripted_server server([&](unsigned, tcp::socket& s) {
    server.read_head(s);
    scripted_server::send(s, problem_answer(413, "Payload Too Large", "the image is too large"));
    std::this_thread::sleep_for(4s);
  });
  char name[] = "/tmp/borderscan-upload-XXXXXX";
  const int fd = ::mkstemp(name);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, 256 << 20), 0);
  ::close(fd);
  http_client client(options_for(server));
  std::uint64_t sent = 0;
  const auto began = std::chrono::steady_clock::now();
  const auto res = client.upload("/api/v1/scans", name, {}, [&](std::uint64_t done, std::uint64_t) { sent = done; });
  const auto took = std::chrono::steady_clock::now() - began;
  ::unlink(name);
  EXPECT_EQ(res.status, 413U);
  EXPECT_LT(sent, 256U << 20) << "the whole image was sent to a server that had refused it";
  EXPECT_LT(took, 2500ms);
  try {
    expect_success(res);
    FAIL();
  } catch (const client_error& e) {
    EXPECT_STREQ(e.what(), "the image is too large (HTTP 413)");
  }
  EXPECT_NE(server.heads().at(0).find("Content-Length: " + std::to_string(256 << 20)), std::string::npos);
}

TEST(FollowEvents, ResumesWithTheLastEventIdAfterTheStreamBreaks) {
  scripted_server server([&](unsigned n, tcp::socket& s) {
    server.read_head(s);
    const std::string head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n";
    if (n == 0) {
      // One event, then half of the next, then the connection dies.
      scripted_server::send(s, head + "id: snap-1\nevent: status\ndata: {\"a\":1}\n\nid: snap-2\nevent: prog");
    } else {
      scripted_server::send(s, head + "id: snap-3\nevent: done\ndata: {\"a\":3}\n\n");
    }
  });
  http_client client(options_for(server));
  std::vector<std::string> seen;
  follow_options options;
  options.first_delay = 10ms;
  unsigned retries = 0;
  options.on_retry = [&](const std::string&, unsigned, std::chrono::milliseconds) { ++retries; };
  follow_events(
      client, "/api/v1/scans/x/events",
      [&](const sse_event& e) {
        seen.push_back(e.type + ":" + e.id);
        return e.type != "done";
      },
      options);
  EXPECT_EQ(seen, (std::vector<std::string>{"status:snap-1", "done:snap-3"}));
  EXPECT_EQ(retries, 1U);
  const auto heads = server.heads();
  ASSERT_EQ(heads.size(), 2U);
  EXPECT_EQ(heads[0].find("Last-Event-ID"), std::string::npos);
  EXPECT_NE(heads[1].find("Last-Event-ID: snap-1\r\n"), std::string::npos)
      << "the half event was not delivered, so its id is not claimed:\n"
      << heads[1];
  EXPECT_NE(heads[1].find("Accept: text/event-stream"), std::string::npos);
}

TEST(FollowEvents, GivesUpAfterTheRetriesWithGrowingWaits) {
  scripted_server server([&](unsigned, tcp::socket& s) {
    server.read_head(s);
    scripted_server::send(s, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 0\r\n\r\n");
  });
  http_client client(options_for(server));
  follow_options options;
  options.max_retries = 3;
  options.first_delay = 10ms;
  options.max_delay = 30ms;
  std::vector<long> waits;
  options.on_retry = [&](const std::string&, unsigned, std::chrono::milliseconds d) { waits.push_back(d.count()); };
  try {
    follow_events(
        client, "/e", [](const sse_event&) { return true; }, options);
    FAIL() << "never gave up";
  } catch (const client_error& e) {
    EXPECT_EQ(e.error_kind(), client_error::kind::network);
    EXPECT_STREQ(e.what(), "the event stream ended early (gave up after 3 reconnections)");
  }
  EXPECT_EQ(waits, (std::vector<long>{10, 20, 30}));
  EXPECT_EQ(server.heads().size(), 4U);
}

TEST(FollowEvents, ARefusalIsNotRetried) {
  scripted_server server([&](unsigned, tcp::socket& s) {
    server.read_head(s);
    scripted_server::send(s, problem_answer(404, "Not Found", "no such scan"));
  });
  http_client client(options_for(server));
  EXPECT_THROW(follow_events(client, "/e", [](const sse_event&) { return true; }), client_error);
  EXPECT_EQ(server.heads().size(), 1U);
}

}  // namespace
}  // namespace borderscan::client
