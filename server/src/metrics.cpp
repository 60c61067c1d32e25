#include "borderscan/server/metrics.hpp"

#include <sstream>

namespace borderscan::server {

void metrics::on_http_request(const std::string& route, unsigned status) {
  std::lock_guard lock(mutex_);
  ++http_requests_[{route, status}];
}

void metrics::on_upload(std::uint64_t bytes) {
  std::lock_guard lock(mutex_);
  ++uploads_;
  upload_bytes_ += bytes;
}

void metrics::on_scan_done(const std::string& verdict, double seconds, std::uint64_t files, std::uint64_t bytes) {
  std::lock_guard lock(mutex_);
  ++scans_by_verdict_[verdict];
  scanned_files_ += files;
  scanned_bytes_ += bytes;
  for (std::size_t i = 0; i < buckets_.size(); ++i) {
    if (seconds <= buckets_[i]) {
      ++duration_buckets_[i];
    }
  }
  ++duration_count_;
  duration_sum_ += seconds;
}

void metrics::on_scan_failed() {
  std::lock_guard lock(mutex_);
  ++scans_failed_;
}

void metrics::on_scan_retried() {
  std::lock_guard lock(mutex_);
  ++scans_retried_;
}

std::string metrics::render(const gauge_values& gauges) const {
  std::ostringstream out;
  std::lock_guard lock(mutex_);
  out << "# HELP borderscan_scans_total Scans finished with a report, by verdict.\n"
      << "# TYPE borderscan_scans_total counter\n";
  for (const char* v : {"clean", "flagged", "incomplete", "error"}) {
    const auto it = scans_by_verdict_.find(v);
    out << "borderscan_scans_total{verdict=\"" << v << "\"} " << (it == scans_by_verdict_.end() ? 0 : it->second)
        << "\n";
  }
  out << "# HELP borderscan_scans_failed_total Scans that ended failed (cancelled or out of attempts).\n"
      << "# TYPE borderscan_scans_failed_total counter\n"
      << "borderscan_scans_failed_total " << scans_failed_ << "\n"
      << "# HELP borderscan_scan_retries_total Scan attempts that failed and were queued again.\n"
      << "# TYPE borderscan_scan_retries_total counter\n"
      << "borderscan_scan_retries_total " << scans_retried_ << "\n"
      << "# HELP borderscan_queue_depth Scans waiting for a worker.\n"
      << "# TYPE borderscan_queue_depth gauge\n"
      << "borderscan_queue_depth " << gauges.queue_depth << "\n"
      << "# HELP borderscan_scans_running Scans being run by a worker.\n"
      << "# TYPE borderscan_scans_running gauge\n"
      << "borderscan_scans_running " << gauges.scans_running << "\n"
      << "# HELP borderscan_http_connections Open HTTP connections.\n"
      << "# TYPE borderscan_http_connections gauge\n"
      << "borderscan_http_connections " << gauges.http_connections << "\n"
      << "# HELP borderscan_scanned_files_total File entries listed by finished scans.\n"
      << "# TYPE borderscan_scanned_files_total counter\n"
      << "borderscan_scanned_files_total " << scanned_files_ << "\n"
      << "# HELP borderscan_scanned_bytes_total Content bytes read by finished scans.\n"
      << "# TYPE borderscan_scanned_bytes_total counter\n"
      << "borderscan_scanned_bytes_total " << scanned_bytes_ << "\n"
      << "# HELP borderscan_uploads_total Images received and queued.\n"
      << "# TYPE borderscan_uploads_total counter\n"
      << "borderscan_uploads_total " << uploads_ << "\n"
      << "# HELP borderscan_upload_bytes_total Image bytes received and queued.\n"
      << "# TYPE borderscan_upload_bytes_total counter\n"
      << "borderscan_upload_bytes_total " << upload_bytes_ << "\n"
      << "# HELP borderscan_scan_duration_seconds Wall time of finished scans.\n"
      << "# TYPE borderscan_scan_duration_seconds histogram\n";
  for (std::size_t i = 0; i < buckets_.size(); ++i) {
    out << "borderscan_scan_duration_seconds_bucket{le=\"" << buckets_[i] << "\"} " << duration_buckets_[i] << "\n";
  }
  out << "borderscan_scan_duration_seconds_bucket{le=\"+Inf\"} " << duration_count_ << "\n"
      << "borderscan_scan_duration_seconds_sum " << duration_sum_ << "\n"
      << "borderscan_scan_duration_seconds_count " << duration_count_ << "\n"
      << "# HELP borderscan_http_requests_total HTTP requests by route and status.\n"
      << "# TYPE borderscan_http_requests_total counter\n";
  for (const auto& [key, n] : http_requests_) {
    out << "borderscan_http_requests_total{route=\"" << key.first << "\",status=\"" << key.second << "\"} " << n
        << "\n";
  }
  return out.str();
}

}  // namespace borderscan::server
