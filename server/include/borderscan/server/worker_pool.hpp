#pragma once
// A fixed number of worker threads, off the I/O threads, each claiming one
// job at a time from the queue and handing it to the scan_runner. Outcomes go
// to the store: done with a report (checked and stored by report_ingest),
// queued again after a failed attempt, or failed after max_attempts or a
// cancel.

#include <chrono>
#include <functional>
#include <stop_token>
#include <thread>
#include <vector>

#include "borderscan/server/job_queue.hpp"
#include "borderscan/server/metrics.hpp"
#include "borderscan/server/report_ingest.hpp"
#include "borderscan/server/report_store.hpp"
#include "borderscan/server/retention.hpp"
#include "borderscan/server/scan_runner.hpp"
#include "borderscan/server/store_health.hpp"
#include "borderscan/server/system.hpp"

namespace borderscan::server {

struct worker_settings {
  unsigned workers = 1;
  unsigned max_attempts = 3;
  retention_policy retention;
  std::int64_t evidence_keep_ms = 0;  // evidence.keep_days; 0: until the report is purged
  // Storing a report that fails for a reason that may pass (a full disk, a
  // busy store) is tried this often in all, waiting first_delay, then four
  // times as long each time; the scan stays running meanwhile. Recording how
  // a scan ended is tried until it lands, at most a minute apart.
  unsigned store_attempts = 4;
  std::chrono::milliseconds store_retry_first_delay{1000};
  store_health* health = nullptr;  // told of each failure and success; may be null
  // Tests only (--debug-store-delay-ms): how long a stored report waits
  // before its scan is recorded done, a window to kill the daemon in.
  std::chrono::milliseconds debug_store_hold{0};
};

class worker_pool {
 public:
  worker_pool(job_queue& queue, scan_runner& runner, report_store& store, report_ingest& ingest, metrics& stats,
              const clock& clk, worker_settings settings);
  ~worker_pool();
  worker_pool(const worker_pool&) = delete;
  worker_pool& operator=(const worker_pool&) = delete;

  // Starts the workers, and a thread that keeps this node's leases
  // (job_queue::keep_leases) until drain() has finished.
  void start();
  // Claims nothing new; running scans get `grace` to finish, then they are
  // stopped and put back in the queue (no attempt counted). Joins the threads.
  void drain(std::chrono::milliseconds grace);

 private:
  void do_work(std::stop_token stop);
  void run_one(job_state& job);
  void retire(const scan_record& scan, scan_outcome outcome) const;
  template <typename Step>
  auto store_step(const job_state& job, const char* what, Step step) const;
  void record_outcome(const job_state& job, const std::function<void()>& write) const;

  job_queue& queue_;
  scan_runner& runner_;
  report_store& store_;
  report_ingest& ingest_;
  metrics& metrics_;
  const clock& clock_;
  worker_settings settings_;
  std::stop_source stop_;
  std::vector<std::jthread> threads_;
  std::jthread lease_keeper_;  // declared last: stopped first, joined before the queue goes
};

}  // namespace borderscan::server
