#pragma once
// Runs one job's scan. The worker pool only sees this interface, so that the
// fenced, process-based runner (issue 5) replaces the in-process one without
// touching the pool, the queue or the HTTP layer.

#include <atomic>
#include <filesystem>
#include <string>
#include <vector>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>

#include "borderscan/scanner/engine.hpp"
#include "borderscan/scanner/evidence_pack.hpp"
#include "borderscan/server/report_store.hpp"

namespace borderscan::server {

// A rule set as scans use it: compiled once, and saved so that worker
// processes load the compiled rules instead of compiling them again.
struct rules_snapshot {
  std::shared_ptr<const scanner::rule_set> rules;
  std::filesystem::path compiled;  // the saved compiled rules; empty: none saved
  std::string compiled_sha256;     // of that file: workers refuse any other
  std::int64_t loaded_at = 0;      // Unix ms
  // The hash sets the set was loaded with, as workers take them
  // ("PATH:known-good|known-bad"); a reload may add imported ones.
  std::vector<std::string> hashset_args;
};

// The rule set new scans start with. A scan keeps the snapshot it took, so a
// reload (swap) never changes the rules under a running scan. Thread-safe.
class rule_holder {
 public:
  explicit rule_holder(rules_snapshot rules) : rules_(std::move(rules)) {}
  explicit rule_holder(std::shared_ptr<const scanner::rule_set> rules) : rules_{std::move(rules), {}, {}, 0, {}} {}
  std::shared_ptr<const scanner::rule_set> current() const { return snapshot().rules; }
  rules_snapshot snapshot() const {
    std::lock_guard lock(mutex_);
    return rules_;
  }
  void swap(rules_snapshot rules) {
    std::lock_guard lock(mutex_);
    rules_ = std::move(rules);
  }

 private:
  mutable std::mutex mutex_;
  rules_snapshot rules_;
};

// Compiles the rule set of `sources` and saves the compiled rules in `dir`
// under its digest (kept when already there). The one way the daemon loads
// rules, at start and at reload. Throws scanner::scan_error.
rules_snapshot load_rules(const scanner::rule_sources& sources, const std::filesystem::path& dir);

// A scan that ended for good (the worker crashed, ran out of time or memory,
// wrote garbage): the pool records it as `failed` at once, with this reason,
// instead of retrying an image that will fail the same way again.
class scan_failed : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct scan_request {
  const scan_record& scan;
  const std::atomic<bool>& cancel;
  std::function<void(const scanner::scan_progress&)> on_progress;
};

// What a scan leaves behind: the report document it wrote to a file.
struct report_file {
  std::filesystem::path path;
  std::uint64_t size = 0;
  std::string sha256;          // of the file, as its writer computed it
  std::string ruleset_digest;  // the rule set the scan ran with
  // Copies of the flagged files' content (scanner/evidence_pack.hpp); empty:
  // the scan kept none.
  std::filesystem::path evidence_pack;
};

// Where a scan's report is written before it is checked and stored: beside
// the spooled image, on the same disk.
std::filesystem::path report_path_for(const scan_record& scan);
// ... and where its evidence pack is written, beside it.
std::filesystem::path evidence_pack_path_for(const scan_record& scan);

class scan_runner {
 public:
  virtual ~scan_runner() = default;
  // Scans and writes the report to report_path_for(scan) (an unusable image
  // is a report with verdict `error`). Throws scan_failed when the scan can
  // never succeed, anything else when it could not be carried out this time
  // (the pool retries). Called concurrently from several worker threads.
  virtual report_file run(const scan_request& request) = 0;
  // The severity at or above which findings flag a file.
  virtual scanner::severity flag_threshold() const = 0;
};

// Runs the engine on the worker's own thread, without a fence
// (worker.isolation = "none": for debugging; the daemon then parses hostile
// images in its own address space).
class in_process_runner final : public scan_runner {
 public:
  // evidence: keep copies of flagged files (none when empty).
  in_process_runner(const scanner::limits& lim, const rule_holder& rules, unsigned scan_threads,
                    std::optional<scanner::evidence_limits> evidence = std::nullopt);
  report_file run(const scan_request& request) override;
  scanner::severity flag_threshold() const override { return limits_.flag_threshold; }

 private:
  scanner::limits limits_;
  const rule_holder& rules_;
  unsigned scan_threads_;
  std::optional<scanner::evidence_limits> evidence_;
};

// Holds each scan for a fixed time (cancellable) before handing it on. Only
// for tests of queueing, crash recovery and drain, which need a scan that is
// reliably `running` for a while; main() adds it for --debug-scan-delay-ms.
class delayed_runner final : public scan_runner {
 public:
  delayed_runner(scan_runner& inner, std::chrono::milliseconds delay) : inner_(inner), delay_(delay) {}
  report_file run(const scan_request& request) override;
  scanner::severity flag_threshold() const override { return inner_.flag_threshold(); }

 private:
  scan_runner& inner_;
  std::chrono::milliseconds delay_;
};

}  // namespace borderscan::server
