#include "load_client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace borderscan::server::test_support {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr auto reconnect_delay = std::chrono::milliseconds(500);
constexpr std::string_view problem_prefix = "urn:borderscan:problem:";

// A non-blocking TCP connection from `source` to 127.0.0.1:port; -1 on failure.
int connect_from(const std::string& source, std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return -1;
  }
  sockaddr_in local{};
  local.sin_family = AF_INET;
  ::inet_pton(AF_INET, source.c_str(), &local.sin_addr);
  sockaddr_in server{};
  server.sin_family = AF_INET;
  server.sin_port = htons(port);
  ::inet_pton(AF_INET, "127.0.0.1", &server.sin_addr);
  // Blocking connect: on loopback the handshake is done at once (the daemon
  // closes refused connections only after accepting them).
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&local), sizeof local) != 0 ||
      ::connect(fd, reinterpret_cast<const sockaddr*>(&server), sizeof server) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// The problem type named in `text` without its urn prefix ("" when none).
std::string problem_type_in(const std::string& text) {
  const auto at = text.find(problem_prefix);
  if (at == std::string::npos) {
    return {};
  }
  const auto from = at + problem_prefix.size();
  return text.substr(from, text.find('"', from) - from);
}

// "<status> <problem type>" of the first response in `raw` ("<status>" alone
// when it is not a problem).
std::string answer_of(const std::string& raw) {
  const std::string status = raw.size() > 12 ? raw.substr(9, 3) : raw;
  const std::string type = problem_type_in(raw);
  return type.empty() ? status : status + " " + type;
}

}  // namespace

struct slow_attack::slow_connection {
  std::size_t group = 0;
  std::size_t index = 0;  // within the group: picks the source address
  int fd = -1;
  std::size_t next_byte = 0;
  clock_type::time_point next_send{};
  clock_type::time_point reopen_at{};
  std::string received = {};
};

slow_attack::slow_attack(std::uint16_t port, std::vector<slow_group> groups)
    : port_(port), groups_(std::move(groups)), figures_(groups_.size()) {
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    for (std::size_t i = 0; i < groups_[g].connections; ++i) {
      connections_.push_back({.group = g, .index = i});
    }
  }
  for (auto& c : connections_) {
    open(c.group, static_cast<std::size_t>(&c - connections_.data()));
  }
  thread_ = std::thread([this] { run(); });
}

slow_attack::~slow_attack() {
  stop_ = true;
  thread_.join();
  for (auto& c : connections_) {
    if (c.fd >= 0) {
      ::close(c.fd);
    }
  }
}

void slow_attack::open(std::size_t group, std::size_t at) {
  auto& c = connections_[at];
  const auto& g = groups_[group];
  c.fd = connect_from(g.sources[c.index % g.sources.size()], port_);
  c.received.clear();
  c.next_byte = 0;
  std::lock_guard lock(mutex_);
  auto& f = figures_[group];
  if (c.fd < 0) {
    ++f.connect_failures;
    c.reopen_at = clock_type::now() + reconnect_delay;
    return;
  }
  ++f.opened;
  ++f.open_now;
  // The server may have closed a refused connection already: the send then
  // fails and the next poll sees the end.
  (void)::send(c.fd, g.opening.data(), g.opening.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  c.next_send = clock_type::now() + g.every;
}

void slow_attack::ended(slow_connection& c, bool answered) {
  ::close(c.fd);
  c.fd = -1;
  c.reopen_at = clock_type::now() + reconnect_delay;
  std::lock_guard lock(mutex_);
  auto& f = figures_[c.group];
  --f.open_now;
  if (answered) {
    ++f.answers[answer_of(c.received)];
  } else {
    ++f.cut_unanswered;
  }
}

void slow_attack::run() {
  std::vector<pollfd> polled;
  std::vector<std::size_t> polled_at;
  while (!stop_) {
    polled.clear();
    polled_at.clear();
    for (std::size_t i = 0; i < connections_.size(); ++i) {
      if (connections_[i].fd >= 0) {
        polled.push_back({connections_[i].fd, POLLIN, 0});
        polled_at.push_back(i);
      }
    }
    ::poll(polled.data(), polled.size(), 50);
    for (std::size_t k = 0; k < polled.size(); ++k) {
      if (polled[k].revents == 0) {
        continue;
      }
      auto& c = connections_[polled_at[k]];
      char piece[4096];
      const ssize_t n = ::recv(c.fd, piece, sizeof piece, MSG_DONTWAIT);
      if (n > 0) {
        c.received.append(piece, static_cast<std::size_t>(n));
      } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        ended(c, !c.received.empty());
      }
    }
    const auto now = clock_type::now();
    for (auto& c : connections_) {
      const auto& g = groups_[c.group];
      if (c.fd < 0) {
        if (reconnect_ && now >= c.reopen_at) {
          open(c.group, static_cast<std::size_t>(&c - connections_.data()));
        }
        continue;
      }
      if (!c.received.empty() || now < c.next_send) {
        continue;  // answered: waiting for the close that follows
      }
      const char byte = g.trickle[c.next_byte++ % g.trickle.size()];
      if (::send(c.fd, &byte, 1, MSG_NOSIGNAL | MSG_DONTWAIT) == 1) {
        std::lock_guard lock(mutex_);
        ++figures_[c.group].bytes_trickled;
      }
      c.next_send = now + g.every;
    }
  }
}

