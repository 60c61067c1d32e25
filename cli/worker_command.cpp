// `borderscan worker`: one scan in its own fenced process, for the daemon.
// It speaks borderscan/protocol/worker_protocol.hpp on stdout: `started`,
// `progress` lines, then `report` (the report file it wrote) or `error`
// (exit 2). Logs go to stderr.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <iostream>
#include <mutex>
#include <new>

#include "borderscan/protocol/worker_protocol.hpp"
#include "borderscan/scanner/engine.hpp"
#include "borderscan/scanner/error.hpp"
#include "borderscan/scanner/evidence_pack.hpp"
#include "borderscan/scanner/report_file.hpp"
#include "commands.hpp"
#include "worker_fence.hpp"

namespace borderscan::cli {
namespace {

namespace sc = borderscan::scanner;
namespace proto = borderscan::protocol;

std::mutex out_mutex;

// One message per line; the daemon reads them as they come.
void emit(const proto::message& m) {
  const std::string text = proto::encode(m);
  std::lock_guard lock(out_mutex);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

// Made before any scan: when memory runs out there is none left to make it.
const std::string out_of_memory_line = proto::encode(
    proto::error_message{std::string(proto::error_codes::memory_limit), "out of memory (address-space limit)"});

int fail(std::string_view code, const std::string& message) {
  emit(proto::error_message{std::string(code), message});
  return static_cast<int>(proto::worker_exit::error);
}

// Out of memory under RLIMIT_AS surfaces as std::bad_alloc, possibly on a
// scanner thread: say so on the pipe, then end with exit code 3.
[[noreturn]] void on_terminate() {
  bool oom = false;
  if (const auto ep = std::current_exception()) {
    try {
      std::rethrow_exception(ep);
    } catch (const std::bad_alloc&) {
      oom = true;
    } catch (...) {
    }
  }
  if (oom) {
    [[maybe_unused]] const auto n = ::write(STDOUT_FILENO, out_of_memory_line.data(), out_of_memory_line.size());
    ::_exit(static_cast<int>(proto::worker_exit::out_of_memory));
  }
  std::abort();
}

// The daemon may die at any moment (kill -9 included): the worker must not
// scan on without it, or a restarted daemon would run a second worker on the
// same image. The parent check closes the window before prctl took effect.
bool tie_to_parent(std::int64_t parent_pid) {
  if (parent_pid == 0) {
    return true;
  }
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  return ::getppid() == static_cast<pid_t>(parent_pid);
}

int run_worker(const proto::worker_invocation& args) {
  std::set_terminate(on_terminate);
  if (!tie_to_parent(args.parent_pid)) {
    return fail(proto::error_codes::parent_gone, "the daemon that started this worker is gone");
  }
  if (args.check_sandbox) {
    return check_sandbox(args);
  }
  // The work folder, held for the whole scan: after the filter, files can be
  // created only through this descriptor (scratch copies, see sandbox.hpp).
  int scratch_dir_fd = -1;
  if (!args.work_dir.empty()) {
    scratch_dir_fd = ::open(args.work_dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (scratch_dir_fd < 0) {
      return fail(proto::error_codes::bad_arguments, "--work-dir " + args.work_dir + ": " + std::strerror(errno));
    }
  }
  // Opened before the filter, which forbids opening files for writing.
  std::string spill_error;
  // It holds what memory would otherwise: the same budget bounds it.
  const auto spill = sc::file_spill::open_in(args.work_dir, args.memory_limit, spill_error);
  if (!spill) {
    std::fprintf(stderr, "borderscan worker: report entries stay in memory: %s\n", spill_error.c_str());
  }
  const int report_fd =
      args.report_path.empty() ? -1 : ::open(args.report_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (!args.report_path.empty() && report_fd < 0) {
    return fail(proto::error_codes::report_failed, args.report_path + ": " + std::strerror(errno));
  }
  std::shared_ptr<sc::evidence_pack> evidence;
  if (!args.evidence_pack_path.empty()) {
    // Also opened here: the scan appends flagged files' content to it.
    const int fd = ::open(args.evidence_pack_path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
      return fail(proto::error_codes::evidence_failed, args.evidence_pack_path + ": " + std::strerror(errno));
    }
    sc::evidence_limits el;
    el.max_file_bytes = args.evidence_max_file_bytes != 0 ? args.evidence_max_file_bytes : el.max_file_bytes;
    el.max_bytes_per_scan =
        args.evidence_max_bytes_per_scan != 0 ? args.evidence_max_bytes_per_scan : el.max_bytes_per_scan;
    try {
      evidence = std::make_shared<sc::evidence_pack>(fd, el);
    } catch (const std::exception& e) {
      return fail(proto::error_codes::evidence_failed, args.evidence_pack_path + ": " + e.what());
    }
  }
  try {
    if (const auto landlock = install_fence(args, scratch_dir_fd); !landlock.enforced) {
      std::fprintf(stderr, "borderscan worker: no Landlock (%s): the fence is seccomp only\n", landlock.reason.c_str());
    }
  } catch (const std::exception& e) {
    return fail(proto::error_codes::sandbox_failed, e.what());
  }
  if (args.image.empty() || report_fd < 0) {
    return fail(proto::error_codes::bad_arguments, "--image and --report are required");
  }
  sc::limits lim;
  if (!args.limits_json.empty()) {
    try {
      lim = nlohmann::json::parse(args.limits_json).get<sc::limits>();
    } catch (const std::exception& e) {
      return fail(proto::error_codes::bad_arguments, std::string("--limits: ") + e.what());
    }
  }
  sc::yara_library yara;
  std::shared_ptr<const sc::rule_set> rules;
  try {
    sc::compiled_rules compiled;
    if (!args.compiled_rules.empty()) {
      compiled = {sc::compiled_rules::mode::require, args.compiled_rules, args.compiled_rules_sha256};
    }
    rules = sc::rule_set::load(sc::rule_sources_for(args.rule_paths, args.hashsets), compiled);
  } catch (const sc::scan_error& e) {
    const bool mismatch = e.code() == sc::scan_errc::rules_mismatch;
    return fail(mismatch ? proto::error_codes::rules_mismatch : proto::error_codes::rules_invalid, e.what());
  }
  emit(proto::started_message{::getpid(), rules->info().digest});

  sc::scan_options opts;
  opts.jobs = args.jobs;
  opts.scan_id = args.scan_id;
  opts.station = args.station;
  opts.image_sha256 = args.image_sha256;
  opts.display_name = args.display_name;
  opts.spill = spill;
  opts.evidence = evidence;
  // Virtual disks found on the device and a decompressed image are spooled
  // there, through the descriptor the fence lets the worker create files under.
  opts.work_dir = args.work_dir;
  opts.work_dir_fd = scratch_dir_fd;
  opts.on_progress = [](const sc::scan_progress& p) {
    emit(proto::progress_message{p.files_done, p.files_found, p.bytes_done, p.bytes_total});
  };
  const sc::engine eng(lim, rules);
  const sc::report r = eng.scan(std::vector<std::filesystem::path>(args.image.begin(), args.image.end()), opts);
  if (evidence) {
    try {
      // On disk before the report that says what it holds.
      evidence->sync();
    } catch (const std::exception& e) {
      return fail(proto::error_codes::evidence_failed, args.evidence_pack_path + ": " + e.what());
    }
  }
  try {
    const sc::report_file_info written = sc::write_report_file(report_fd, r, args.max_report_bytes);
    ::close(report_fd);
    emit(proto::report_message{args.report_path, written.size, written.sha256});
  } catch (const std::exception& e) {
    return fail(proto::error_codes::report_failed, args.report_path + ": " + e.what());
  }
  return static_cast<int>(proto::worker_exit::ok);
}

}  // namespace

command_runner add_worker_command(CLI::App& app) {
  auto args = std::make_shared<proto::worker_invocation>();
  CLI::App* cmd = app.add_subcommand("worker", "Run one scan fenced in this process (used by borderscand)");
  proto::add_options(*cmd, *args);
  return [args] { return run_worker(*args); };
}

}  // namespace borderscan::cli
