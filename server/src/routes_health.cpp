// Health and metrics: /healthz, /readyz, /metrics.
#include "handler_support.hpp"

namespace borderscan::server {

using namespace handlers;

response router::get_healthz(const route_call& c) {
  query(c.url, {});
  return json_response(http::status::ok, {{"status", "ok"}});
}

response router::get_readyz(const route_call& c) {
  query(c.url, {});
  bool store_ok = store_.writable();
  std::optional<std::string> store_problem;
  if (settings_.health != nullptr && settings_.health->problem()) {
    // Probed only while failing: ready again as soon as the data folder takes writes.
    if (!settings_.health->probe(settings_.data_dir)) {
      store_ok = false;
      store_problem = settings_.health->problem();
    }
  }
  const bool rules_ok = rules_.current() != nullptr;
  std::error_code ec;
  const bool spool_ok = std::filesystem::is_directory(settings_.spool_dir, ec) &&
                        free_disk_bytes(settings_.spool_dir) >= settings_.min_free_spool_bytes;
  const json checks = {{"store", store_ok}, {"rules", rules_ok}, {"spool", spool_ok}};
  if (store_ok && rules_ok && spool_ok) {
    return json_response(http::status::ok, {{"status", "ready"}, {"checks", checks}});
  }
  std::string detail = "not ready: " + checks.dump();
  if (store_problem) {
    detail += "; reports cannot be stored: " + *store_problem;
  }
  response r;
  r.message = make_problem(http::status::service_unavailable, "not-ready", detail, c.request_id);
  return r;
}

response router::get_metrics(const route_call& c) {
  query(c.url, {});
  response r;
  r.message = response_message{http::status::ok, 11};
  r.message.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
  r.message.body() = metrics_.render({queue_.queued(), queue_.running(), metrics_.connections()});
  return r;
}

}  // namespace borderscan::server
