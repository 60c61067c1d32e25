#include "borderscan/server/rules_service.hpp"

#include <spdlog/spdlog.h>

#include "borderscan/scanner/error.hpp"

namespace borderscan::server {
namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    const auto end = text.find('\n', start);
    const std::string line = text.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (!line.empty()) {
      out.push_back(line);
    }
    if (end == std::string::npos) {
      break;
    }
    start = end + 1;
  }
  return out;
}

// The compiler's messages, one a line (system_error's what() ends with
// ": <category message>", which is not one of them).
std::vector<std::string> compiler_messages(const scanner::scan_error& e) {
  std::string text = e.what();
  const std::string suffix = ": " + e.code().message();
  if (text.ends_with(suffix)) {
    text.erase(text.size() - suffix.size());
  }
  return lines_of(text);
}

std::int64_t rule_count(const rules_snapshot& s) {
  return static_cast<std::int64_t>(s.rules->info().yara_rules);
}

}  // namespace

rules_service::rules_service(std::vector<std::string> rule_paths, hashset_list hashsets,
                             std::filesystem::path compiled_dir, report_store& store, const clock& clk,
                             std::string node)
    : rule_paths_(std::move(rule_paths)),
      hashsets_(std::move(hashsets)),
      compiled_dir_(std::move(compiled_dir)),
      store_(store),
      clock_(clk),
      node_(std::move(node)),
      holder_(load()) {}

rules_snapshot rules_service::load() const {
  std::vector<std::string> hashsets = hashsets_ ? hashsets_() : std::vector<std::string>{};
  rules_snapshot s = load_rules(scanner::rule_sources_for(rule_paths_, hashsets), compiled_dir_);
  s.loaded_at = clock_.now_ms();
  s.hashset_args = std::move(hashsets);
  return s;
}

reload_result rules_service::reload(const actor& by) {
  std::lock_guard lock(reload_mutex_);
  reload_result result;
  result.previous_digest = holder_.snapshot().rules->info().digest;
  try {
    rules_snapshot fresh = load();
    result.ok = true;
    result.digest = fresh.rules->info().digest;
    holder_.swap(std::move(fresh));
  } catch (const scanner::scan_error& e) {
    result.digest = result.previous_digest;
    result.errors = compiler_messages(e);
  }
  const std::int64_t now = clock_.now_ms();
  if (result.ok) {
    const auto& info = holder_.snapshot().rules->info();
    // Every node follows the set this reload loaded, whatever the cluster held before.
    store_.set_cluster_rules({result.digest, rule_count(holder_.snapshot()), node_, now});
    unmatched_.clear();
    store_.record("rules_reloaded", "",
                  {{"digest", result.digest},
                   {"previous_digest", result.previous_digest},
                   {"yara_rules", info.yara_rules},
                   {"node", node_}},
                  by, now);
    spdlog::info("rules reloaded by {}: ruleset {} ({} YARA rules), was {}", by.name, result.digest, info.yara_rules,
                 result.previous_digest);
  } else {
    store_.record("rules_reload_failed", "", {{"kept_digest", result.digest}, {"errors", result.errors}}, by, now);
    spdlog::error("rules reload by {} failed; still serving ruleset {}: {}", by.name, result.digest,
                  result.errors.empty() ? std::string("?") : result.errors.front());
  }
  return result;
}

void rules_service::publish_at_start() {
  std::lock_guard lock(reload_mutex_);
  const rules_snapshot mine = holder_.snapshot();
  const std::string& digest = mine.rules->info().digest;
  const std::int64_t now = clock_.now_ms();
  const auto before = store_.set_cluster_rules({digest, rule_count(mine), node_, now});
  if (before && before->digest != digest) {
    store_.record("rules_reloaded", "",
                  {{"digest", digest},
                   {"previous_digest", before->digest},
                   {"yara_rules", rule_count(mine)},
                   {"node", node_},
                   {"cause", "start"}},
                  actor{"start", "system", "", node_}, now);
    spdlog::warn(
        "rules: this node started with rule set {}; it replaces the cluster's {} (set by node {}), which "
        "every node now follows",
        digest, before->digest, before->node);
  }
}

bool rules_service::follow() {
  try {
    // Read under the lock: a reload in between would make this node's own new set look foreign.
    std::lock_guard lock(reload_mutex_);
    const std::optional<cluster_ruleset> cluster = store_.cluster_rules();
    if (!cluster) {
      return true;
    }
    const std::string mine = serving_digest();
    if (cluster->digest == mine) {
      return true;
    }
    if (unmatched_ == cluster->digest) {
      return false;  // compiled for this one already; the files have not been reloaded since
    }
    std::optional<rules_snapshot> fresh;
    std::vector<std::string> problems;
    try {
      fresh = load();
    } catch (const scanner::scan_error& e) {
      problems = compiler_messages(e);
    }
    const actor by{"cluster", "system", "", node_};
    const std::int64_t now = clock_.now_ms();
    if (fresh && fresh->rules->info().digest == cluster->digest) {
      const std::int64_t yara_rules = rule_count(*fresh);
      holder_.swap(std::move(*fresh));
      unmatched_.clear();
      store_.record("rules_reloaded", "",
                    {{"digest", cluster->digest},
                     {"previous_digest", mine},
                     {"yara_rules", yara_rules},
                     {"node", node_},
                     {"cause", "followed node " + cluster->node}},
                    by, now);
      spdlog::info("rules: following node {}: ruleset {} ({} YARA rules), was {}", cluster->node, cluster->digest,
                   yara_rules, mine);
      return true;
    }
    unmatched_ = cluster->digest;
    if (fresh) {
      problems = {"this node's rule files give rule set " + fresh->rules->info().digest + ", not the cluster's " +
                  cluster->digest + " (set by node " + cluster->node + ")"};
    }
    store_.record("rules_reload_failed", "",
                  {{"kept_digest", mine}, {"cluster_digest", cluster->digest}, {"errors", problems}, {"node", node_}},
                  by, now);
    spdlog::error(
        "rules: cannot follow the cluster's rule set {}: {}; this node claims no scans until its rule files give "
        "that set (then reload it, or send SIGHUP)",
        cluster->digest, problems.empty() ? std::string("?") : problems.front());
    return false;
  } catch (const std::exception& e) {
    // The store could not answer: the claim that follows meets the same store and says so.
    spdlog::warn("rules: cannot read the cluster's rule set: {}", e.what());
    return true;
  }
}

rules_standing rules_service::standing() {
  const bool may_claim = follow();
  rules_standing out;
  try {
    out.cluster = store_.cluster_rules();
  } catch (const std::exception& e) {
    spdlog::warn("rules: cannot read the cluster's rule set: {}", e.what());
  }
  out.in_step = may_claim && (!out.cluster || out.cluster->digest == serving_digest());
  return out;
}

}  // namespace borderscan::server
