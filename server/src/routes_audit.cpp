// The audit log: GET /api/v1/audit.
#include "handler_support.hpp"

namespace borderscan::server {

using namespace handlers;

namespace {

const name_set audit_events = {"scan_submitted",       "scan_done",           "scan_failed",      "scan_cancelled",
                               "cancel_requested",     "image_kept",          "image_deleted",    "report_read",
                               "files_read",           "report_purged",       "token_created",    "token_revoked",
                               "rules_reloaded",       "rules_reload_failed", "hashset_imported", "review_recorded",
                               "disposition_recorded", "files_searched",      "evidence_kept",    "evidence_read",
                               "evidence_purged",      "scan_requeued"};

}  // namespace

response router::get_audit(const route_call& c) {
  query q(c.url, {"scan", "event", "since", "until", "limit", "cursor"});
  audit_filter f;
  f.scan_id = q.text("scan", 64);
  if (f.scan_id && !is_valid_scan_id(*f.scan_id)) {
    bad_request("query parameter 'scan' is not a scan id");
  }
  f.event = q.one_of("event", audit_events);
  read_range_and_page(q, f, 1000, 100);
  const audit_page page = store_.list_audit(f);
  json items = json::array();
  for (const auto& e : page.items) {
    items.push_back({{"seq", e.seq},
                     {"at", format_time(e.at)},
                     {"event", e.event},
                     {"scan_id", e.scan_id.empty() ? json(nullptr) : json(e.scan_id)},
                     {"detail", e.detail},
                     {"actor", {{"name", e.by.name}, {"role", e.by.role}}},
                     {"request_id", e.by.request_id.empty() ? json(nullptr) : json(e.by.request_id)},
                     {"client", e.by.client.empty() ? json(nullptr) : json(e.by.client)},
                     {"prev_sha256", e.prev_sha256},
                     {"sha256", e.sha256}});
  }
  return page_response(std::move(items), page.next_seq);
}

}  // namespace borderscan::server
