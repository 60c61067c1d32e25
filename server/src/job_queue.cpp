#include "borderscan/server/job_queue.hpp"

#include <algorithm>
#include <chrono>

namespace borderscan::server {

void job_state::request_stop(stop_reason why, const actor& by) {
  {
    std::lock_guard lock(mutex_);
    // A user's cancel wins over shutdown: it must not come back as queued.
    // A lost lease wins over both: the scan is another node's now.
    if (reason_ != stop_reason::cancelled || why == stop_reason::lease_lost) {
      reason_ = why;
      cancelled_by_ = by;
    }
  }
  cancel_.store(true);
}

stop_reason job_state::reason() const {
  std::lock_guard lock(mutex_);
  return reason_;
}

actor job_state::cancelled_by() const {
  std::lock_guard lock(mutex_);
  return cancelled_by_;
}

void job_state::set_progress(const scanner::scan_progress& p) {
  std::lock_guard lock(mutex_);
  progress_ = p;
}

scanner::scan_progress job_state::progress() const {
  std::lock_guard lock(mutex_);
  return progress_;
}

queue_slot& queue_slot::operator=(queue_slot&& o) noexcept {
  if (this != &o) {
    if (queue_ != nullptr) {
      queue_->release_slot();
    }
    queue_ = std::exchange(o.queue_, nullptr);
  }
  return *this;
}

queue_slot::~queue_slot() {
  if (queue_ != nullptr) {
    queue_->release_slot();
  }
}

job_queue::job_queue(report_store& store, const clock& clk, std::size_t capacity, node_lease lease)
    : store_(store),
      clock_(clk),
      capacity_(capacity),
      lease_(std::move(lease)),
      queued_(store.count(scan_status::queued)) {}

queue_slot job_queue::reserve() {
  std::lock_guard lock(mutex_);
  if (queued_ + reserved_ >= capacity_) {
    return {};
  }
  ++reserved_;
  return queue_slot(this);
}

void job_queue::release_slot() {
  std::lock_guard lock(mutex_);
  --reserved_;
}

void job_queue::submit(queue_slot&& slot, scan_record& scan, const actor& by) {
  {
    std::lock_guard lock(mutex_);
    store_.add_scan(scan, by);
    ++queued_;
    // The slot turns into the queued job: release it without the counter.
    --reserved_;
    slot.queue_ = nullptr;
  }
  wake_.notify_one();
}

std::shared_ptr<job_state> job_queue::next(std::stop_token stop) {
  // The store is called under the queue's lock so that a job is never claimed
  // in the store yet missing from running_ (cancel would not find it).
  std::unique_lock lock(mutex_);
  while (!stop.stop_requested()) {
    if (queued_ > 0) {
      if (claim_gate_) {
        lock.unlock();
        const bool may_claim = claim_gate_();
        lock.lock();
        if (!may_claim) {
          wake_.wait_for(lock, stop, std::chrono::seconds(1), [] { return false; });
          continue;
        }
      }
      std::optional<scan_record> scan = store_.claim_next(clock_.now_ms(), lease_);
      if (scan) {
        --queued_;
        auto state = std::make_shared<job_state>(std::move(*scan));
        running_[state->scan().id] = state;
        return state;
      }
      queued_ = store_.count(scan_status::queued);
      continue;
    }
    // The timeout only guards against a missed wake-up; submit() notifies.
    wake_.wait_for(lock, stop, std::chrono::seconds(1), [&] { return queued_ > 0; });
  }
  return nullptr;
}

void job_queue::finished(const std::shared_ptr<job_state>& job) {
  std::lock_guard lock(mutex_);
  // A re-queued job may already run again on another worker under the same id.
  if (auto it = running_.find(job->scan().id); it != running_.end() && it->second == job) {
    running_.erase(it);
  }
}

void job_queue::requeue(const std::string& id, std::string_view reason, bool count_attempt) {
  {
    std::lock_guard lock(mutex_);
    store_.requeue(id, reason, count_attempt);
    ++queued_;
  }
  wake_.notify_one();
}

cancel_result job_queue::cancel(const std::string& id, const actor& by) {
  std::lock_guard lock(mutex_);
  if (auto it = running_.find(id); it != running_.end()) {
    it->second->request_stop(stop_reason::cancelled, by);
    // The scan is cancelled when its worker stops; that the request came is recorded now.
    store_.record("cancel_requested", id, nlohmann::json::object(), by, clock_.now_ms());
    return cancel_result::stopping;
  }
  if (store_.cancel_queued(id, clock_.now_ms(), by)) {
    queued_ = queued_ > 0 ? queued_ - 1 : 0;
    return cancel_result::cancelled;
  }
  return cancel_result::not_active;
}

void job_queue::stop_all(stop_reason why) {
  std::lock_guard lock(mutex_);
  for (auto& [id, state] : running_) {
    state->request_stop(why);
  }
}

std::optional<scanner::scan_progress> job_queue::progress(const std::string& id) const {
  std::lock_guard lock(mutex_);
  if (auto it = running_.find(id); it != running_.end()) {
    return it->second->progress();
  }
  return std::nullopt;
}

void job_queue::keep_leases(unsigned max_attempts, std::int64_t keep_failed_ms) {
  {
    std::lock_guard lock(mutex_);
    const std::vector<std::string> held = store_.renew_leases(lease_, clock_.now_ms());
    for (auto& [id, state] : running_) {
      if (std::find(held.begin(), held.end(), id) == held.end()) {
        state->request_stop(stop_reason::lease_lost);
      }
    }
    store_.requeue_expired(max_attempts, clock_.now_ms(), keep_failed_ms);
    // Other nodes queue into the same store: their scans wake this node too.
    queued_ = store_.count(scan_status::queued);
  }
  wake_.notify_all();
}

std::size_t job_queue::queued() const {
  std::lock_guard lock(mutex_);
  return queued_;
}

std::size_t job_queue::running() const {
  std::lock_guard lock(mutex_);
  return running_.size();
}

}  // namespace borderscan::server
