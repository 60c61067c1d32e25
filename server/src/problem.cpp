#include "borderscan/server/problem.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace borderscan::server {

response_message make_problem(http::status status, std::string_view code, std::string_view detail,
                              std::string_view request_id) {
  nlohmann::json body = {
      {"type", "urn:borderscan:problem:" + std::string(code)},
      {"title", std::string(http::obsolete_reason(status))},
      {"status", static_cast<unsigned>(status)},
      {"detail", std::string(detail)},
  };
  if (!request_id.empty()) {
    body["request_id"] = std::string(request_id);
  }
  response_message res{status, 11};
  res.set(http::field::content_type, "application/problem+json");
  // Details quote the request (a percent-decoded path may be any bytes):
  // invalid UTF-8 is replaced, never thrown out of the error path (fuzz_http
  // found GET /%ee... escaping router::handle and the session).
  res.body() = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return res;
}

response_message problem_from_exception(std::exception_ptr error, std::string_view request_id) {
  try {
    std::rethrow_exception(error);
  } catch (const http_error& e) {
    response_message res = make_problem(e.status(), e.code(), e.what(), request_id);
    for (const auto& [field, value] : e.headers()) {
      res.set(field, value);
    }
    return res;
  } catch (const nlohmann::json::parse_error& e) {
    return make_problem(http::status::bad_request, "malformed-json", "the request body is not valid JSON", request_id);
  } catch (const std::exception& e) {
    spdlog::error("request={} internal error: {}", request_id, e.what());
  } catch (...) {
    spdlog::error("request={} internal error: unknown exception", request_id);
  }
  return make_problem(http::status::internal_server_error, "internal",
                      "the server could not complete the request; see the server log for this request id", request_id);
}

}  // namespace borderscan::server
