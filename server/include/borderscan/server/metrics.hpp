#pragma once
// Process metrics in the Prometheus text format (version 0.0.4). Counters are
// bumped by the HTTP layer and the workers; gauges are read when rendering.
// Thread-safe.

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

namespace borderscan::server {

struct gauge_values {
  std::size_t queue_depth = 0;
  std::size_t scans_running = 0;
  std::size_t http_connections = 0;
};

class metrics {
 public:
  void on_http_request(const std::string& route, unsigned status);
  void on_upload(std::uint64_t bytes);
  void on_scan_done(const std::string& verdict, double seconds, std::uint64_t files, std::uint64_t bytes);
  void on_scan_failed();
  void on_scan_retried();

  void on_connection_opened() noexcept { ++connections_; }
  void on_connection_closed() noexcept { --connections_; }
  std::size_t connections() const noexcept { return connections_.load(); }

  std::string render(const gauge_values& gauges) const;

 private:
  static constexpr std::array<double, 9> buckets_ = {0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600};

  std::atomic<std::size_t> connections_{0};
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, unsigned>, std::uint64_t> http_requests_;
  std::map<std::string, std::uint64_t> scans_by_verdict_;
  std::uint64_t scans_failed_ = 0, scans_retried_ = 0;
  std::uint64_t upload_bytes_ = 0, uploads_ = 0;
  std::uint64_t scanned_files_ = 0, scanned_bytes_ = 0;
  std::array<std::uint64_t, buckets_.size()> duration_buckets_{};
  std::uint64_t duration_count_ = 0;
  double duration_sum_ = 0;
};

}  // namespace borderscan::server
