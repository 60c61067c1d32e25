#pragma once
// The shared state of one engine::scan: the report under its mutex, progress,
// the stop (cancel, deadline) and the spill of finished file entries. The
// walker, the workers and their gates all report here; every member function
// is thread-safe.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "borderscan/scanner/engine.hpp"
#include "borderscan/scanner/limits.hpp"
#include "borderscan/scanner/object_scanner.hpp"
#include "borderscan/scanner/recursion_gate.hpp"
#include "borderscan/scanner/report.hpp"

namespace borderscan::scanner::detail {

class scan_context final : public scan_sink {
 public:
  using clock_type = std::chrono::steady_clock;

  // `r` must outlive this; its spilled_files is set already. The deadline
  // runs from `start`.
  scan_context(report& r, const limits& lim, const scan_options& options, clock_type::time_point start);

  // scan_sink: members of containers, and what the gates record.
  void add_file(file_entry&& f) override;
  void add_error(error_entry&& e) override;
  void add_limit(limit_hit&& l) override;
  std::optional<std::string_view> stop_reason() override;
  void add_bytes(std::uint64_t n) override;

  void add_warning(std::string&& w);
  // An entry the walk found; `content_bytes` of it will be read by a worker.
  void found(std::uint64_t content_bytes);
  // Bytes of unallocated space queued for the workers (counted as content
  // to read in progress, without a file).
  void found_unallocated(std::uint64_t bytes);
  // A finding about image bytes that are no file (unallocated space, a gap).
  void add_finding(finding&& f);
  // An entry the walk found with nothing to read (directory, name only).
  void add_listed(file_entry&& f);
  // A top-level file, done: its own errors and limits are recorded with it,
  // after its members'.
  void finish_top(file_entry&& f, object_outcome&& outcome);
  // The walk and every worker are done: the last progress report.
  void finish_progress();

 private:
  void keep_file(file_entry&& f);  // with mutex_ held
  void emit_progress(bool force);

  std::mutex mutex_;  // guards report_ and the members below that say so
  report& report_;
  const limits& limits_;
  const scan_options& options_;
  const clock_type::time_point deadline_;

  // The stop: stop_skip_ is written once, under mutex_, before stop_ is set.
  std::atomic<bool> stop_{false};
  std::string_view stop_skip_;

  bool spill_failed_ = false;  // under mutex_
  scan_progress progress_;     // under mutex_
  clock_type::time_point last_progress_;
  std::atomic<std::uint64_t> bytes_done_{0}, files_done_{0}, files_found_{0}, bytes_total_{0};
};

}  // namespace borderscan::scanner::detail
