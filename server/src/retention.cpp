#include "borderscan/server/retention.hpp"

#include <filesystem>
#include <system_error>

#include <spdlog/spdlog.h>

namespace borderscan::server {
namespace {

// True when the file is gone afterwards (removed now or already missing).
bool remove_spooled(const scan_record& scan) {
  std::error_code ec;
  std::filesystem::remove(scan.spool_path, ec);
  if (ec) {
    spdlog::warn("job={} cannot remove spooled image {}: {}", scan.id, scan.spool_path, ec.message());
    return false;
  }
  return true;
}

}  // namespace

void retire_image(report_store& store, const clock& clk, const retention_policy& policy, const scan_record& scan,
                  scan_outcome outcome) {
  if (policy.keep_all) {
    return;
  }
  std::int64_t keep_ms = 0;
  if (outcome == scan_outcome::flagged) {
    keep_ms = policy.keep_flagged_ms;
  } else if (outcome == scan_outcome::failed) {
    keep_ms = policy.keep_failed_ms;
  }
  if (keep_ms > 0) {
    const std::int64_t now = clk.now_ms();
    store.keep_image(scan.id, now + keep_ms, now);
    spdlog::info("job={} image kept until {} for examination", scan.id, format_time(now + keep_ms));
    return;
  }
  remove_spooled(scan);
}

retention_sweeper::retention_sweeper(report_store& store, const clock& clk, std::chrono::milliseconds interval)
    : store_(store), clock_(clk), interval_(interval) {}

retention_sweeper::~retention_sweeper() {
  stop();
}

void retention_sweeper::start() {
  thread_ = std::jthread([this](std::stop_token stop) {
    while (!stop.stop_requested()) {
      try {
        sweep_once();
      } catch (const std::exception& e) {
        // The store may be briefly unavailable; the next sweep tries again.
        spdlog::error("retention sweep failed: {}", e.what());
      }
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, stop, interval_, [] { return false; });
    }
  });
}

void retention_sweeper::stop() {
  if (thread_.joinable()) {
    thread_.request_stop();
    thread_.join();
  }
}

std::size_t retention_sweeper::sweep_once() {
  std::size_t deleted = 0;
  for (const scan_record& scan : store_.expired_images(clock_.now_ms())) {
    if (remove_spooled(scan)) {
      store_.image_deleted(scan.id, "retention period ended", clock_.now_ms());
      spdlog::info("job={} retention ended: image {} deleted", scan.id, scan.spool_path);
      ++deleted;
    }
  }
  // Copies of flagged files past evidence.keep_days.
  for (const auto& [id, copy] : store_.expired_evidence(clock_.now_ms())) {
    std::error_code ec;
    if (!std::filesystem::remove(copy.path, ec) && ec) {
      spdlog::error("job={} evidence {} cannot be deleted: {}", id, copy.path, ec.message());
      continue;
    }
    store_.evidence_expired(id, copy.sha256, clock_.now_ms());
    spdlog::info("job={} evidence {} deleted: keep_days passed", id, copy.sha256);
    ++deleted;
  }
  return deleted;
}

}  // namespace borderscan::server