bool slow_attack::wait_all_ended(std::chrono::seconds limit) {
  return eventually(
      [&] {
        std::lock_guard lock(mutex_);
        return std::all_of(figures_.begin(), figures_.end(), [](const auto& f) { return f.open_now == 0; });
      },
      limit);
}

std::vector<slow_group_figures> slow_attack::figures() const {
  std::lock_guard lock(mutex_);
  return figures_;
}

unsigned slow_attack::connections_opened() const {
  std::lock_guard lock(mutex_);
  unsigned n = 0;
  for (const auto& f : figures_) {
    n += f.opened;
  }
  return n;
}

namespace {

// One exchange on a fresh connection; `exchange` writes the request and reads
// the answer, throwing on socket errors.
template <class Exchange>
timed_result timed(std::uint16_t port, Exchange exchange) {
  timed_result out;
  const auto began = clock_type::now();
  try {
    net::io_context ioc;
    beast::tcp_stream stream(ioc);
    stream.expires_after(std::chrono::seconds(120));
    stream.connect(net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    beast::flat_buffer buffer;
    out.result = exchange(stream, buffer);
  } catch (const std::exception& e) {
    out.error = e.what();
  }
  out.ms = std::chrono::duration<double, std::milli>(clock_type::now() - began).count();
  return out;
}

http_result read_response(beast::tcp_stream& stream, beast::flat_buffer& buffer) {
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 << 20);
  http::read(stream, buffer, parser);
  return to_result(parser.get());
}

}  // namespace

timed_result timed_get(std::uint16_t port, const std::string& target, const std::string& token) {
  return timed(port, [&](beast::tcp_stream& stream, beast::flat_buffer& buffer) {
    http::write(stream, make_request(http::verb::get, target, {}, {{"Authorization", "Bearer " + token}}));
    return read_response(stream, buffer);
  });
}

timed_result upload_image(std::uint16_t port, const std::string& image, const std::string& token) {
  return timed(port, [&](beast::tcp_stream& stream, beast::flat_buffer& buffer) {
    auto req = make_request(http::verb::post, "/api/v1/scans", {},
                            {{"Authorization", "Bearer " + token},
                             {"Content-Type", "application/octet-stream"},
                             {"Expect", "100-continue"}});
    req.content_length(image.size());
    http::request_serializer<http::string_body> head(req);
    http::write_header(stream, head);
    const http_result interim = read_response(stream, buffer);
    if (interim.status != 100) {
      return interim;  // refused before the body
    }
    net::write(stream, net::buffer(image));
    return read_response(stream, buffer);
  });
}

latency_figures latency_of(std::vector<double> ms) {
  latency_figures out;
  out.count = ms.size();
  if (ms.empty()) {
    return out;
  }
  std::sort(ms.begin(), ms.end());
  const auto rank = [&](double q) {
    return ms[static_cast<std::size_t>(std::ceil(q * static_cast<double>(ms.size()))) - 1];
  };
  out.p50 = rank(0.50);
  out.p99 = rank(0.99);
  out.max = ms.back();
  return out;
}

std::string problem_type(const http_result& res) {
  return problem_type_in(res.body);
}

unsigned load_seconds(unsigned fallback) {
  const char* asked = std::getenv("BORDERSCAN_LOAD_SECONDS");
  const long seconds = asked == nullptr ? 0 : std::strtol(asked, nullptr, 10);
  return seconds > 0 ? static_cast<unsigned>(seconds) : fallback;
}

}  // namespace borderscan::server::test_support
