#pragma once
// Runs each scan in its own `borderscan worker` process (the fence). The
// child gets a clean environment, the image, the rule sources and the
// daemon's compiled rules (with their SHA-256), the limits as JSON, rlimits
// and a seccomp filter (applied by the worker itself), the path of the report
// file to write, and a pipe back for the messages of
// borderscan/protocol/worker_protocol.hpp. The parent bounds what it reads,
// checks that the worker loaded the rule set it holds, enforces the
// wall-clock deadline, and kills and reaps the child on every path; the
// worker dies with the daemon (PR_SET_PDEATHSIG). Each attempt gets a private
// work folder, <spool>/work/<scan id>/ (0700, --work-dir), the only place the
// fenced worker may create files; it is removed when the attempt ends, however
// it ends, and the daemon's start-up removes those a crash left behind.
// Thread-safe: several worker threads call run() at once.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "borderscan/server/config.hpp"
#include "borderscan/server/scan_runner.hpp"

namespace borderscan::server {

struct process_runner_settings {
  worker_config worker;           // as configured; worker.command is resolved in `command`
  std::filesystem::path command;  // the borderscan executable (or a stand-in in tests)
  std::vector<std::filesystem::path> rule_paths;
  std::vector<std::string> hashsets;  // FILE:known-bad / FILE:known-good
  // The rule set to hand to workers, compiled; null: workers compile the
  // sources themselves and any rule set they load is accepted (tests).
  const rule_holder* rules = nullptr;
  scanner::limits limits;
  unsigned scan_threads = 1;
  std::uint64_t memory_limit_bytes = 0;           // worker RLIMIT_AS; 0 = none
  std::uint64_t cpu_limit_seconds = 0;            // worker RLIMIT_CPU; 0 = none
  std::chrono::seconds timeout{3660};             // wall clock, then SIGKILL
  std::uint64_t max_output_bytes = 512ULL << 20;  // bounds the messages, and the report file
  // Workers keep copies of flagged files in an evidence pack (none when empty).
  std::optional<scanner::evidence_limits> evidence;
};

// <spool>/work: the work folders of running attempts, nothing else.
std::filesystem::path work_root_for(const std::filesystem::path& spool_dir);
// <spool>/work/<scan id>
std::filesystem::path work_folder_for(const scan_record& scan);

class process_runner final : public scan_runner {
 public:
  explicit process_runner(process_runner_settings settings);
  report_file run(const scan_request& request) override;
  scanner::severity flag_threshold() const override { return settings_.limits.flag_threshold; }

 private:
  process_runner_settings settings_;
};

}  // namespace borderscan::server
