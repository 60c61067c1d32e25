#pragma once
// Clients for the load tests (load_test.cpp): slow connections from chosen
// loopback source addresses (127.0.0.x, bound before connect, so that the
// daemon's per-address cap sees one attacker or many), timed requests of a
// well-behaved client, and latency figures.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "daemon_harness.hpp"

namespace borderscan::server::test_support {

// A group of connections that all misbehave the same way.
struct slow_group {
  std::string name = {};
  std::vector<std::string> sources = {};  // source addresses, used round-robin
  unsigned connections = 0;               // kept open at once (as far as the server lets them)
  std::string opening = {};               // sent whole right after connecting
  std::string trickle = {};               // then one byte of it (cyclically) every `every`
  std::chrono::milliseconds every{1000};
};

// What became of a group's connections.
struct slow_group_figures {
  unsigned opened = 0;
  unsigned connect_failures = 0;
  unsigned cut_unanswered = 0;  // the server closed without a word
  // The server answered, then closed: "<status> <problem type>" -> count.
  std::map<std::string, unsigned> answers;
  unsigned open_now = 0;
  std::uint64_t bytes_trickled = 0;
};

// Runs the groups' connections on one thread: each sends its opening, then a
// byte at a time until the server answers or closes it; while attacking, a
// connection the server ended is opened again half a second later, as a
// persistent attacker would.
class slow_attack {
 public:
  slow_attack(std::uint16_t port, std::vector<slow_group> groups);
  ~slow_attack();
  slow_attack(const slow_attack&) = delete;
  slow_attack& operator=(const slow_attack&) = delete;

  // No new connections from now on; the open ones go on trickling.
  void stop_reconnecting() { reconnect_ = false; }
  // True once every connection has been ended by the server (bounded wait).
  bool wait_all_ended(std::chrono::seconds limit);
  std::vector<slow_group_figures> figures() const;
  unsigned connections_opened() const;

 private:
  struct slow_connection;
  void run();
  void open(std::size_t group, std::size_t index);
  void ended(slow_connection& c, bool answered);

  std::uint16_t port_;
  std::vector<slow_group> groups_;
  std::vector<slow_connection> connections_;
  std::vector<slow_group_figures> figures_;
  mutable std::mutex mutex_;  // figures_
  std::atomic<bool> reconnect_{true};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// One request of a well-behaved client on a fresh connection from 127.0.0.1.
struct timed_result {
  http_result result;
  std::string error;  // connect, write or read failed: why
  double ms = 0;
};
timed_result timed_get(std::uint16_t port, const std::string& target, const std::string& token);

// An image upload as a kiosk sends it: `Expect: 100-continue`, the body only
// once the server said 100, so a refused upload (503 queue-full) costs no body.
timed_result upload_image(std::uint16_t port, const std::string& image, const std::string& token);

// Latency figures of a set of requests, in milliseconds.
struct latency_figures {
  std::size_t count = 0;
  double p50 = 0;
  double p99 = 0;
  double max = 0;
};
latency_figures latency_of(std::vector<double> ms);

// A problem+json answer's type without its urn prefix ("" when none).
std::string problem_type(const http_result& res);

// The seconds BORDERSCAN_LOAD_SECONDS asks for, else `fallback`.
unsigned load_seconds(unsigned fallback);

}  // namespace borderscan::server::test_support
