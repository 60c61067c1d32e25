// Inspectors' reviews of reports (reviewer, admin): record a decision, list
// the history. The report document is never touched: it stays signed as the
// scan produced it.
#include <algorithm>

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

json disposition_json(const disposition_record& d) {
  return {{"finding", d.finding_id},
          {"false_positive", d.false_positive},
          {"note", d.note},
          {"at", format_time(d.at)},
          {"reviewer", {{"name", d.reviewer}, {"role", d.role}}}};
}

bool is_finding_id(std::string_view id) {
  return id.size() == 32 &&
         std::all_of(id.begin(), id.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// A JSON object body with only these fields, or 400.
json object_body(const route_call& c, std::initializer_list<std::string_view> fields, const std::string& shape) {
  json body = json::parse(c.req.body(), nullptr, false);
  if (!body.is_object()) {
    bad_request("the body must be a JSON object " + shape);
  }
  for (const auto& [key, value] : body.items()) {
    if (std::find(fields.begin(), fields.end(), key) == fields.end()) {
      bad_request("unknown field '" + key + "'; the body is " + shape);
    }
  }
  return body;
}

std::string note_of(const json& body) {
  if (!body.contains("note")) {
    return {};
  }
  if (!body["note"].is_string() || body["note"].get<std::string>().size() > max_note_bytes) {
    bad_request("note must be a string of at most " + std::to_string(max_note_bytes) + " bytes");
  }
  return body["note"].get<std::string>();
}

}  // namespace

json handlers::current_dispositions(const std::vector<disposition_record>& history) {
  // The last mark of each finding counts.
  json out = json::object();
  for (const auto& d : history) {
    out[d.finding_id] = disposition_json(d);
  }
  return out;
}

response router::post_disposition(const route_call& c) {
  const std::string& id = scan_id(c);
  query(c.url, {});
  if (!is_finding_id(c.sub)) {
    not_found("finding");
  }
  const std::string shape = R"({"false_positive": true|false, "note": "..."})";
  const json body = object_body(c, {"false_positive", "note"}, shape);
  if (!body.contains("false_positive") || !body["false_positive"].is_boolean()) {
    bad_request("false_positive must be true or false; the body is " + shape);
  }
  disposition_record d;
  d.finding_id = c.sub;
  d.false_positive = body["false_positive"].get<bool>();
  d.note = note_of(body);
  d.at = clock_.now_ms();
  d.reviewer = c.by.name;
  d.role = c.by.role;
  const disposition_result done = store_.add_disposition(id, d, c.by);
  switch (done.result) {
    case disposition_result::outcome::no_scan:
      not_found("scan");
    case disposition_result::outcome::not_done:
      throw http_error(http::status::conflict, "not-done",
                       "the scan has no report; only a report's findings are marked");
    case disposition_result::outcome::no_finding:
      throw http_error(http::status::not_found, "not-found",
                       "the report has no finding " + c.sub +
                           " (finding ids are in the report's findings; reports stored before version 0.2 have none)");
    case disposition_result::outcome::recorded:
      break;
  }
  json j = disposition_json(d);
  j["derived_verdict"] = done.derived_verdict;
  response res = json_response(http::status::created, j);
  res.message.set(http::field::location, "/api/v1/reports/" + id + "/dispositions");
  return res;
}

response router::get_dispositions(const route_call& c) {
  const std::string& id = scan_id(c);
  query(c.url, {});
  const auto history = store_.list_dispositions(id);
  if (!history) {
    not_found("scan");
  }
  json items = json::array();
  for (const auto& d : *history) {
    items.push_back(disposition_json(d));
  }
  const auto scan = store_.find_scan(id);
  return json_response(http::status::ok,
                       {{"items", items},
                        {"current", current_dispositions(*history)},
                        {"derived_verdict", scan && scan->derived_verdict ? json(*scan->derived_verdict) : json()}});
}

response router::post_review(const route_call& c) {
  const std::string& id = scan_id(c);
  query(c.url, {});
  const std::string shape = R"({"decision": "cleared|confirmed|escalated", "note": "..."})";
  const json body = object_body(c, {"decision", "note"}, shape);
  if (!body.contains("decision") || !body["decision"].is_string()) {
    bad_request("the body must be a JSON object " + shape);
  }
  review_record r;
  r.decision = body["decision"].get<std::string>();
  if (!decisions.contains(r.decision)) {
    bad_request("decision must be cleared, confirmed or escalated");
  }
  r.note = note_of(body);
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
