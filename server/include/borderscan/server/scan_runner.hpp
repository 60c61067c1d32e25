#pragma once
// Runs one job's scan. The worker pool only sees this interface, so that the
// fenced, process-based runner (issue 5) replaces the in-process one without
// touching the pool, the queue or the HTTP layer.

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>

#include "borderscan/scanner/engine.hpp"
#include "borderscan/server/report_store.hpp"

namespace borderscan::server {

// The rule set new scans start with. A scan keeps the snapshot it took, so a
// reload (swap) never changes the rules under a running scan. Thread-safe.
class rule_holder {
 public:
  explicit rule_holder(std::shared_ptr<const scanner::rule_set> rules) : rules_(std::move(rules)) {}
  std::shared_ptr<const scanner::rule_set> current() const {
    std::lock_guard lock(mutex_);
    return rules_;
  }
  void swap(std::shared_ptr<const scanner::rule_set> rules) {
    std::lock_guard lock(mutex_);
    rules_ = std::move(rules);
  }

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const scanner::rule_set> rules_;
};

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

class scan_runner {
 public:
  virtual ~scan_runner() = default;
  // Returns the report (an unusable image is a report with verdict `error`).
  // Throws when the scan could not be carried out at all; the pool retries.
  // Called concurrently from several worker threads.
  virtual scanner::report run(const scan_request& request) = 0;
  // The severity at or above which findings flag a file.
  virtual scanner::severity flag_threshold() const = 0;
};

// Runs the engine on the worker's own thread (no fence yet: issue 5).
class in_process_runner final : public scan_runner {
 public:
  in_process_runner(const scanner::limits& lim, const rule_holder& rules, unsigned scan_threads);
  scanner::report run(const scan_request& request) override;
  scanner::severity flag_threshold() const override { return limits_.flag_threshold; }

 private:
  scanner::limits limits_;
  const rule_holder& rules_;
  unsigned scan_threads_;
};

// Holds each scan for a fixed time (cancellable) before handing it on. Only
// for tests of queueing, crash recovery and drain, which need a scan that is
// reliably `running` for a while; main() adds it for --debug-scan-delay-ms.
class delayed_runner final : public scan_runner {
 public:
  delayed_runner(scan_runner& inner, std::chrono::milliseconds delay) : inner_(inner), delay_(delay) {}
  scanner::report run(const scan_request& request) override;
  scanner::severity flag_threshold() const override { return inner_.flag_threshold(); }

 private:
  scan_runner& inner_;
  std::chrono::milliseconds delay_;
};

}  // namespace borderscan::server
