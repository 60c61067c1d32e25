#pragma once
// Test clients of the HTTP server: plain TCP or TLS, with the same members so
// a test can be written once for both, a self-signed key pair for the
// server, and await() to run one asynchronous operation to its end.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <span>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "daemon_harness.hpp"

namespace borderscan::server::test_support {

// Runs the io_context until the operation `start` began has completed. Every
// operation is bounded by the expiry of the client's tcp_stream, so this
// never waits for ever.
template <class Start>
boost::beast::error_code await(boost::asio::io_context& ioc, Start&& start) {
  std::optional<boost::beast::error_code> result;
  start([&result](boost::beast::error_code ec, auto&&...) { result = ec; });
  ioc.restart();
  ioc.run();
  return result.value_or(boost::asio::error::make_error_code(boost::asio::error::operation_aborted));
}

// A self-signed certificate for 127.0.0.1 and its key.
struct key_pair {
  std::filesystem::path certificate;
  std::filesystem::path private_key;
};
key_pair make_key_pair(const std::filesystem::path& dir, const std::string& name);

enum class tls_version { modern, tls_1_1_only };

// One connection to 127.0.0.1:port over `Stream`; the TLS and plain clients
// below add how to open and close it.
template <class Stream>
class basic_client {
 public:
  boost::beast::tcp_stream& tcp() { return boost::beast::get_lowest_layer(stream_); }
  Stream& stream() { return stream_; }
  boost::asio::io_context& ioc() { return ioc_; }

  boost::beast::error_code connect();
  // One request and its whole response on this connection; a failure fails the test.
  http_result request(boost::beast::http::verb method, const std::string& target, const std::string& body = {},
                      const std::map<std::string, std::string>& headers = {}, bool chunked = false);
  // The two halves of request(), for a test that does something in between.
  // Write errors are ignored (the server may answer before reading the body).
  void send(boost::beast::http::verb method, const std::string& target, const std::string& body = {},
            const std::map<std::string, std::string>& headers = {}, bool chunked = false);
  http_result receive(const std::string& what = "the request");
  // Reads a response, whatever happens: the error, and what came before it.
  boost::beast::error_code receive(boost::beast::http::response_parser<boost::beast::http::string_body>& parser);
  // What arrives next, raw (at most out.size() bytes); 0 and ec at the end.
  std::size_t read_some(std::span<char> out, boost::beast::error_code& ec);
  // Reads and drops data until the connection ends: with TLS, eof is a clean
  // close (the server's close_notify), stream_truncated a bare TCP close.
  boost::beast::error_code read_until_closed(std::chrono::seconds limit);

 protected:
  template <class... Args>
  basic_client(std::uint16_t port, Args&&... args) : port_(port), stream_(ioc_, std::forward<Args>(args)...) {}

 private:
  std::uint16_t port_;
  boost::asio::io_context ioc_;
  Stream stream_;
  boost::beast::flat_buffer buffer_;
};

class plain_client : public basic_client<boost::beast::tcp_stream> {
 public:
  static constexpr bool is_tls = false;
  explicit plain_client(std::uint16_t port) : basic_client(port) {}
  // Connects; a failure fails the test.
  bool open();
};

// Holds the client's TLS context, which must exist before the stream.
struct tls_context_holder {
  explicit tls_context_holder(boost::asio::ssl::context c) : ctx(std::move(c)) {}
  boost::asio::ssl::context ctx;
};

// Verifies the server against `ca` (and its address against the
// certificate's subjectAltName).
class tls_client : private tls_context_holder, public basic_client<boost::beast::ssl_stream<boost::beast::tcp_stream>> {
 public:
  static constexpr bool is_tls = true;
  tls_client(std::uint16_t port, const std::filesystem::path& ca, tls_version version = tls_version::modern);

  boost::beast::error_code handshake();
  // Connect and handshake; a failure fails the test.
  bool open();
  // Sends close_notify and waits for the server's.
  boost::beast::error_code shutdown();
};

}  // namespace borderscan::server::test_support
