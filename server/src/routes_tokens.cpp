// API tokens (admin): create, list, revoke. The token itself is in the
// creation answer only; the store keeps its SHA-256.
#include "handler_support.hpp"

namespace borderscan::server {

using namespace handlers;

namespace {

json token_json(const token_record& t) {
  return {{"name", t.name}, {"role", to_string(t.role)}, {"created_at", format_time(t.created_at)}};
}

}  // namespace

response router::post_token(const route_call& c) {
  query(c.url, {});
  const json body = json::parse(c.req.body(), nullptr, false);
  if (!body.is_object() || !body.contains("name") || !body["name"].is_string() || !body.contains("role") ||
      !body["role"].is_string()) {
    bad_request(R"(the body must be a JSON object {"name": "...", "role": "station|reviewer|admin"})");
  }
  for (const auto& [key, value] : body.items()) {
    if (key != "name" && key != "role") {
      bad_request("unknown field '" + key + "'; a token has a name and a role");
    }
  }
  token_record t;
  t.name = body["name"].get<std::string>();
  if (!is_valid_token_name(t.name)) {
    bad_request("the name must be 1 to 64 characters of A-Z a-z 0-9 . _ - (and not 'system')");
  }
  const auto r = parse_role(body["role"].get<std::string>());
  if (!r) {
    bad_request("the role must be station, reviewer or admin");
  }
  t.role = *r;
  const std::string token = generate_token();
  t.digest = digest_of_token(token);
  t.created_at = clock_.now_ms();
  if (!store_.add_token(t, c.by)) {
    throw http_error(http::status::conflict, "token-exists",
                     "a token named '" + t.name + "' exists; revoke it first to replace it");
  }
  json j = token_json(t);
  j["token"] = token;  // shown this once
  response res = json_response(http::status::created, j);
  res.message.set(http::field::location, "/api/v1/tokens/" + t.name);
  res.message.set(http::field::cache_control, "no-store");
  return res;
}

response router::get_whoami(const route_call& c) {
  query(c.url, {});
  // What the caller's token may do decides what a client (the console) shows.
  return json_response(http::status::ok, {{"name", c.who->name}, {"role", to_string(c.who->role)}});
}

response router::get_tokens(const route_call& c) {
  query(c.url, {});
  json items = json::array();
  for (const auto& t : store_.list_tokens()) {
    items.push_back(token_json(t));
  }
  return json_response(http::status::ok, {{"items", items}});
}

response router::delete_token(const route_call& c) {
  query(c.url, {});
  const auto tokens = store_.list_tokens();
  const auto it = std::find_if(tokens.begin(), tokens.end(), [&](const token_record& t) { return t.name == c.id; });
  if (it == tokens.end()) {
    not_found("token");
  }
  const auto admins =
      std::count_if(tokens.begin(), tokens.end(), [](const token_record& t) { return t.role == role::admin; });
  if (it->role == role::admin && admins == 1) {
    // Over the API, that would lock every admin out; the CLI on the data dir can still do it.
    throw http_error(http::status::conflict, "last-admin",
                     "'" + c.id + "' is the last admin token; create another admin token before revoking it");
  }
  if (!store_.revoke_token(c.id, c.by, clock_.now_ms())) {
    not_found("token");
  }
  return json_response(http::status::ok, token_json(*it));
}

}  // namespace borderscan::server
