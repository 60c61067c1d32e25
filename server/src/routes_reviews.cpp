// Inspectors' reviews of reports (reviewer, admin): record a decision, list
// the history. The report document is never touched: it stays signed as the
// scan produced it.
#include "handler_support.hpp"

namespace borderscan::server {

using namespace handlers;

namespace {

const name_set decisions = {"cleared", "confirmed", "escalated"};
constexpr std::size_t max_note_bytes = 4096;

json review_json(const review_record& r) {
  return {{"at", format_time(r.at)},
          {"decision", r.decision},
          {"note", r.note},
          {"reviewer", {{"name", r.reviewer}, {"role", r.role}}}};
}

}  // namespace

response router::post_review(const route_call& c) {
  const std::string& id = scan_id(c);
  query(c.url, {});
  const json body = json::parse(c.req.body(), nullptr, false);
  if (!body.is_object() || !body.contains("decision") || !body["decision"].is_string()) {
    bad_request(R"(the body must be a JSON object {"decision": "cleared|confirmed|escalated", "note": "..."})");
  }
  for (const auto& [key, value] : body.items()) {
    if (key != "decision" && key != "note") {
      bad_request("unknown field '" + key + "'; a review has a decision and a note");
    }
  }
  review_record r;
  r.decision = body["decision"].get<std::string>();
  if (!decisions.contains(r.decision)) {
    bad_request("decision must be cleared, confirmed or escalated");
  }
  if (body.contains("note")) {
    if (!body["note"].is_string() || body["note"].get<std::string>().size() > max_note_bytes) {
      bad_request("note must be a string of at most " + std::to_string(max_note_bytes) + " bytes");
    }
    r.note = body["note"].get<std::string>();
  }
  r.at = clock_.now_ms();
  r.reviewer = c.by.name;
  r.role = c.by.role;
  if (!store_.add_review(id, r, c.by)) {
    const auto scan = store_.find_scan(id);
    if (!scan) {
      not_found("scan");
    }
    throw http_error(http::status::conflict, "not-done",
                     std::string("the scan is ") + to_string(scan->status) + "; only a finished report is reviewed");
  }
  const auto scan = store_.find_scan(id);
  json j = review_json(r);
  j["review_state"] = scan ? review_state_of(*scan) : "reviewed";
  response res = json_response(http::status::created, j);
  res.message.set(http::field::location, "/api/v1/reports/" + id + "/reviews");
  return res;
}

response router::get_reviews(const route_call& c) {
  const std::string& id = scan_id(c);
  query(c.url, {});
  const auto reviews = store_.list_reviews(id);
  if (!reviews) {
    not_found("scan");
  }
  json items = json::array();
  for (const auto& r : *reviews) {
    items.push_back(review_json(r));
  }
  const auto scan = store_.find_scan(id);
  return json_response(http::status::ok,
                       {{"items", items}, {"review_state", scan ? review_state_of(*scan) : std::string()}});
}

}  // namespace borderscan::server
