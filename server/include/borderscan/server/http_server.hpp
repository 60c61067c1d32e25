#pragma once
// The transport: a listener accepting on a strand, one session per
// connection (kept alive by shared_from_this), each calling the router.
// With TLS configured every connection is TLS; the same session code serves
// both (a template over the stream type).
// Upload bodies stream to the spool; SSE responses are chunked. I/O runs on
// `io_threads` threads of its own; nothing here blocks on a scan.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "borderscan/server/metrics.hpp"
#include "borderscan/server/router.hpp"

namespace borderscan::server {

struct http_settings {
  unsigned io_threads = 2;
  unsigned max_connections = 256;
  std::uint32_t header_limit_bytes = 16 * 1024;
  std::uint64_t body_limit_bytes = 1 << 20;
  std::chrono::milliseconds header_timeout{30'000};
  std::chrono::milliseconds read_timeout{60'000};
  std::chrono::milliseconds idle_timeout{60'000};
  std::chrono::milliseconds event_interval{250};
  // Both set: every connection is TLS (PEM files, read by start()). Both empty: plain HTTP.
  std::filesystem::path tls_certificate;
  std::filesystem::path tls_private_key;
};

struct server_state;

class http_server {
 public:
  http_server(router& r, metrics& stats, http_settings settings);
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
  std::shared_ptr<server_state> state_;
  boost::asio::io_context ioc_;
  std::vector<std::thread> threads_;
  std::shared_ptr<void> listener_;
  bool stopped_ = false;
};

}  // namespace borderscan::server
