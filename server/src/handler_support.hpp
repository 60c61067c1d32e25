#pragma once
// What the route handlers (routes_*.cpp) share: the call a handler gets,
// query parameter checking, and the JSON shapes of responses. Private to the
// server library.

#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include <boost/url.hpp>
#include <nlohmann/json.hpp>

#include "borderscan/server/router.hpp"

namespace borderscan::server {

// One request matched to its route, as a handler sees it.
struct route_call {
  const request& req;
  boost::urls::url_view url;
  std::string id;   // the decoded {id} segment; empty when the pattern has none
  std::string sub;  // a second placeholder ({finding}, {index}); empty when none
  std::string_view request_id;
  std::optional<principal> who;  // the caller; empty on open routes
  actor by;                      // the caller as the audit trail names it
};

namespace handlers {

using nlohmann::json;
using name_set = std::set<std::string, std::less<>>;

[[noreturn]] void bad_request(const std::string& detail);
[[noreturn]] void not_found(std::string_view what);

// Query parameters, each at most once, only the names a route knows; every
// violation is a 400 naming the parameter.
class query {
 public:
  query(const boost::urls::url_view& url, std::initializer_list<std::string_view> allowed);

  std::optional<std::string> text(std::string_view key, std::size_t max_len = 256) const;
  std::optional<std::string> one_of(std::string_view key, const name_set& allowed) const;
  std::optional<bool> boolean(std::string_view key) const;
  std::optional<std::int64_t> integer(std::string_view key, std::int64_t min, std::int64_t max) const;
  std::optional<std::int64_t> time(std::string_view key) const;
  // Cursors are opaque to clients: "c" followed by a position.
  std::optional<std::int64_t> cursor() const;

 private:
  std::map<std::string, std::string, std::less<>> values_;
};

// The time range and paging every list takes: since, until, limit (1 to
// max_limit), cursor; checked in that order.
template <class Filter>
void read_range_and_page(const query& q, Filter& f, std::int64_t max_limit, unsigned default_limit) {
  f.since = q.time("since");
  f.until = q.time("until");
  f.limit = static_cast<unsigned>(q.integer("limit", 1, max_limit).value_or(default_limit));
  f.before_seq = q.cursor();
}

response json_response(http::status status, const json& body);
// {"items": [...], "next_cursor": "c<position>" or null}
response page_response(json items, const std::optional<std::int64_t>& next);
json time_or_null(const std::optional<std::int64_t>& ms);
// The fields a scan's status and its report summary share.
json scan_identity_json(const scan_record& s);

// Each finding's current disposition (the last mark), keyed by finding id.
json current_dispositions(const std::vector<disposition_record>& history);

// The {id} of a route that names a scan, checked before anything else: an id
// of the wrong shape never reaches the store (404).
const std::string& scan_id(const route_call& c);
// The scan a route without query parameters names, or 404; 403 when a
// station asks about another station's scan.
scan_record existing_scan(const route_call& c, report_store& store);
// 403 unless the caller may see the scan: reviewers and admins see every
// scan, a station only its own.
void check_may_see(const route_call& c, const scan_record& scan);

}  // namespace handlers
}  // namespace borderscan::server
