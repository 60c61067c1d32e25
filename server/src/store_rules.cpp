#include "store_rules.hpp"

namespace borderscan::server::store_rules {

bool audit_chain_check::add(const audit_entry& e, std::string_view detail_text) {
  if (!check_.intact()) {
    return false;
  }
  ++check_.entries;
  if (e.prev_sha256 != prev_) {
    check_.first_bad_seq = e.seq;
    check_.problem = "entry " + std::to_string(e.seq) +
                     " does not follow the entry before it (an entry before it was deleted, added or changed)";
    return false;
  }
  if (audit_entry_digest(e, detail_text) != e.sha256) {
    check_.first_bad_seq = e.seq;
    check_.problem = "entry " + std::to_string(e.seq) + " was changed after it was written";
    return false;
  }
  prev_ = e.sha256;
  return true;
}

std::string actor_text(const actor& by) {
  return nlohmann::json{{"name", by.name}, {"role", by.role}, {"request_id", by.request_id}}.dump();
}

std::optional<actor> actor_from_text(const std::string& text) {
  const auto by = nlohmann::json::parse(text, nullptr, false);
  if (!by.is_object()) {
    return std::nullopt;
  }
  return actor{by.value("name", ""), by.value("role", ""), by.value("request_id", ""), ""};
}

std::string derived_verdict(const std::string& verdict, const std::string& verdict_without_flags, bool still_flagged) {
  if (verdict != "flagged" || still_flagged) {
    return verdict;
  }
  return verdict_without_flags == "clean" ? "cleared_false_positive" : verdict_without_flags;
}

running_outcome settle_running(std::int64_t attempts, const running_settlement& how) {
  if (attempts < static_cast<std::int64_t>(how.max_attempts)) {
    return {};
  }
  return {true, "gave up after " + std::to_string(attempts) + " attempts; last: " + how.requeue_reason,
          how.keep_failed_ms > 0 ? std::optional(how.now_ms + how.keep_failed_ms) : std::nullopt};
}

}  // namespace borderscan::server::store_rules
