// Rules: the active rule set (GET /api/v1/rules) and reloading it from disk
// (POST /api/v1/rules/reload, admin; SIGHUP does the same).
#include "handler_support.hpp"

namespace borderscan::server {

using namespace handlers;

namespace {

json ruleset_json(const rules_snapshot& s) {
  const auto& info = s.rules->info();
  json hashsets = json::array();
  for (const auto& h : info.hashsets) {
    hashsets.push_back({{"name", h.name}, {"kind", h.kind}, {"entries", h.entries}});
  }
  return {{"digest", info.digest},
          {"yara_rules", info.yara_rules},
          {"files", info.yara_files},
          {"hashsets", hashsets},
          {"loaded_at", s.loaded_at > 0 ? json(format_time(s.loaded_at)) : json(nullptr)}};
}

// Where this node stands against the cluster's set (the store's).
json cluster_json(const rules_standing& s) {
  if (!s.cluster) {
    return nullptr;
  }
  return {{"digest", s.cluster->digest},
          {"yara_rules", s.cluster->yara_rules},
          {"node", s.cluster->node},
          {"set_at", format_time(s.cluster->set_at)},
          {"in_step", s.in_step}};
}

}  // namespace

response router::get_rules(const route_call& c) {
  query(c.url, {});
  // Asked first: a node that follows a new set answers with it.
  const json cluster = settings_.cluster_rules ? cluster_json(settings_.cluster_rules()) : json(nullptr);
  json j = ruleset_json(rules_.snapshot());
  j["cluster"] = cluster;
  return json_response(http::status::ok, j);
}

response router::post_rules_reload(const route_call& c) {
  query(c.url, {});
  if (!settings_.reload_rules) {
    throw http_error(http::status::not_implemented, "no-reload", "this server cannot reload its rules");
  }
  const reload_result result = settings_.reload_rules(c.by);
  if (!result.ok) {
    response r;
    r.message = make_problem(http::status::unprocessable_entity, "rules-invalid",
                             "the rules on disk cannot be loaded (see errors); still serving rule set " + result.digest,
                             c.request_id);
    // The problem document, with every compiler message added.
    json body = json::parse(r.message.body());
    body["errors"] = result.errors;
    body["digest"] = result.digest;
    r.message.body() = body.dump();
    r.message.prepare_payload();
    return r;
  }
  json j = ruleset_json(rules_.snapshot());
  j["cluster"] = settings_.cluster_rules ? cluster_json(settings_.cluster_rules()) : json(nullptr);
  j["previous_digest"] = result.previous_digest;
  j["changed"] = result.digest != result.previous_digest;
  return json_response(http::status::ok, j);
}

}  // namespace borderscan::server
