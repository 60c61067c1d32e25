#pragma once
// Runs each scan in its own `borderscan worker` process (issue 5: the fence).
// The child gets a clean environment, the image and rule paths, the limits as
// JSON, rlimits and a seccomp filter (applied by the worker itself), and a
// pipe back. The parent bounds what it reads, enforces the wall-clock
// deadline, kills the child on cancel or shutdown, and always reaps it.
// Thread-safe: several worker threads call run() at once.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "borderscan/server/scan_runner.hpp"

namespace borderscan::server {

struct process_runner_settings {
  std::filesystem::path command;  // the borderscan executable (or a stand-in in tests)
  std::vector<std::filesystem::path> rule_paths;
  std::vector<std::string> hashsets;  // FILE:known-bad / FILE:known-good
  scanner::limits limits;
  unsigned scan_threads = 1;
  std::uint64_t memory_limit_bytes = 0;  // worker RLIMIT_AS; 0 = none
  std::uint64_t cpu_limit_seconds = 0;   // worker RLIMIT_CPU; 0 = none
  std::chrono::seconds timeout{3660};    // wall clock, then SIGKILL
  std::uint64_t max_output_bytes = 512ULL << 20;
};

class process_runner final : public scan_runner {
 public:
  explicit process_runner(process_runner_settings settings);
  scanner::report run(const scan_request& request) override;
  scanner::severity flag_threshold() const override { return settings_.limits.flag_threshold; }

 private:
  process_runner_settings settings_;
};

}  // namespace borderscan::server
