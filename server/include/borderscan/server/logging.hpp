#pragma once
// The daemon's log lines: plain text or one JSON object per line
// (log.format), and the HTTP access log. Access lines are rate-limited
// (log.access_lines_per_second) so that a flood of requests cannot flood the
// disk: lines past the limit are counted, not written, and one summary line
// per second says how many were not logged and of which status classes.
// Answers of 5xx are always written. Connections refused at accept are
// counted the same way.

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include <spdlog/formatter.h>

#include "borderscan/server/config.hpp"

namespace borderscan::server {

// What a client sent, safe in a log line: every byte outside printable ASCII
// and every '"' and '\' becomes \xHH, so a line cannot be split, forged or
// made invalid UTF-8.
std::string escape_for_log(std::string_view raw);

// The formatter of log.format: "text" (time, level, message) or "json"
// ({"time","level","msg"} and, for access lines, their fields).
std::unique_ptr<spdlog::formatter> make_log_formatter(std::string_view format);

// Makes the default logger write to stderr in config.format at config.level.
void configure_logging(const log_config& config);

// One answered request, as the access log writes it. `request_line` is the
// method and target as received (raw bytes; escaped when written).
struct access_record {
  std::string_view request_id;
  std::string_view peer;
  std::string_view request_line;
  unsigned status = 0;
  std::uint64_t bytes = 0;
  double ms = 0;
};

// Writes access lines through the default logger. Thread-safe.
class access_log {
 public:
  using clock = std::chrono::steady_clock;
  explicit access_log(const log_config& config);

  void write(const access_record& r, clock::time_point now = clock::now());
  // A connection closed at accept (http.max_connections, or
  // http.max_connections_per_client when `per_client`): counted, and said in
  // the summary line of its second, never one line each.
  void refused(bool per_client, clock::time_point now = clock::now());
  // Writes the summary of a second that has ended with lines not written;
  // the server calls it every second so that the summary does not wait for
  // the next request.
  void flush(clock::time_point now = clock::now());

 private:
  void roll_locked(clock::time_point now);

  bool json_;
  unsigned limit_;
  std::mutex mutex_;
  clock::time_point second_start_{};
  unsigned written_ = 0;
  std::uint64_t dropped_[6] = {};  // by status class: 0 (none), 1xx .. 5xx
  std::uint64_t refused_total_ = 0, refused_per_client_ = 0;
};

}  // namespace borderscan::server
