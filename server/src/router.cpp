#include "borderscan/server/router.hpp"

#include <charconv>
#include <fstream>
#include <map>
#include <set>

#include <boost/url.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace borderscan::server {
namespace {

using nlohmann::json;

constexpr std::string_view upload_route = "/api/v1/scans";

const std::set<std::string, std::less<>> verdicts = {"clean", "flagged", "incomplete", "error"};
const std::set<std::string, std::less<>> review_states = {"unreviewed", "cleared", "confirmed", "escalated"};
const std::set<std::string, std::less<>> audit_events = {"scan_submitted", "scan_done", "scan_failed", "image_kept",
                                                         "image_deleted"};

[[noreturn]] void bad_request(const std::string& detail) {
  throw http_error(http::status::bad_request, "bad-request", detail);
}

[[noreturn]] void not_found(std::string_view what) {
  throw http_error(http::status::not_found, "not-found", "no " + std::string(what) + " with this id");
}

response json_response(http::status status, const json& body, std::string route) {
  response r;
  r.message = response_message{status, 11};
  r.message.set(http::field::content_type, "application/json");
  r.message.body() = body.dump();
  r.route = std::move(route);
  return r;
}

json time_or_null(const std::optional<std::int64_t>& ms) {
  return ms ? json(format_time(*ms)) : json(nullptr);
}

json scan_json(const scan_record& s, const std::optional<scanner::scan_progress>& live) {
  json progress = {{"files_done", 0}, {"files_found", 0}, {"bytes_done", 0}, {"bytes_total", 0}};
  if (live) {
    progress = {{"files_done", live->files_done},
                {"files_found", live->files_found},
                {"bytes_done", live->bytes_done},
                {"bytes_total", live->bytes_total}};
  } else if (s.status == scan_status::done) {
    progress = {{"files_done", s.files},
                {"files_found", s.files},
                {"bytes_done", s.bytes_scanned},
                {"bytes_total", s.bytes_scanned}};
  }
  json j = {
      {"id", s.id},
      {"status", to_string(s.status)},
      {"station", s.station},
      {"label", s.label},
      {"case_ref", s.case_ref},
      {"filename", s.filename},
      {"image_sha256", s.image_sha256},
      {"size", s.image_size},
      {"attempts", s.attempts},
      {"progress", progress},
      {"verdict", s.verdict ? json(*s.verdict) : json(nullptr)},
      {"score", s.score ? json(*s.score) : json(nullptr)},
      {"ruleset_digest", s.ruleset_digest.empty() ? json(nullptr) : json(s.ruleset_digest)},
      {"submitted_at", format_time(s.submitted_at)},
      {"started_at", time_or_null(s.started_at)},
      {"finished_at", time_or_null(s.finished_at)},
      {"error", s.error.empty() ? json(nullptr) : json(s.error)},
      {"image_kept_until", time_or_null(s.image_kept_until)},
  };
  return j;
}

json summary_json(const scan_record& s) {
  return {
      {"id", s.id},
      {"station", s.station},
      {"label", s.label},
      {"case_ref", s.case_ref},
      {"filename", s.filename},
      {"image_sha256", s.image_sha256},
      {"size", s.image_size},
      {"verdict", s.verdict ? json(*s.verdict) : json(nullptr)},
      {"score", s.score ? json(*s.score) : json(nullptr)},
      {"review_state", s.review_state},
      {"files", s.files},
      {"flagged_files", s.flagged_files},
      {"ruleset_digest", s.ruleset_digest},
      {"submitted_at", format_time(s.submitted_at)},
      {"finished_at", time_or_null(s.finished_at)},
      {"links", {{"report", "/api/v1/scans/" + s.id + "/report"}, {"files", "/api/v1/reports/" + s.id + "/files"}}},
  };
}

// Query parameters, each at most once, only the names a route knows.
class query {
 public:
  query(const boost::urls::url_view& url, std::initializer_list<std::string_view> allowed) {
    for (const auto& p : url.params()) {
      if (std::find(allowed.begin(), allowed.end(), p.key) == allowed.end()) {
        std::string names;
        for (auto a : allowed) {
          names += names.empty() ? "" : ", ";
          names += a;
        }
        bad_request("unknown query parameter '" + p.key + "'" +
                    (names.empty() ? "; this route takes none" : "; allowed: " + names));
      }
      if (!values_.emplace(p.key, p.value).second) {
        bad_request("query parameter '" + p.key + "' given more than once");
      }
    }
  }

