#pragma once
// The transport: a listener accepting on a strand, one session per
// connection (kept alive by shared_from_this), each calling the request
// handler (the router). With TLS configured every connection is TLS; the same
// session code serves both (a template over the stream type).
// Upload bodies stream to the spool; streamed bodies and SSE responses are
// written piece by piece. I/O runs on `io_threads` threads of its own, which
// never wait for the disk or the store: handlers that may (route_info::where)
// and the start and end of an upload run on the blocking pool, and their
// answers come back to the connection's strand.
// Against slow and greedy clients (docs/operations.md, HTTP limits): a cap
// of connections per client address, a deadline for each request head from
// its first byte, slots past max_connections that answer only /healthz and
// /readyz, and a minimum upload rate with a size-scaled deadline
// (upload_reader.hpp). Request lines go to the rate-limited access_log
// (logging.hpp).

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "borderscan/server/blocking_pool.hpp"
#include "borderscan/server/config.hpp"
#include "borderscan/server/metrics.hpp"
#include "borderscan/server/router.hpp"

namespace borderscan::server {

struct server_state;

class http_server {
 public:
  // `handler` and `pool` must outlive the server; stop() waits for the
  // pool to run what the sessions left on it.
  // `log`: the access log's format and rate (log.format, log.access_lines_per_second).
  http_server(request_handler& handler, metrics& stats, blocking_pool& pool, http_config settings,
              const log_config& log = {});
  ~http_server();
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  // Loads the TLS certificate and key when both are set, then binds, listens
  // and starts the I/O threads. Port 0 picks an ephemeral port; the bound
  // endpoint is returned. Throws std::system_error (bind, listen) or
  // std::runtime_error (TLS files, naming the file and the OpenSSL reason).
  boost::asio::ip::tcp::endpoint start(const std::string& host, std::uint16_t port);
  // No new connections; open ones keep being served (drain).
  void stop_accepting();
  // Closes every connection and joins the I/O threads.
  void stop();

 private:
  void flush_access_log();

  std::shared_ptr<server_state> state_;
  boost::asio::io_context ioc_;
  boost::asio::steady_timer access_flush_;  // after ioc_: destroyed first
  std::vector<std::thread> threads_;
  std::shared_ptr<void> listener_;
  bool stopped_ = false;
};

}  // namespace borderscan::server
