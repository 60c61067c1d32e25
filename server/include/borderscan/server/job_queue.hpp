#pragma once
// The bounded job queue on top of the store: uploads reserve a slot before
// their body is received (so a full queue answers 503 at once), workers block
// in next() until a job is queued, and running jobs carry a cancel flag and
// live progress for status requests and SSE. Thread-safe; one mutex.

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>

#include "borderscan/scanner/engine.hpp"
#include "borderscan/server/report_store.hpp"
#include "borderscan/server/system.hpp"

namespace borderscan::server {

// lease_lost: another node took the scan over (this node's lease lapsed):
// its outcome is no longer this node's to record.
enum class stop_reason { none, cancelled, shutdown, lease_lost };

// Shared between the worker running a job and whoever asks about it.
class job_state {
 public:
  explicit job_state(scan_record scan) : scan_(std::move(scan)) {}
  const scan_record& scan() const noexcept { return scan_; }
  const std::atomic<bool>& cancel_flag() const noexcept { return cancel_; }
  void request_stop(stop_reason why, const actor& by = {});
  stop_reason reason() const;
  actor cancelled_by() const;  // who asked, when the reason is cancelled
  void set_progress(const scanner::scan_progress& p);
  scanner::scan_progress progress() const;

 private:
  scan_record scan_;
  std::atomic<bool> cancel_{false};
  mutable std::mutex mutex_;
  stop_reason reason_ = stop_reason::none;
  actor cancelled_by_;
  scanner::scan_progress progress_;
};

class job_queue;

// A reserved queue slot: released on destruction unless submitted.
class queue_slot {
 public:
  queue_slot() = default;
  explicit queue_slot(job_queue* q) : queue_(q) {}
  queue_slot(queue_slot&& o) noexcept : queue_(std::exchange(o.queue_, nullptr)) {}
  queue_slot& operator=(queue_slot&& o) noexcept;
  ~queue_slot();
  explicit operator bool() const noexcept { return queue_ != nullptr; }

 private:
  friend class job_queue;
  job_queue* queue_ = nullptr;
};

enum class cancel_result { cancelled, stopping, not_active };

class job_queue {
 public:
  // lease: this node's name and how long a claim holds without renewal.
  job_queue(report_store& store, const clock& clk, std::size_t capacity, node_lease lease = {});

  // An empty slot when queued + reserved jobs already fill the capacity.
  queue_slot reserve();
  // Persists the scan (state queued) and wakes a worker.
  void submit(queue_slot&& slot, scan_record& scan, const actor& by = {});

  // Asked (without the queue's lock) before each claim: while it says no,
  // this node claims nothing and asks again a second later. Set before the
  // workers start (the rules: a node claims only with the cluster's set).
  void set_claim_gate(std::function<bool()> gate) { claim_gate_ = std::move(gate); }

  // Blocks until a job is claimed or stop is requested (then nullptr).
  std::shared_ptr<job_state> next(std::stop_token stop);
  // The worker is done with a job (whatever the outcome).
  void finished(const std::shared_ptr<job_state>& job);
  // Puts a claimed job back (its attempt is given back unless count_attempt).
  void requeue(const std::string& id, std::string_view reason, bool count_attempt);

  cancel_result cancel(const std::string& id, const actor& by = {});
  // Stops every running job (shutdown past the grace period).
  void stop_all(stop_reason why);
  // Live progress of a running job.
  std::optional<scanner::scan_progress> progress(const std::string& id) const;

  // Periodic, more often than the lease length: renews this node's leases
  // (stopping jobs whose lease another node took over), queues again other
  // nodes' scans whose lease lapsed, and picks up scans other nodes queued.
  void keep_leases(unsigned max_attempts, std::int64_t keep_failed_ms);
  const node_lease& lease() const noexcept { return lease_; }

  std::size_t queued() const;
  std::size_t running() const;
  std::size_t capacity() const noexcept { return capacity_; }

 private:
  friend class queue_slot;
  void release_slot();

  report_store& store_;
  const clock& clock_;
  const std::size_t capacity_;
  const node_lease lease_;
  std::function<bool()> claim_gate_;
  mutable std::mutex mutex_;
  std::condition_variable_any wake_;
  std::size_t queued_ = 0;
  std::size_t reserved_ = 0;
  std::map<std::string, std::shared_ptr<job_state>, std::less<>> running_;
};

}  // namespace borderscan::server