  std::optional<std::string> text(std::string_view key, std::size_t max_len = 256) const {
    const auto it = values_.find(key);
    if (it == values_.end()) {
      return std::nullopt;
    }
    if (it->second.size() > max_len) {
      bad_request("query parameter '" + std::string(key) + "' is longer than " + std::to_string(max_len));
    }
    for (unsigned char c : it->second) {
      if (c < 0x20 || c == 0x7F) {
        bad_request("query parameter '" + std::string(key) + "' contains control characters");
      }
    }
    return it->second;
  }

  std::optional<std::string> one_of(std::string_view key, const std::set<std::string, std::less<>>& allowed) const {
    auto v = text(key);
    if (v && allowed.count(*v) == 0) {
      std::string names;
      for (const auto& a : allowed) {
        names += names.empty() ? "" : ", ";
        names += a;
      }
      bad_request("query parameter '" + std::string(key) + "' must be one of " + names);
    }
    return v;
  }

  std::optional<bool> boolean(std::string_view key) const {
    auto v = text(key);
    if (!v) {
      return std::nullopt;
    }
    if (*v == "true" || *v == "1") {
      return true;
    }
    if (*v == "false" || *v == "0") {
      return false;
    }
    bad_request("query parameter '" + std::string(key) + "' must be true or false");
  }

  std::optional<std::int64_t> integer(std::string_view key, std::int64_t min, std::int64_t max) const {
    auto v = text(key);
    if (!v) {
      return std::nullopt;
    }
    std::int64_t n = 0;
    const auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
    if (ec != std::errc{} || end != v->data() + v->size() || n < min || n > max) {
      bad_request("query parameter '" + std::string(key) + "' must be an integer from " + std::to_string(min) + " to " +
                  std::to_string(max));
    }
    return n;
  }

  std::optional<std::int64_t> time(std::string_view key) const {
    auto v = text(key);
    if (!v) {
      return std::nullopt;
    }
    std::int64_t ms = 0;
    if (!parse_time(*v, ms)) {
      bad_request("query parameter '" + std::string(key) +
                  "' must be an RFC 3339 UTC time (2024-05-01T10:00:00Z) or a date (2024-05-01)");
    }
    return ms;
  }

  // Cursors are opaque to clients: "c" followed by a position.
  std::optional<std::int64_t> cursor() const {
    auto v = text("cursor", 32);
    if (!v) {
      return std::nullopt;
    }
    std::int64_t n = -1;
    if (v->size() >= 2 && (*v)[0] == 'c') {
      const auto [end, ec] = std::from_chars(v->data() + 1, v->data() + v->size(), n);
      if (ec != std::errc{} || end != v->data() + v->size()) {
        n = -1;
      }
    }
    if (n < 0) {
      bad_request("query parameter 'cursor' is not a cursor this server returned");
    }
    return n;
  }

 private:
  std::map<std::string, std::string, std::less<>> values_;
};

json cursor_json(const std::optional<std::int64_t>& position) {
  return position ? json("c" + std::to_string(*position)) : json(nullptr);
}

bool valid_station(std::string_view s) {
  if (s.size() > 64) {
    return false;
  }
  for (char c : s) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
    if (!ok) {
      return false;
    }
  }
  return true;
}

struct matched_route {
  const route_info* route = nullptr;
  std::string id;
};

// Splits the path into decoded segments; a malformed target is a 400.
std::vector<std::string> path_segments(const boost::urls::url_view& url) {
  std::vector<std::string> out;
  for (const auto& seg : url.segments()) {
    out.push_back(seg);
  }
  return out;
}

bool matches(const std::string& pattern, const std::vector<std::string>& segments, std::string& id) {
  std::vector<std::string> parts;
  std::size_t start = 1;
  while (start <= pattern.size()) {
    const auto slash = pattern.find('/', start);
    parts.push_back(pattern.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
    if (slash == std::string::npos) {
      break;
    }
    start = slash + 1;
  }
  if (parts.size() != segments.size()) {
    return false;
  }
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (parts[i] == "{id}") {
      if (segments[i].empty()) {
        return false;
      }
      id = segments[i];
    } else if (parts[i] != segments[i]) {
      return false;
    }
  }
  return true;
}

