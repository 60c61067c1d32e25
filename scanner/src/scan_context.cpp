#include "scan_context.hpp"

#include "borderscan/scanner/file_spill.hpp"

namespace borderscan::scanner::detail {

scan_context::scan_context(report& r, const limits& lim, const scan_options& options, clock_type::time_point start)
    : report_(r),
      limits_(lim),
      options_(options),
      deadline_(lim.scan_timeout_seconds > 0 ? start + std::chrono::seconds(lim.scan_timeout_seconds)
                                             : clock_type::time_point::max()),
      last_progress_(clock_type::now()) {}

void scan_context::add_file(file_entry&& f) {
  ++files_found_;
  ++files_done_;
  std::lock_guard lock(mutex_);
  keep_file(std::move(f));
}

void scan_context::add_error(error_entry&& e) {
  std::lock_guard lock(mutex_);
  report_.errors.push_back(std::move(e));
}

void scan_context::add_limit(limit_hit&& l) {
  std::lock_guard lock(mutex_);
  report_.limits_hit.push_back(std::move(l));
}

std::optional<std::string_view> scan_context::stop_reason() {
  if (!stop_.load()) {
    const bool cancelled = options_.cancel != nullptr && options_.cancel->load();
    if (!cancelled && clock_type::now() < deadline_) {
      return std::nullopt;
    }
    std::lock_guard lock(mutex_);
    if (!stop_.load()) {
      // The first to see the stop records it, once.
      stop_skip_ = cancelled ? "cancelled" : "scan deadline passed";
      report_.limits_hit.push_back({cancelled ? "cancelled" : "scan_timeout",
                                    cancelled ? "requested" : std::to_string(limits_.scan_timeout_seconds) + " s", "",
                                    std::nullopt});
      stop_ = true;
    }
  }
  return stop_skip_;
}

void scan_context::add_bytes(std::uint64_t n) {
  bytes_done_ += n;
  emit_progress(false);
}

void scan_context::add_warning(std::string&& w) {
  std::lock_guard lock(mutex_);
  report_.warnings.push_back(std::move(w));
}

void scan_context::found(std::uint64_t content_bytes) {
  ++files_found_;
  bytes_total_ += content_bytes;
}

void scan_context::found_unallocated(std::uint64_t bytes) {
  bytes_total_ += bytes;
}

void scan_context::add_finding(finding&& f) {
  std::lock_guard lock(mutex_);
  report_.findings.push_back(std::move(f));
}

void scan_context::add_listed(file_entry&& f) {
  ++files_done_;
  std::lock_guard lock(mutex_);
  keep_file(std::move(f));
}

void scan_context::finish_top(file_entry&& f, object_outcome&& outcome) {
  ++files_done_;
  {
    std::lock_guard lock(mutex_);
    keep_file(std::move(f));
    for (auto& e : outcome.errors) {
      report_.errors.push_back(std::move(e));
    }
    for (auto& l : outcome.limits) {
      report_.limits_hit.push_back(std::move(l));
    }
  }
  emit_progress(false);
}

void scan_context::finish_progress() {
  {
    std::lock_guard lock(mutex_);
    progress_.walk_done = true;
  }
  emit_progress(true);
}

void scan_context::keep_file(file_entry&& f) {
  if (report_.spilled_files && !spill_failed_) {
    try {
      report_.spilled_files->add(f);
      return;
    } catch (const std::exception& e) {
      // Later entries stay in memory; the spilled ones stay where they are
      // and the report merges both. Nothing is lost, and the report says
      // why memory grew.
      spill_failed_ = true;
      report_.warnings.push_back(std::string("report entries kept in memory from here on: ") + e.what());
    }
  }
  report_.files.push_back(std::move(f));
}

void scan_context::emit_progress(bool force) {
  if (!options_.on_progress) {
    return;
  }
  std::lock_guard lock(mutex_);
  const auto now = clock_type::now();
  if (!force && now - last_progress_ < std::chrono::milliseconds(100)) {
    return;
  }
  last_progress_ = now;
  progress_.files_done = files_done_;
  progress_.files_found = files_found_;
  progress_.bytes_done = bytes_done_;
  progress_.bytes_total = bytes_total_;
  options_.on_progress(progress_);
}

}  // namespace borderscan::scanner::detail
