#pragma once
// What the kiosk client reports when something fails: one line a person at a
// checkpoint can act on. Network failures name the server and the reason in
// words ("cannot connect to 127.0.0.1:9: connection refused"); HTTP failures
// carry the problem's `detail` and the status. Never a Boost source location
// or an error category's internal name: every boost::system::error_code is
// turned into words with describe() where it happens.

#include <stdexcept>
#include <string>
#include <string_view>

#include <boost/system/error_code.hpp>

namespace borderscan::client {

class client_error : public std::runtime_error {
 public:
  enum class kind {
    usage,    // bad arguments or settings (a malformed --server, an unreadable --ca-file)
    network,  // the server could not be reached, or the connection broke or stalled
    http,     // the server answered with a status that is not a success
    local,    // a local file could not be read or written
  };
  client_error(kind k, const std::string& message, unsigned status = 0, std::string problem_type = {})
      : std::runtime_error(message), kind_(k), status_(status), problem_type_(std::move(problem_type)) {}
  kind error_kind() const noexcept { return kind_; }
  // The HTTP status for kind::http, else 0.
  unsigned status() const noexcept { return status_; }
  // The problem's `type` (urn:borderscan:problem:<code>) when the answer was one.
  const std::string& problem_type() const noexcept { return problem_type_; }

 private:
  kind kind_;
  unsigned status_;
  std::string problem_type_;
};

// An error code in words: ec.message() starting lower-case, OpenSSL's reason
// string alone for TLS errors, and plain words for the ways a peer can close.
std::string describe(const boost::system::error_code& ec);

// The error for an answer that is not 2xx: an application/problem+json body
// gives "<detail> (HTTP 401)"; any other body "HTTP 502 Bad Gateway" with its
// first line when it is short text.
client_error http_failure(unsigned status, std::string_view reason, std::string_view content_type,
                          std::string_view body);

}  // namespace borderscan::client
