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

}  // namespace

rules_service::rules_service(std::vector<std::string> rule_paths, hashset_list hashsets,
                             std::filesystem::path compiled_dir, report_store& store, const clock& clk)
    : rule_paths_(std::move(rule_paths)),
      hashsets_(std::move(hashsets)),
      compiled_dir_(std::move(compiled_dir)),
      store_(store),
      clock_(clk),
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
    // system_error's what() ends with ": <category message>"; the lines are the compiler's.
    std::string text = e.what();
    const std::string suffix = ": " + e.code().message();
    if (text.ends_with(suffix)) {
      text.erase(text.size() - suffix.size());
    }
    result.errors = lines_of(text);
  }
  const std::int64_t now = clock_.now_ms();
  if (result.ok) {
    const auto& info = holder_.snapshot().rules->info();
    store_.record(
        "rules_reloaded", "",
        {{"digest", result.digest}, {"previous_digest", result.previous_digest}, {"yara_rules", info.yara_rules}}, by,
        now);
    spdlog::info("rules reloaded by {}: ruleset {} ({} YARA rules), was {}", by.name, result.digest, info.yara_rules,
                 result.previous_digest);
  } else {
    store_.record("rules_reload_failed", "", {{"kept_digest", result.digest}, {"errors", result.errors}}, by, now);
    spdlog::error("rules reload by {} failed; still serving ruleset {}: {}", by.name, result.digest,
                  result.errors.empty() ? std::string("?") : result.errors.front());
  }
  return result;
}

}  // namespace borderscan::server
