#pragma once
// Errors of the HTTP API as RFC 9457 problem details. Handlers throw
// http_error for expected client errors; problem_from_exception is the one
// place that turns any exception into a response (internals only in the log).

#include <exception>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/beast/http.hpp>

namespace borderscan::server {

namespace http = boost::beast::http;

class http_error : public std::runtime_error {
 public:
  // `code` is a short slug naming the problem type (urn:borderscan:problem:<code>).
  http_error(http::status status, std::string code, const std::string& detail)
      : std::runtime_error(detail), status_(status), code_(std::move(code)) {}
  http::status status() const noexcept { return status_; }
  const std::string& code() const noexcept { return code_; }
  http_error& with_header(http::field f, std::string value) {
    headers_.emplace_back(f, std::move(value));
    return *this;
  }
  const std::vector<std::pair<http::field, std::string>>& headers() const noexcept { return headers_; }

 private:
  http::status status_;
  std::string code_;
  std::vector<std::pair<http::field, std::string>> headers_;
};

using response_message = http::response<http::string_body>;

response_message make_problem(http::status status, std::string_view code, std::string_view detail,
                              std::string_view request_id = {});

// 400/415/422 bad input, 404, 405, 409, 413, 503, 507 from http_error; a JSON
// parse error is 400; anything else is 500 and logged with the request id.
response_message problem_from_exception(std::exception_ptr error, std::string_view request_id);

}  // namespace borderscan::server
