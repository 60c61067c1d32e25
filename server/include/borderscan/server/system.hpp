#pragma once
// Small seams to the outside world (time, random ids, free disk space), so
// that tests can inject deterministic versions (Envoy's TimeSource).

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <random>
#include <string>

namespace borderscan::server {

class clock {
 public:
  virtual ~clock() = default;
  // Wall-clock time in Unix milliseconds: stored timestamps.
  virtual std::int64_t now_ms() const = 0;
};

class system_clock final : public clock {
 public:
  std::int64_t now_ms() const override;
};

// Scan ids: 32 lower-case hex digits (128 random bits). Thread-safe.
class id_generator {
 public:
  virtual ~id_generator() = default;
  virtual std::string next() = 0;
};

class random_id_generator final : public id_generator {
 public:
  random_id_generator();
  std::string next() override;

 private:
  std::mutex mutex_;
  std::mt19937_64 engine_;
};

// True for ids of the shape random_id_generator makes; anything else in a URL
// is rejected before it reaches the store or the file system.
bool is_valid_scan_id(std::string_view id) noexcept;

// Free bytes for an unprivileged writer on the file system holding `dir`.
std::uint64_t free_disk_bytes(const std::filesystem::path& dir);

// RFC 3339 UTC text of Unix milliseconds ("2024-05-01T10:00:00.123Z"), and back.
std::string format_time(std::int64_t unix_ms);
bool parse_time(std::string_view text, std::int64_t& unix_ms);

}  // namespace borderscan::server
