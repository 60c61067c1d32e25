#pragma once
// What both report_store backends (SQLite, PostgreSQL) decide the same way,
// whatever their SQL: how the audit chain is checked, how an actor is kept
// in a column, and the verdict once reviewers' marks count.

#include <cstddef>
#include <cstdint>
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

// What becomes of running scans taken from their node (its restart, or its
// lease lapsed): the attempt counts, since the image may be what stopped the
// node; queued again while attempts are left, else failed for good.
struct running_settlement {
  unsigned max_attempts = 1;
  std::int64_t now_ms = 0;
  std::int64_t keep_failed_ms = 0;  // keep a failed scan's image this long; 0: not kept
  std::string requeue_reason;       // the scan's error while queued again
  bool audited_requeue = false;     // scan_requeued entries (another node's scans)
  std::size_t requeued = 0;         // counted by the store
};

struct running_outcome {
  bool failed = false;
  std::string reason;                            // failed: the scan's error
  std::optional<std::int64_t> image_kept_until;  // failed: until when its image stays
};

running_outcome settle_running(std::int64_t attempts, const running_settlement& how);

}  // namespace borderscan::server::store_rules
