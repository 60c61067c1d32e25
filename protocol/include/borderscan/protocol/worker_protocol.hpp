#pragma once
// How borderscand talks to its fenced scan worker (`borderscan worker`), in
// one place for both sides:
//  - the worker's command line (worker_invocation: the daemon turns it into
//    arguments, the worker parses the same options back);
//  - the messages the worker writes on stdout, one JSON object per line:
//    `started` (rules loaded, with their digest), `progress`, then `report`
//    (the report file is complete: path, size, SHA-256) or `error`;
//  - the worker's exit codes.
// The report itself never crosses the pipe: the worker writes it to a file
// the daemon named, and the daemon reads it from there.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace CLI {
class App;
}

namespace borderscan::protocol {

// Exit codes of `borderscan worker`; any other code, or a signal, is a crash.
enum class worker_exit : int {
  ok = 0,             // a `report` message was written
  error = 2,          // an `error` message says why
  out_of_memory = 3,  // the address-space limit was hit
};

struct started_message {
  std::int64_t pid = 0;
  std::string ruleset;  // digest of the rule set the worker loaded
};

struct progress_message {
  std::uint64_t files_done = 0, files_found = 0, bytes_done = 0, bytes_total = 0;
};

struct report_message {
  std::string path;  // the report file, as worker_invocation::report_path
  std::uint64_t size = 0;
  std::string sha256;  // lower-case hex of the file's bytes
};

struct error_message {
  std::string code;  // one of error_codes below
  std::string message;
};

using message = std::variant<started_message, progress_message, report_message, error_message>;

// Codes of error_message.
namespace error_codes {
inline constexpr std::string_view bad_arguments = "bad_arguments";
inline constexpr std::string_view rules_invalid = "rules_invalid";
inline constexpr std::string_view rules_mismatch = "rules_mismatch";
inline constexpr std::string_view sandbox_failed = "sandbox_failed";
inline constexpr std::string_view report_failed = "report_failed";
inline constexpr std::string_view evidence_failed = "evidence_failed";
inline constexpr std::string_view memory_limit = "memory_limit";
inline constexpr std::string_view parent_gone = "parent_gone";
}  // namespace error_codes

// One line, '\n' included.
std::string encode(const message& m);
// nullopt when the line is not a message of this protocol (not JSON, an
// unknown type, a missing or mistyped field): the worker parses hostile
// input, so nothing it says is trusted.
std::optional<message> decode(std::string_view line);

// The worker's command line after `borderscan worker`.
struct worker_invocation {
  std::vector<std::string> image;       // the image file or its segments, in order
  std::vector<std::string> rule_paths;  // YARA files or directories (default: the shipped rules)
  std::vector<std::string> hashsets;    // FILE[:known-good|:known-bad]
  std::string compiled_rules;           // compiled YARA rules written by the daemon
  std::string compiled_rules_sha256;    // ... and their SHA-256: the worker refuses any other file
  std::string limits_json;              // scanner::limits as JSON
  std::string scan_id, station, image_sha256, display_name;
  // The scan's private work folder (0700, made and removed by the daemon):
  // the only place the fenced worker may create files (the report-entry
  // spill, scratch copies). Empty: none; the spill goes to $TMPDIR.
  std::string work_dir;
  std::string report_path;             // the report file to create (it must not exist yet)
  std::uint64_t max_report_bytes = 0;  // 0: no bound
  unsigned jobs = 0;                   // scan threads; 0: number of cores
  std::uint64_t memory_limit = 0;      // RLIMIT_AS bytes; 0: none
  std::uint64_t cpu_limit = 0;         // RLIMIT_CPU seconds; 0: none
  std::int64_t parent_pid = 0;         // the worker dies with this process (0: not tied)
  bool no_seccomp = false;             // debugging only
  bool check_sandbox = false;          // install the fence, probe each denied class, report, exit

  // The evidence pack to create (it must not exist yet): the content of every
  // flagged file is copied there (scanner/evidence_pack.hpp). Empty: none.
  std::string evidence_pack_path;
  std::uint64_t evidence_max_file_bytes = 0;      // 0: the default, 64 MiB
  std::uint64_t evidence_max_bytes_per_scan = 0;  // 0: the default, 1 GiB
};

// Arguments for execve after "worker".
std::vector<std::string> to_arguments(const worker_invocation& w);
// The same options, registered on the worker's CLI11 subcommand.
void add_options(CLI::App& command, worker_invocation& into);

}  // namespace borderscan::protocol
