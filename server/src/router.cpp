#include "borderscan/server/router.hpp"

#include "handler_support.hpp"

namespace borderscan::server {
namespace {

// The pattern's segments against the request's decoded ones; `{id}` takes
// any non-empty segment.
bool matches(std::string_view pattern, const boost::urls::segments_view& segments, std::string& id) {
  auto it = segments.begin();
  std::size_t start = 1;
  while (start <= pattern.size()) {
    const auto slash = pattern.find('/', start);
    const std::string_view part = pattern.substr(start, slash == std::string_view::npos ? pattern.npos : slash - start);
    if (it == segments.end()) {
      return false;
    }
    const std::string segment = *it++;
    if (part == "{id}") {
      if (segment.empty()) {
        return false;
      }
      id = segment;
    } else if (part != segment) {
      return false;
    }
    if (slash == std::string_view::npos) {
      break;
    }
    start = slash + 1;
  }
  return it == segments.end();
}

}  // namespace

const std::vector<router::route_entry>& router::table() {
  using enum runs_on;
  using http::verb;
  static const std::vector<route_entry> entries = {
      {{verb::get, "/healthz", io_thread}, &router::get_healthz},
      {{verb::get, "/readyz"}, &router::get_readyz},
      {{verb::get, "/metrics", io_thread}, &router::get_metrics},
      {{verb::post, "/api/v1/scans", blocking_pool, true}, &router::post_scan},
      {{verb::get, "/api/v1/scans/{id}"}, &router::get_scan},
      {{verb::delete_, "/api/v1/scans/{id}"}, &router::delete_scan},
      {{verb::get, "/api/v1/scans/{id}/report"}, &router::get_scan_report},
      {{verb::get, "/api/v1/scans/{id}/events"}, &router::get_scan_events},
      {{verb::get, "/api/v1/reports"}, &router::get_reports},
      {{verb::get, "/api/v1/reports/{id}/files"}, &router::get_report_files},
      {{verb::get, "/api/v1/audit"}, &router::get_audit},
  };
  return entries;
}

const std::vector<route_info>& router::routes() {
  static const std::vector<route_info> infos = [] {
    std::vector<route_info> out;
    for (const auto& e : table()) {
      out.push_back(e.info);
    }
    return out;
  }();
  return infos;
}

struct router::match {
  bool valid_target = false;
  boost::urls::url_view url;
  const route_entry* entry = nullptr;
  std::string id;
  std::string allow;  // methods of the routes whose pattern matches, when none has this method
};

router::match router::find(http::verb method, std::string_view target) {
  match m;
  const auto parsed = boost::urls::parse_origin_form(target);
  if (!parsed) {
    return m;
  }
  m.valid_target = true;
  m.url = *parsed;
  const auto segments = m.url.segments();
  for (const auto& e : table()) {
    std::string id;
    if (!matches(e.info.pattern, segments, id)) {
      continue;
    }
    if (e.info.method == method) {
      m.entry = &e;
      m.id = std::move(id);
      m.allow.clear();
      return m;
    }
    m.allow += m.allow.empty() ? "" : ", ";
    m.allow += std::string(http::to_string(e.info.method));
  }
  return m;
}

router::router(report_store& store, job_queue& queue, metrics& stats, const rule_holder& rules, const clock& clk,
               id_generator& ids, router_settings settings)
    : store_(store),
      queue_(queue),
      metrics_(stats),
      rules_(rules),
      clock_(clk),
      ids_(ids),
      settings_(std::move(settings)) {}

const route_info* router::route_of(const request_header& head) const {
  const match m = find(head.method(), head.target());
  return m.entry != nullptr ? &m.entry->info : nullptr;
}

response router::handle(const request& req, std::string_view request_id) {
  try {
    return dispatch(req, request_id);
  } catch (...) {
    response r;
    r.message = problem_from_exception(std::current_exception(), request_id);
    return r;
  }
}

response router::dispatch(const request& req, std::string_view request_id) {
  const match m = find(req.method(), req.target());
  if (!m.valid_target) {
    handlers::bad_request("the request target is not a valid origin-form URL");
  }
  if (m.entry == nullptr) {
    if (!m.allow.empty()) {
      throw http_error(http::status::method_not_allowed, "method-not-allowed",
                       std::string(req.method_string()) + " is not allowed here; allowed: " + m.allow)
          .with_header(http::field::allow, m.allow);
    }
    throw http_error(http::status::not_found, "not-found", "no such route: " + std::string(m.url.path()));
  }
  response r;
  try {
    r = (this->*(m.entry->handle))(route_call{req, m.url, m.id, request_id});
  } catch (...) {
    r.message = problem_from_exception(std::current_exception(), request_id);
  }
  r.route = m.entry->info.pattern;
  return r;
}

}  // namespace borderscan::server