// SSE: one event per visible change, then `done` or `failed` and the end.
class scan_event_source final : public event_source {
 public:
  scan_event_source(report_store& store, job_queue& queue, std::string id)
      : store_(store), queue_(queue), id_(std::move(id)) {}

  std::string poll(bool& done) override {
    done = false;
    const auto scan = store_.find_scan(id_);
    if (!scan) {
      done = true;
      return "event: failed\ndata: {\"error\":\"scan no longer exists\"}\n\n";
    }
    const std::string data = scan_json(*scan, queue_.progress(id_)).dump();
    std::string name;
    if (scan->status == scan_status::done || scan->status == scan_status::failed) {
      name = to_string(scan->status);
      done = true;
    } else if (data == last_) {
      return {};
    } else {
      name = last_status_ != scan->status ? "status" : "progress";
    }
    last_ = data;
    last_status_ = scan->status;
    return "event: " + name + "\ndata: " + data + "\n\n";
  }

 private:
  report_store& store_;
  job_queue& queue_;
  std::string id_;
  std::string last_;
  std::optional<scan_status> last_status_;
};

}  // namespace

const std::vector<route_info>& router::routes() {
  static const std::vector<route_info> table = {
      {http::verb::get, "/healthz"},
      {http::verb::get, "/readyz"},
      {http::verb::get, "/metrics"},
      {http::verb::post, "/api/v1/scans"},
      {http::verb::get, "/api/v1/scans/{id}"},
      {http::verb::delete_, "/api/v1/scans/{id}"},
      {http::verb::get, "/api/v1/scans/{id}/report"},
      {http::verb::get, "/api/v1/scans/{id}/events"},
      {http::verb::get, "/api/v1/reports"},
      {http::verb::get, "/api/v1/reports/{id}/files"},
      {http::verb::get, "/api/v1/audit"},
  };
  return table;
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

bool router::is_upload(const request_header& head) const {
  if (head.method() != http::verb::post) {
    return false;
  }
  const auto url = boost::urls::parse_origin_form(head.target());
  return url && url->path() == upload_route;
}

response router::handle(const request& req, std::string_view request_id) {
  try {
    if (is_upload(req)) {
      // Whole body in memory: the path router tests take. The daemon streams.
      auto begun = begin_upload(req.base(), req.body().size(), request_id);
      if (auto* r = std::get_if<response>(&begun)) {
        return std::move(*r);
      }
      auto up = std::get<std::unique_ptr<upload>>(std::move(begun));
      boost::beast::error_code ec;
      up->file().write(req.body().data(), req.body().size(), ec);
      if (ec) {
        return upload_failed(std::move(up), ec, request_id);
      }
      return finish_upload(std::move(up), request_id);
    }
    return dispatch(req, request_id);
  } catch (...) {
    response r;
    r.message = problem_from_exception(std::current_exception(), request_id);
    return r;
  }
}

response router::dispatch(const request& req, std::string_view request_id) {
  const auto parsed = boost::urls::parse_origin_form(req.target());
  if (!parsed) {
    bad_request("the request target is not a valid origin-form URL");
  }
  const boost::urls::url_view url = *parsed;
  const std::vector<std::string> segments = path_segments(url);

  matched_route found;
  std::string allow;
  for (const auto& route : routes()) {
    std::string id;
    if (!matches(route.pattern, segments, id)) {
      continue;
    }
    if (route.method == req.method()) {
      found = {&route, id};
      break;
    }
    allow += allow.empty() ? "" : ", ";
    allow += std::string(http::to_string(route.method));
  }
  if (found.route == nullptr) {
    if (!allow.empty()) {
      response r;
      r.message = problem_from_exception(
          std::make_exception_ptr(
              http_error(http::status::method_not_allowed, "method-not-allowed",
                         std::string(req.method_string()) + " is not allowed here; allowed: " + allow)
                  .with_header(http::field::allow, allow)),
          request_id);
      return r;
    }
    throw http_error(http::status::not_found, "not-found", "no such route: " + std::string(url.path()));
  }

  const std::string& pattern = found.route->pattern;
  const auto with_route = [&](response r) {
    r.route = pattern;
    return r;
  };
  try {
    if (pattern == "/healthz") {
      query(url, {});
      return json_response(http::status::ok, {{"status", "ok"}}, pattern);
    }
    if (pattern == "/readyz") {
      query(url, {});
      const bool store_ok = store_.writable();
      const bool rules_ok = rules_.current() != nullptr;
      std::error_code ec;
      const bool spool_ok = std::filesystem::is_directory(settings_.spool_dir, ec) &&
                            free_disk_bytes(settings_.spool_dir) >= settings_.min_free_spool_bytes;
      const json checks = {{"store", store_ok}, {"rules", rules_ok}, {"spool", spool_ok}};
      if (store_ok && rules_ok && spool_ok) {
        return json_response(http::status::ok, {{"status", "ready"}, {"checks", checks}}, pattern);
      }
      response r;
      r.message =
          make_problem(http::status::service_unavailable, "not-ready", "not ready: " + checks.dump(), request_id);
      return with_route(std::move(r));
    }
    if (pattern == "/metrics") {
      query(url, {});
      response r;
      r.message = response_message{http::status::ok, 11};
      r.message.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
      r.message.body() = metrics_.render({queue_.queued(), queue_.running(), metrics_.connections()});
      return with_route(std::move(r));
    }

    if (pattern == "/api/v1/reports") {
      query q(url, {"verdict", "review", "station", "since", "until", "limit", "cursor"});
      report_filter f;
      f.verdict = q.one_of("verdict", verdicts);
      f.review = q.one_of("review", review_states);
      f.station = q.text("station", 64);
      f.since = q.time("since");
      f.until = q.time("until");
      f.limit = static_cast<unsigned>(q.integer("limit", 1, 500).value_or(50));
      f.before_seq = q.cursor();
      const report_page page = store_.list_reports(f);
      json items = json::array();
      for (const auto& s : page.items) {
        items.push_back(summary_json(s));
      }
      return json_response(http::status::ok, {{"items", items}, {"next_cursor", cursor_json(page.next_seq)}}, pattern);
    }

    if (pattern == "/api/v1/audit") {
      query q(url, {"scan", "event", "since", "until", "limit", "cursor"});
      audit_filter f;
      f.scan_id = q.text("scan", 64);
      if (f.scan_id && !is_valid_scan_id(*f.scan_id)) {
        bad_request("query parameter 'scan' is not a scan id");
      }
      f.event = q.one_of("event", audit_events);
      f.since = q.time("since");
      f.until = q.time("until");
      f.limit = static_cast<unsigned>(q.integer("limit", 1, 1000).value_or(100));
      f.before_seq = q.cursor();
      const audit_page page = store_.list_audit(f);
      json items = json::array();
      for (const auto& e : page.items) {
        items.push_back({{"seq", e.seq},
                         {"at", format_time(e.at)},
                         {"event", e.event},
                         {"scan_id", e.scan_id},
                         {"detail", e.detail}});
      }
      return json_response(http::status::ok, {{"items", items}, {"next_cursor", cursor_json(page.next_seq)}}, pattern);
    }

    // Every remaining route names a scan.
    if (!is_valid_scan_id(found.id)) {
      not_found("scan");
    }
    const std::string& id = found.id;

    if (pattern == "/api/v1/reports/{id}/files") {
      query q(url, {"flagged", "deleted", "mime", "limit", "cursor"});
      file_filter f;
      f.flagged = q.boolean("flagged");
      f.deleted = q.boolean("deleted");
      f.mime = q.text("mime", 256);
      f.limit = static_cast<unsigned>(q.integer("limit", 1, 1000).value_or(100));
      f.after_index = q.cursor();
      const auto page = store_.list_files(id, f);
      if (!page) {
        if (store_.find_scan(id)) {
          throw http_error(http::status::conflict, "not-done", "the scan has no report yet");
        }
        not_found("report");
      }
      // The rows are stored as JSON text: spliced in, not parsed again.
      std::string body = "{\"items\":[";
      for (std::size_t i = 0; i < page->items.size(); ++i) {
        body += (i == 0 ? "" : ",") + page->items[i];
      }
      body += "],\"next_cursor\":" + cursor_json(page->next_index).dump() + "}";
      response r;
      r.message = response_message{http::status::ok, 11};
      r.message.set(http::field::content_type, "application/json");
      r.message.body() = std::move(body);
      return with_route(std::move(r));
    }

    query(url, {});
    const auto scan = store_.find_scan(id);
    if (!scan) {
      not_found("scan");
    }
    if (pattern == "/api/v1/scans/{id}" && req.method() == http::verb::get) {
      return json_response(http::status::ok, scan_json(*scan, queue_.progress(id)), pattern);
    }
    if (pattern == "/api/v1/scans/{id}") {  // DELETE
      switch (queue_.cancel(id)) {
        case cancel_result::cancelled:
          spdlog::info("request={} job={} state=failed reason=cancelled", request_id, id);
          metrics_.on_scan_failed();
          {
            std::error_code ec;
            std::filesystem::remove(scan->spool_path, ec);
          }
          return json_response(http::status::ok, scan_json(*store_.find_scan(id), std::nullopt), pattern);
        case cancel_result::stopping: {
          json j = scan_json(*scan, queue_.progress(id));
          j["cancel_requested"] = true;
          spdlog::info("request={} job={} cancel requested", request_id, id);
          return json_response(http::status::accepted, j, pattern);
        }
        case cancel_result::not_active:
          break;
      }
      throw http_error(
          http::status::conflict, "not-active",
          std::string("the scan is ") + to_string(store_.find_scan(id)->status) + " and can no longer be cancelled");
    }
    if (pattern == "/api/v1/scans/{id}/report") {
      if (scan->status != scan_status::done) {
        throw http_error(http::status::conflict, "not-done",
                         std::string("the scan is ") + to_string(scan->status) +
                             (scan->status == scan_status::failed ? " (" + scan->error + ") and has no report"
                                                                  : "; the report is not ready yet"));
      }
      const auto stored = store_.find_report(id);
      if (!stored) {
        throw std::runtime_error("scan " + id + " is done but has no stored report");
      }
      std::ifstream in(stored->path, std::ios::binary);
      std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (!in.good() && !in.eof()) {
        throw std::runtime_error("scan " + id + ": cannot read its report " + stored->path);
      }
      response r;
      r.message = response_message{http::status::ok, 11};
      r.message.set(http::field::content_type, "application/json");
      r.message.body() = std::move(text);
      return with_route(std::move(r));
    }
    if (pattern == "/api/v1/scans/{id}/events") {
      response r;
      r.message = response_message{http::status::ok, 11};
      r.message.set(http::field::content_type, "text/event-stream");
      r.message.set(http::field::cache_control, "no-store");
      r.events = std::make_shared<scan_event_source>(store_, queue_, id);
      return with_route(std::move(r));
    }
    throw std::logic_error("route without handler: " + pattern);
  } catch (...) {
    response r;
    r.message = problem_from_exception(std::current_exception(), request_id);
    return with_route(std::move(r));
  }
}

std::variant<response, std::unique_ptr<upload>> router::begin_upload(const request_header& head,
                                                                     std::optional<std::uint64_t> content_length,
                                                                     std::string_view request_id) {
  const auto fail = [&](std::exception_ptr e) {
    response r;
    r.message = problem_from_exception(e, request_id);
    r.route = std::string(upload_route);
    return r;
  };
  try {
    auto up = std::make_unique<upload>();
    const auto parsed = boost::urls::parse_origin_form(head.target());
    if (!parsed) {
      bad_request("the request target is not a valid origin-form URL");
    }
    query q(*parsed, {"label", "case_ref", "filename"});
    up->scan_.label = q.text("label").value_or("");
    up->scan_.case_ref = q.text("case_ref").value_or("");
    up->scan_.filename = q.text("filename").value_or("");
    if (up->scan_.filename.find('/') != std::string::npos) {
      bad_request("query parameter 'filename' must be a bare file name");
    }
    const std::string_view station = head["X-Station"];
    if (!valid_station(station)) {
      bad_request("X-Station must be up to 64 characters of A-Z a-z 0-9 . _ -");
    }
    up->scan_.station = std::string(station);

    if (const auto type = head[http::field::content_type]; !type.empty()) {
      const auto base = type.substr(0, type.find(';'));
      if (!boost::beast::iequals(base, "application/octet-stream")) {
        throw http_error(http::status::unsupported_media_type, "unsupported-media-type",
                         "the image must be sent as application/octet-stream");
      }
    }
    if (content_length && *content_length > settings_.max_image_bytes) {
      throw http_error(http::status::payload_too_large, "too-large",
                       "the image is " + std::to_string(*content_length) + " bytes; the limit is " +
                           std::to_string(settings_.max_image_bytes));
    }
    if (content_length && *content_length == 0) {
      bad_request("the image is empty");
    }
    if (const auto h = head["X-Image-SHA256"]; !h.empty()) {
      up->header_sha256_ = normalise_sha256_hex(h);
    }
    if (const auto h = head["Content-Digest"]; !h.empty()) {
      up->content_digest_sha256_ = content_digest_sha256(h);
    }
    if (content_length && free_disk_bytes(settings_.spool_dir) < *content_length + settings_.min_free_spool_bytes) {
      throw http_error(http::status::insufficient_storage, "spool-full",
                       "the spool has no room for an image of this size now");
    }
    up->slot_ = queue_.reserve();
    if (!up->slot_) {
      throw http_error(http::status::service_unavailable, "queue-full",
                       "the scan queue is full (" + std::to_string(queue_.capacity()) + " scans); retry later")
          .with_header(http::field::retry_after, std::to_string(settings_.retry_after_seconds));
    }
    up->scan_.id = ids_.next();
    up->file_ = std::make_unique<spool_file>(settings_.spool_dir / (up->scan_.id + ".part"));
    return up;
  } catch (...) {
    return fail(std::current_exception());
  }
}

response router::finish_upload(std::unique_ptr<upload> up, std::string_view request_id) {
  try {
    boost::beast::error_code ec;
    const std::string sha256 = up->file().finish(ec);
    if (ec) {
      return upload_failed(std::move(up), ec, request_id);
    }
    const std::uint64_t size = up->file().size();
    if (size == 0) {
      bad_request("the image is empty");
    }
    for (const auto* claimed : {&up->header_sha256_, &up->content_digest_sha256_}) {
      if (*claimed && **claimed != sha256) {
        throw http_error(http::status::unprocessable_entity, "digest-mismatch",
                         "the received image has SHA-256 " + sha256 + " but the request claimed " + **claimed +
                             "; nothing was kept");
      }
    }
    scan_record& scan = up->scan_;
    scan.image_sha256 = sha256;
    scan.image_size = size;
    scan.submitted_at = clock_.now_ms();
    const auto final_path = settings_.spool_dir / (scan.id + ".img");
    scan.spool_path = final_path.string();
    up->file().commit(final_path);
    try {
      queue_.submit(std::move(up->slot_), scan);
    } catch (...) {
      std::error_code rm;
      std::filesystem::remove(final_path, rm);
      throw;
    }
    metrics_.on_upload(size);
    spdlog::info("request={} job={} state=queued station='{}' size={} sha256={}", request_id, scan.id, scan.station,
                 size, sha256);
    response r = json_response(http::status::accepted,
                               {{"id", scan.id}, {"status", "queued"}, {"image_sha256", sha256}, {"size", size}},
                               std::string(upload_route));
    r.message.set(http::field::location, "/api/v1/scans/" + scan.id);
    return r;
  } catch (...) {
    response r;
    r.message = problem_from_exception(std::current_exception(), request_id);
    r.route = std::string(upload_route);
    return r;
  }
}

response router::upload_failed(std::unique_ptr<upload> up, boost::beast::error_code ec, std::string_view request_id) {
  up.reset();  // removes the partial file, frees the slot
  response r;
  r.route = std::string(upload_route);
  if (ec == http::error::body_limit) {
    r.message = make_problem(
        http::status::payload_too_large, "too-large",
        "the image exceeds the limit of " + std::to_string(settings_.max_image_bytes) + " bytes; nothing was kept",
        request_id);
  } else if (ec == boost::system::errc::no_space_on_device || ec == boost::system::errc::file_too_large) {
    spdlog::error("request={} spool write failed: {}", request_id, ec.message());
    r.message = make_problem(http::status::insufficient_storage, "spool-full",
                             "the spool ran out of space; nothing was kept", request_id);
  } else {
    spdlog::error("request={} spool write failed: {}", request_id, ec.message());
    r.message = make_problem(http::status::internal_server_error, "internal",
                             "the image could not be stored; nothing was kept", request_id);
  }
  return r;
}

}  // namespace borderscan::server
