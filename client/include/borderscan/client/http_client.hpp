#pragma once
// A small HTTP/1.1 client for the daemon's API, over plain TCP or TLS.
//
// One connection per request, closed after the answer: a kiosk sends a few
// requests a minute, and this keeps every failure local to one call. Bodies
// stream both ways: an upload is sent from its file in pieces (the header
// first, with Content-Length, then the bytes), and an answer's body can go to
// a sink piece by piece (a file, stdout, an event-stream parser), so nothing
// holds an image or a large report in memory.
//
// TLS verifies the server's certificate against the system's trust store and
// the --ca-file, and checks that it names the host (SNI is sent for names).
// Timeouts are idle timeouts: a connection that makes no progress for
// connect_timeout (while connecting) or read_timeout (afterwards) is closed.
//
// Every failure is a client_error whose message is one readable line.
// Not thread-safe: one http_client per thread.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/beast/http/verb.hpp>

#include "borderscan/client/error.hpp"
#include "borderscan/client/server_url.hpp"

namespace borderscan::client {

struct client_options {
  std::string server = "http://127.0.0.1:8080";
  std::string token;              // sent as "Authorization: Bearer <token>" when set
  std::filesystem::path ca_file;  // PEM CA certificates trusted besides the system's
  std::chrono::milliseconds connect_timeout = std::chrono::seconds(15);
  std::chrono::milliseconds read_timeout = std::chrono::seconds(60);  // longer than the SSE keep-alive (15 s)
  std::string user_agent = "borderscan";
};

using header_list = std::vector<std::pair<std::string, std::string>>;

struct response {
  unsigned status = 0;
  std::string reason;
  header_list headers;
  std::string body;  // the body, unless a sink took a successful answer's body

  bool ok() const noexcept { return status >= 200 && status < 300; }
  // The first header of that name (case-insensitive), or "".
  std::string header(std::string_view name) const;
};

// Bytes done and the total (0 when unknown).
using progress_fn = std::function<void(std::uint64_t done, std::uint64_t total)>;
// Takes a piece of a body; returning false stops reading (the connection is closed).
using body_sink = std::function<bool(std::string_view piece)>;

class http_client {
 public:
  // Parses the server URL and, for https, loads the trust store and the CA
  // file: throws client_error(kind::usage) when either is unusable.
  explicit http_client(client_options options);
  ~http_client();
  http_client(const http_client&) = delete;
  http_client& operator=(const http_client&) = delete;

  const server_url& server() const noexcept;
  const client_options& options() const noexcept;

  // `target` is the path and query below the server's base path. The answer
  // is returned whatever its status (see expect_success); the body is kept in
  // memory up to 64 MiB.
  response request(boost::beast::http::verb method, std::string_view target, std::string body = {},
                   std::string_view content_type = {}, const header_list& headers = {});

  // Sends `file` as the body (application/octet-stream), reading it in pieces,
  // with `progress` after each. When the server answers before the body is
  // out (a refused token, a full queue), sending stops and that answer is
  // returned.
  response upload(std::string_view target, const std::filesystem::path& file, const header_list& headers,
                  const progress_fn& progress);

  // A request whose successful (2xx) body goes to `sink` piece by piece as it
  // arrives; any other answer's body is kept in the response (up to 64 KiB).
  response fetch(boost::beast::http::verb method, std::string_view target, const header_list& headers,
                 const body_sink& sink, const progress_fn& progress = {});

  // GETs `target` and streams a successful body into `file`: written as
  // "<file>.part" and renamed when complete, so a broken transfer leaves
  // nothing under the name asked for. Any other answer writes no file and is
  // returned with its body. Returns the bytes written in `written`.
  response download(std::string_view target, const header_list& headers, const std::filesystem::path& file,
                    std::uint64_t& written, const progress_fn& progress = {});

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// Returns `r` when it is 2xx; else throws http_failure(...) for it.
const response& expect_success(const response& r);

}  // namespace borderscan::client
