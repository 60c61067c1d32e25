#include "borderscan/server/router.hpp"

#include "handler_support.hpp"

namespace borderscan::server {
namespace {

// The pattern's segments against the request's decoded ones; a `{name}`
// segment takes any non-empty segment: the first is the id, a second the sub-id.
bool matches(std::string_view pattern, const boost::urls::segments_view& segments, std::string& id, std::string& sub) {
  bool have_id = false;
  auto it = segments.begin();
  std::size_t start = 1;
  while (start <= pattern.size()) {
    const auto slash = pattern.find('/', start);
    const std::string_view part = pattern.substr(start, slash == std::string_view::npos ? pattern.npos : slash - start);
    if (it == segments.end()) {
      return false;
    }
    const std::string segment = *it++;
    if (part.starts_with('{') && part.ends_with('}')) {
      if (segment.empty()) {
        return false;
      }
      (have_id ? sub : id) = segment;
      have_id = true;
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
  constexpr role_mask anyone = 0;
  constexpr role_mask uploaders = mask_of(role::station) | mask_of(role::admin);
  constexpr role_mask admins = mask_of(role::admin);
  constexpr role_mask reviewers = mask_of(role::reviewer) | mask_of(role::admin);
  // method, pattern, where it runs, streamed upload, roles allowed, open with public metrics
  static const std::vector<route_entry> entries = {
      {{verb::get, "/healthz", io_thread, false, anyone}, &router::get_healthz},
      {{verb::get, "/readyz", blocking_pool, false, anyone}, &router::get_readyz},
      {{verb::get, "/metrics", blocking_pool, false, any_role, true}, &router::get_metrics},
      {{verb::post, "/api/v1/scans", blocking_pool, true, uploaders}, &router::post_scan},
      {{verb::get, "/api/v1/scans", blocking_pool, false, any_role}, &router::get_active_scans},
      {{verb::get, "/api/v1/scans/{id}", blocking_pool, false, any_role}, &router::get_scan},
      {{verb::delete_, "/api/v1/scans/{id}", blocking_pool, false, uploaders}, &router::delete_scan},
      {{verb::delete_, "/api/v1/scans/{id}/image", blocking_pool, false, admins}, &router::delete_scan_image},
      {{verb::get, "/api/v1/scans/{id}/report", blocking_pool, false, any_role}, &router::get_scan_report},
      {{verb::get, "/api/v1/scans/{id}/events", blocking_pool, false, any_role}, &router::get_scan_events},
      {{verb::get, "/api/v1/events", blocking_pool, false, any_role}, &router::get_events},
      {{verb::get, "/api/v1/whoami", blocking_pool, false, any_role}, &router::get_whoami},
      {{verb::get, "/api/v1/reports", blocking_pool, false, any_role}, &router::get_reports},
      {{verb::get, "/api/v1/reports/{id}/overview", blocking_pool, false, any_role}, &router::get_report_overview},
      {{verb::get, "/api/v1/reports/{id}/verification", blocking_pool, false, any_role},
       &router::get_report_verification},
      {{verb::get, "/api/v1/reports/{id}/file-types", blocking_pool, false, any_role}, &router::get_file_types},
      {{verb::get, "/api/v1/reports/{id}/files", blocking_pool, false, any_role}, &router::get_report_files},
      {{verb::get, "/api/v1/audit", blocking_pool, false, admins}, &router::get_audit},
      {{verb::delete_, "/api/v1/reports/{id}", blocking_pool, false, admins}, &router::delete_report},
      {{verb::post, "/api/v1/reports/{id}/reviews", blocking_pool, false, reviewers}, &router::post_review},
      {{verb::get, "/api/v1/reports/{id}/reviews", blocking_pool, false, reviewers}, &router::get_reviews},
      {{verb::post, "/api/v1/reports/{id}/findings/{finding}/disposition", blocking_pool, false, reviewers},
       &router::post_disposition},
      {{verb::get, "/api/v1/reports/{id}/dispositions", blocking_pool, false, reviewers}, &router::get_dispositions},
      {{verb::get, "/api/v1/reports/{id}/files/{index}/content", blocking_pool, false, reviewers},
       &router::get_file_content},
      {{verb::get, "/api/v1/files", blocking_pool, false, reviewers}, &router::get_files_by_hash},
      {{verb::get, "/api/v1/signing-key", blocking_pool, false, any_role}, &router::get_signing_key},
      {{verb::get, "/api/v1/rules", blocking_pool, false, any_role}, &router::get_rules},
      {{verb::post, "/api/v1/rules/reload", blocking_pool, false, admins}, &router::post_rules_reload},
      {{verb::post, "/api/v1/tokens", blocking_pool, false, admins}, &router::post_token},
      {{verb::get, "/api/v1/tokens", blocking_pool, false, admins}, &router::get_tokens},
      {{verb::delete_, "/api/v1/tokens/{name}", blocking_pool, false, admins}, &router::delete_token},
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
  std::string id, sub;
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
    std::string id, sub;
    if (!matches(e.info.pattern, segments, id, sub)) {
      continue;
    }
    if (e.info.method == method) {
      m.entry = &e;
      m.id = std::move(id);
      m.sub = std::move(sub);
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

response router::handle(const request& req, const request_context& ctx) {
  try {
    return dispatch(req, ctx);
  } catch (...) {
    response r;
    r.message = problem_from_exception(std::current_exception(), ctx.request_id);
    return r;
  }
}

std::optional<principal> router::admit(const route_info& route, const request_header& head) {
  if (route.roles == 0 || (route.public_with_metrics && settings_.public_metrics)) {
    return std::nullopt;
  }
  const auto token = bearer_token(head[http::field::authorization]);
  const auto who = token ? authenticate(*token, store_.list_tokens()) : std::nullopt;
  if (!who) {
    throw http_error(http::status::unauthorized, "unauthorized",
                     token ? "the bearer token is not valid (unknown or revoked)"
                           : "this route needs an Authorization: Bearer token")
        .with_header(http::field::www_authenticate, "Bearer realm=\"borderscan\"");
  }
  if ((route.roles & mask_of(who->role)) == 0) {
    throw http_error(http::status::forbidden, "forbidden",
                     std::string("the ") + to_string(who->role) + " token '" + who->name + "' may not " +
                         std::string(http::to_string(route.method)) + " " + route.pattern);
  }
  return who;
}

std::optional<response_message> router::console_page(const request& req, std::string_view path) const {
  if (req.method() != http::verb::get || path.starts_with("/api/") || !settings_.web) {
    return std::nullopt;
  }
  return settings_.web->serve(path, req[http::field::if_none_match]);
}

response router::dispatch(const request& req, const request_context& ctx) {
  const match m = find(req.method(), req.target());
  if (!m.valid_target) {
    handlers::bad_request("the request target is not a valid origin-form URL");
  }
  if (m.entry == nullptr) {
    if (auto page = console_page(req, m.url.path()); page) {
      response r;
      r.message = std::move(*page);
      r.route = "console";
      return r;
    }
    if (!m.allow.empty()) {
      throw http_error(http::status::method_not_allowed, "method-not-allowed",
                       std::string(req.method_string()) + " is not allowed here; allowed: " + m.allow)
          .with_header(http::field::allow, m.allow);
    }
    throw http_error(http::status::not_found, "not-found", "no such route: " + std::string(m.url.path()));
  }
  response r;
  try {
    const auto who = admit(m.entry->info, req);
    const route_call call{
        req, m.url, m.id, m.sub, ctx.request_id, who, who ? actor::of(*who, ctx.request_id, ctx.client) : actor{}};
    r = (this->*(m.entry->handle))(call);
  } catch (...) {
    r.message = problem_from_exception(std::current_exception(), ctx.request_id);
  }
  r.route = m.entry->info.pattern;
  return r;
}

}  // namespace borderscan::server
