#pragma once
// Retention of spooled images after their scan: which images are kept and
// for how long (the worker pool asks when a scan ends), and a periodic sweep
// that deletes those whose period has passed. Every keep and delete is
// written to the audit log by the store.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <stop_token>
#include <thread>

#include "borderscan/server/report_store.hpp"
#include "borderscan/server/system.hpp"

namespace borderscan::server {

struct retention_policy {
  bool keep_all = false;             // storage.keep_images: never delete
  std::int64_t keep_flagged_ms = 0;  // 0: flagged images go when their scan ends
  std::int64_t keep_failed_ms = 0;   // 0: failed images go when their scan ends
};

enum class scan_outcome { done, flagged, failed, cancelled };  // flagged: done with verdict flagged

// Deletes the spooled image of a scan that just ended, or marks it kept
// according to the policy. Never throws for a file-system error (logged).
void retire_image(report_store& store, const clock& clk, const retention_policy& policy, const scan_record& scan,
                  scan_outcome outcome);

class retention_sweeper {
 public:
  retention_sweeper(report_store& store, const clock& clk, std::chrono::milliseconds interval);
  ~retention_sweeper();
  retention_sweeper(const retention_sweeper&) = delete;
  retention_sweeper& operator=(const retention_sweeper&) = delete;

  // Sweeps now, then every interval on a thread of its own.
  void start();
  void stop();
  // Deletes every image and evidence copy whose retention has ended; returns how many.
  std::size_t sweep_once();

 private:
  report_store& store_;
  const clock& clock_;
  std::chrono::milliseconds interval_;
  std::mutex mutex_;
  std::condition_variable_any wake_;
  std::jthread thread_;
};

}  // namespace borderscan::server
