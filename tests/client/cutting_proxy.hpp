#pragma once
// A TCP proxy on a loopback port in front of the daemon, for the client
// tests: it records the head of every request it forwards, and can cut the
// first event-stream connection right after its first event, the way a
// flaky checkpoint network drops a long-lived connection, or change one byte
// of every report it forwards, the way a bad link or a meddler would.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace borderscan::client::test {

class cutting_proxy {
 public:
  cutting_proxy(std::uint16_t upstream_port, bool cut_first_event_stream, bool damage_reports = false);
  ~cutting_proxy();
  cutting_proxy(const cutting_proxy&) = delete;
  cutting_proxy& operator=(const cutting_proxy&) = delete;

  std::uint16_t port() const;
  // Request heads (request line and header fields) in the order they came.
  std::vector<std::string> request_heads() const;
  // Connections cut after their first event.
  unsigned cuts() const;

  struct state;

 private:
  std::unique_ptr<state> state_;
};

}  // namespace borderscan::client::test
