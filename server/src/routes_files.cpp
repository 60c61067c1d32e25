// "Seen before?": GET /api/v1/files?sha256=|sha1=|md5= lists every report
// and station where content with that hash appeared (reviewer, admin).
#include <algorithm>
#include <charconv>

#include "handler_support.hpp"

namespace borderscan::server {

using namespace handlers;

namespace {

constexpr std::pair<std::string_view, std::size_t> hash_kinds[] = {{"sha256", 64}, {"sha1", 40}, {"md5", 32}};

// "c<scan seq>-<file index>", as this route returns it.
std::optional<std::pair<std::int64_t, std::int64_t>> hash_cursor(const query& q) {
  const auto text = q.text("cursor", 48);
  if (!text) {
    return std::nullopt;
  }
  std::int64_t seq = -1, index = -1;
  const char* end = text->data() + text->size();
  if (text->size() >= 4 && (*text)[0] == 'c') {
    auto [dash, ec] = std::from_chars(text->data() + 1, end, seq);
    if (ec == std::errc{} && dash < end && *dash == '-') {
      auto [last, ec2] = std::from_chars(dash + 1, end, index);
      if (ec2 != std::errc{} || last != end) {
        index = -1;
      }
    }
  }
  if (seq < 0 || index < 0) {
    bad_request("query parameter 'cursor' is not a cursor this server returned");
  }
  return std::pair(seq, index);
}

}  // namespace

response router::get_files_by_hash(const route_call& c) {
  query q(c.url, {"sha256", "sha1", "md5", "limit", "cursor"});
  hash_query h;
  for (const auto& [name, digits] : hash_kinds) {
    auto value = q.text(name, 128);
    if (!value) {
      continue;
    }
    if (!h.algorithm.empty()) {
      bad_request("give one of sha256, sha1 or md5, not several");
    }
    std::transform(value->begin(), value->end(), value->begin(), [](unsigned char ch) { return std::tolower(ch); });
    if (value->size() != digits || !std::all_of(value->begin(), value->end(), [](char ch) {
          return std::isxdigit(static_cast<unsigned char>(ch));
        })) {
      bad_request("query parameter '" + std::string(name) + "' must be " + std::to_string(digits) + " hex digits");
    }
    h.algorithm = name;
    h.value = std::move(*value);
  }
  if (h.algorithm.empty()) {
    bad_request("give the content's hash: ?sha256=, ?sha1= or ?md5=");
  }
  h.limit = static_cast<unsigned>(q.integer("limit", 1, 500).value_or(50));
  h.before = hash_cursor(q);
  const hash_page page = store_.find_by_hash(h);
  json items = json::array();
  for (const auto& hit : page.items) {
    const scan_record& s = hit.scan;
    items.push_back(
        {{"scan",
          {{"id", s.id},
           {"station", s.station},
           {"label", s.label},
           {"case_ref", s.case_ref},
           {"submitted_at", format_time(s.submitted_at)},
           {"verdict", s.verdict ? json(*s.verdict) : json()},
           {"derived_verdict", s.derived_verdict ? json(*s.derived_verdict) : json()},
           {"review_state", s.review_state},
           {"review", review_state_of(s)}}},
         {"file", {{"index", hit.index}, {"path", hit.path}, {"deleted", hit.deleted}, {"flagged", hit.flagged}}},
         {"links",
          {{"report", "/api/v1/scans/" + s.id + "/report"}, {"files", "/api/v1/reports/" + s.id + "/files"}}}});
  }
  // A search reveals where a traveller's content was: on the record too.
  store_.record("files_searched", "", {{"algorithm", h.algorithm}, {"value", h.value}, {"results", items.size()}}, c.by,
                clock_.now_ms());
  return json_response(
      http::status::ok,
      {{"items", std::move(items)},
       {"next_cursor",
        page.next ? json("c" + std::to_string(page.next->first) + "-" + std::to_string(page.next->second)) : json()}});
}

}  // namespace borderscan::server
