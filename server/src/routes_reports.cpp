// Reports: the list, one scan's report, and the pages of its files. The
// report and file-page handlers read the report store and nothing else, so
// that a new store interface changes only their bodies.
#include "handler_support.hpp"

namespace borderscan::server {

using namespace handlers;

namespace {

const name_set verdicts = {"clean", "flagged", "incomplete", "error"};
const name_set review_states = {"unreviewed", "cleared", "confirmed", "escalated"};

json summary_json(const scan_record& s) {
  json j = scan_identity_json(s);
  j["review_state"] = s.review_state;
  j["files"] = s.files;
  j["flagged_files"] = s.flagged_files;
  j["ruleset_digest"] = s.ruleset_digest;
  j["links"] = {{"report", "/api/v1/scans/" + s.id + "/report"}, {"files", "/api/v1/reports/" + s.id + "/files"}};
  return j;
}

}  // namespace

response router::get_reports(const route_call& c) {
  query q(c.url, {"verdict", "review", "station", "since", "until", "limit", "cursor"});
  report_filter f;
  f.verdict = q.one_of("verdict", verdicts);
  f.review = q.one_of("review", review_states);
  f.station = q.text("station", 64);
  read_range_and_page(q, f, 500, 50);
  const report_page page = store_.list_reports(f);
  json items = json::array();
  for (const auto& s : page.items) {
    items.push_back(summary_json(s));
  }
  return page_response(std::move(items), page.next_seq);
}

response router::get_scan_report(const route_call& c) {
  const scan_record scan = existing_scan(c, store_);
  if (scan.status != scan_status::done) {
    throw http_error(http::status::conflict, "not-done",
                     std::string("the scan is ") + to_string(scan.status) +
                         (scan.status == scan_status::failed ? " (" + scan.error + ") and has no report"
                                                             : "; the report is not ready yet"));
  }
  auto text = store_.report_json(scan.id);
  if (!text) {
    throw std::runtime_error("scan " + scan.id + " is done but has no stored report");
  }
  response r;
  r.message = response_message{http::status::ok, 11};
  r.message.set(http::field::content_type, "application/json");
  r.message.body() = std::move(*text);
  return r;
}

response router::get_report_files(const route_call& c) {
  const std::string& id = scan_id(c);
  query q(c.url, {"flagged", "deleted", "mime", "limit", "cursor"});
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
  return page_response(page->items, page->next_index);
}

}  // namespace borderscan::server
