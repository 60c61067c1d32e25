#pragma once
// What both report_store backends (SQLite, PostgreSQL) decide the same way,
// whatever their SQL: how the audit chain is checked, how an actor is kept
// in a column, and the verdict once reviewers' marks count.

#include <optional>
#include <string>
#include <string_view>

#include "borderscan/server/report_store.hpp"

namespace borderscan::server::store_rules {

// Walks the audit chain one entry at a time, oldest first.
class audit_chain_check {
 public:
  // False from the first entry that is not what the chain says it was on.
  bool add(const audit_entry& e, std::string_view detail_text);
  const audit_check& result() const noexcept { return check_; }

 private:
  audit_check check_;
  std::string prev_;
};

// An actor as stored in scans.cancelled_by (JSON), and back.
std::string actor_text(const actor& by);
std::optional<actor> actor_from_text(const std::string& text);

// The verdict once reviewers' marks count: a flagged report whose flagging
// findings are all false positives has the verdict it would have without them.
std::string derived_verdict(const std::string& verdict, const std::string& verdict_without_flags, bool still_flagged);

// The error of a scan start-up recovery gives up on.
std::string gave_up_reason(const std::string& attempts);

}  // namespace borderscan::server::store_rules
