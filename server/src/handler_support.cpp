#include "handler_support.hpp"

#include <algorithm>
#include <charconv>

#include "borderscan/scanner/text.hpp"
#include "borderscan/server/system.hpp"

namespace borderscan::server::handlers {
namespace {

template <class Names>
std::string comma_list(const Names& names) {
  std::string out;
  for (const auto& n : names) {
    out += out.empty() ? "" : ", ";
    out += n;
  }
  return out;
}

bool is_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto c = scanner::decode_utf8(s, i);
    if (!c.valid) {
      return false;
    }
    i += c.length;
  }
  return true;
}

}  // namespace

void bad_request(const std::string& detail) {
  throw http_error(http::status::bad_request, "bad-request", detail);
}

void not_found(std::string_view what) {
  throw http_error(http::status::not_found, "not-found", "no " + std::string(what) + " with this id");
}

query::query(const boost::urls::url_view& url, std::initializer_list<std::string_view> allowed) {
  for (const auto& p : url.params()) {
    // Decoded, a value is stored and echoed in JSON, which must be UTF-8: a
    // Latin-1 "%e9" is the client's error, named, never a 500.
    if (!is_utf8(p.key)) {
      bad_request(
          "a query parameter name is not valid UTF-8 once percent-decoded; encode text as UTF-8 "
          "(é is %C3%A9)");
    }
    if (!is_utf8(p.value)) {
      bad_request("query parameter '" + p.key +
                  "' is not valid UTF-8 once percent-decoded; encode text as UTF-8 (é is %C3%A9, not %E9)");
    }
    if (std::find(allowed.begin(), allowed.end(), p.key) == allowed.end()) {
      const std::string names = comma_list(allowed);
      bad_request("unknown query parameter '" + p.key + "'" +
                  (names.empty() ? "; this route takes none" : "; allowed: " + names));
    }
    if (!values_.emplace(p.key, p.value).second) {
      bad_request("query parameter '" + p.key + "' given more than once");
    }
  }
}

std::optional<std::string> query::text(std::string_view key, std::size_t max_len) const {
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

std::optional<std::string> query::one_of(std::string_view key, const name_set& allowed) const {
  auto v = text(key);
  if (v && allowed.count(*v) == 0) {
    bad_request("query parameter '" + std::string(key) + "' must be one of " + comma_list(allowed));
  }
  return v;
}

std::optional<bool> query::boolean(std::string_view key) const {
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

std::optional<std::int64_t> query::integer(std::string_view key, std::int64_t min, std::int64_t max) const {
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

std::optional<std::int64_t> query::time(std::string_view key) const {
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

std::optional<std::int64_t> query::cursor() const {
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

response json_response(http::status status, const json& body) {
  response r;
  r.message = response_message{status, 11};
  r.message.set(http::field::content_type, "application/json");
  r.message.body() = body.dump();
  return r;
}

response page_response(json items, const std::optional<std::int64_t>& next) {
  return json_response(http::status::ok, {{"items", std::move(items)},
                                          {"next_cursor", next ? json("c" + std::to_string(*next)) : json()}});
}

json time_or_null(const std::optional<std::int64_t>& ms) {
  return ms ? json(format_time(*ms)) : json(nullptr);
}

json scan_identity_json(const scan_record& s) {
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
      {"submitted_at", format_time(s.submitted_at)},
      {"finished_at", time_or_null(s.finished_at)},
  };
}

const std::string& scan_id(const route_call& c) {
  if (!is_valid_scan_id(c.id)) {
    not_found("scan");
  }
  return c.id;
}

scan_record existing_scan(const route_call& c, report_store& store) {
  const std::string& id = scan_id(c);
  query(c.url, {});
  auto scan = store.find_scan(id);
  if (!scan) {
    not_found("scan");
  }
  check_may_see(c, *scan);
  return std::move(*scan);
}

void check_may_see(const route_call& c, const scan_record& scan) {
  if (c.who && c.who->role == role::station && scan.station != c.who->name) {
    throw http_error(
        http::status::forbidden, "forbidden",
        "scan " + scan.id + " was submitted by another station; station '" + c.who->name + "' sees only its own scans");
  }
}

}  // namespace borderscan::server::handlers
