#include "cutting_proxy.hpp"

#include <mutex>
#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace borderscan::client::test {

namespace net = boost::asio;
using tcp = net::ip::tcp;
constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

struct cutting_proxy::state {
  net::io_context ioc;
  tcp::acceptor acceptor{ioc};
  std::thread thread;
  std::uint16_t upstream_port = 0;
  std::uint16_t port = 0;
  bool cut_pending = false;  // touched on the proxy's thread only
  bool damage_reports = false;
  mutable std::mutex mutex;
  std::vector<std::string> heads;
  unsigned cuts = 0;
};

namespace {

struct link {
  explicit link(net::io_context& ioc, tcp::socket c) : client(std::move(c)), upstream(ioc) {}
  tcp::socket client;
  tcp::socket upstream;
  bool cut_after_first_event = false;
  bool damage_next_body = false;  // a report was asked for: change its first byte
  unsigned head_end_matched = 0;  // of "\r\n\r\n", across reads
  void close() {
    boost::system::error_code ignored;
    client.close(ignored);
    upstream.close(ignored);
  }
};

net::awaitable<void> requests(cutting_proxy::state* s, std::shared_ptr<link> l) {
  std::string head;
  bool head_done = false;
  char buf[16 * 1024];
  for (;;) {
    auto [ec, n] = co_await l->client.async_read_some(net::buffer(buf), use_tuple);
    if (ec) {
      break;
    }
    if (!head_done) {
      head.append(buf, n);
      if (const auto end = head.find("\r\n\r\n"); end != std::string::npos) {
        head_done = true;
        head.resize(end);
        if (s->cut_pending && head.starts_with("GET ") && head.find("/events") != std::string::npos) {
          s->cut_pending = false;
          l->cut_after_first_event = true;
        }
        if (s->damage_reports && head.starts_with("GET ") && head.find("/report HTTP/1.1") != std::string::npos) {
          l->damage_next_body = true;
        }
        const std::lock_guard lock(s->mutex);
        s->heads.push_back(head);
      }
    }
    auto [wec, w] = co_await net::async_write(l->upstream, net::buffer(buf, n), use_tuple);
    if (wec) {
      break;
    }
  }
  boost::system::error_code ignored;
  l->upstream.shutdown(tcp::socket::shutdown_send, ignored);
}

net::awaitable<void> responses(cutting_proxy::state* s, std::shared_ptr<link> l) {
  std::string held;  // a cut connection's bytes, until the first event is complete
  char buf[16 * 1024];
  for (;;) {
    auto [ec, n] = co_await l->upstream.async_read_some(net::buffer(buf), use_tuple);
    if (ec) {
      break;
    }
    if (l->damage_next_body) {
      // The first byte after the response head: the report's opening brace.
      static constexpr char head_end[] = "\r\n\r\n";
      for (std::size_t i = 0; i < n && l->damage_next_body; ++i) {
        if (l->head_end_matched == 4) {
          buf[i] ^= 0x20;
          l->damage_next_body = false;
          l->head_end_matched = 0;
        } else {
          l->head_end_matched = buf[i] == head_end[l->head_end_matched] ? l->head_end_matched + 1
                                : buf[i] == '\r'                        ? 1
                                                                        : 0;
        }
      }
    }
    if (!l->cut_after_first_event) {
      auto [wec, w] = co_await net::async_write(l->client, net::buffer(buf, n), use_tuple);
      if (wec) {
        break;
      }
      continue;
    }
    held.append(buf, n);
    const auto body = held.find("\r\n\r\n");
    // The first event's chunk ends with the event's blank line and the
    // chunk's CRLF: forward through it, then drop the connection.
    const auto event_end = body == std::string::npos ? std::string::npos : held.find("\n\n\r\n", body + 4);
    if (event_end == std::string::npos) {
      continue;
    }
    co_await net::async_write(l->client, net::buffer(held.data(), event_end + 4), use_tuple);
    {
      const std::lock_guard lock(s->mutex);
      ++s->cuts;
    }
    break;
  }
  l->close();
}

net::awaitable<void> serve(cutting_proxy::state* s, tcp::socket client) {
  auto l = std::make_shared<link>(s->ioc, std::move(client));
  auto [ec] = co_await l->upstream.async_connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), s->upstream_port),
                                                 use_tuple);
  if (ec) {
    l->close();
    co_return;
  }
  net::co_spawn(s->ioc, requests(s, l), net::detached);
  net::co_spawn(s->ioc, responses(s, l), net::detached);
}

net::awaitable<void> accept_loop(cutting_proxy::state* s) {
  for (;;) {
    auto [ec, client] = co_await s->acceptor.async_accept(use_tuple);
    if (ec) {
      co_return;
    }
    net::co_spawn(s->ioc, serve(s, std::move(client)), net::detached);
  }
}

}  // namespace

cutting_proxy::cutting_proxy(std::uint16_t upstream_port, bool cut_first_event_stream, bool damage_reports)
    : state_(std::make_unique<state>()) {
  state_->upstream_port = upstream_port;
  state_->cut_pending = cut_first_event_stream;
  state_->damage_reports = damage_reports;
  const tcp::endpoint local(net::ip::make_address("127.0.0.1"), 0);
  state_->acceptor.open(local.protocol());
  state_->acceptor.set_option(tcp::acceptor::reuse_address(true));
  state_->acceptor.bind(local);
  state_->acceptor.listen();
  state_->port = state_->acceptor.local_endpoint().port();
  // Coroutines hold the state by pointer: it outlives them, as the
  // destructor stops and joins the proxy's thread first.
  net::co_spawn(state_->ioc, accept_loop(state_.get()), net::detached);
  state_->thread = std::thread([s = state_.get()] { s->ioc.run(); });
}

cutting_proxy::~cutting_proxy() {
  state_->ioc.stop();
  state_->thread.join();
}

std::uint16_t cutting_proxy::port() const {
  return state_->port;
}

std::vector<std::string> cutting_proxy::request_heads() const {
  const std::lock_guard lock(state_->mutex);
  return state_->heads;
}

unsigned cutting_proxy::cuts() const {
  const std::lock_guard lock(state_->mutex);
  return state_->cuts;
}

}  // namespace borderscan::client::test
