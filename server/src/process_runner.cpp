#include "borderscan/server/process_runner.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <stdexcept>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "borderscan/protocol/worker_protocol.hpp"
#include "borderscan/sandbox/work_folder.hpp"

namespace borderscan::server {
namespace {

namespace proto = borderscan::protocol;
using steady = std::chrono::steady_clock;

struct fd_guard {
  int fd = -1;
  ~fd_guard() {
    if (fd >= 0) {
      ::close(fd);
    }
  }
};

// A started worker: killed (if it still runs) and reaped on every way out of
// the scope, so that no worker outlives its scan and none is left a zombie.
class child_process {
 public:
  explicit child_process(pid_t pid) : pid_(pid) {}
  ~child_process() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      wait();
    }
  }
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  void kill() const { ::kill(pid_, SIGKILL); }
  // Reaps the child; its wait status.
  int wait() {
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    return status;
  }

 private:
  pid_t pid_;
};

std::string signal_name(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev != nullptr ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

// Only what the worker needs; sanitizer settings pass through for test builds,
// and the switch that names calls the seccomp filter denies (sandbox.hpp).
std::vector<std::string> clean_environment() {
  std::vector<std::string> env = {"PATH=/usr/bin:/bin", "LANG=C.UTF-8", "TZ=UTC"};
  for (const char* name : {"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "BORDERSCAN_SECCOMP_LOG"}) {
    if (const char* v = std::getenv(name)) {
      env.push_back(std::string(name) + "=" + v);
    }
  }
  return env;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) {
    out.push_back(s.data());
  }
  out.push_back(nullptr);
  return out;
}

// Reads the child's output line by line, never more than `limit` bytes.
class line_reader {
 public:
  line_reader(int fd, std::uint64_t limit) : fd_(fd), limit_(limit) {}
  // Appends complete lines to `lines`; returns false at end of stream.
  bool read_some(std::vector<std::string>& lines) {
    char buf[65536];
    const ssize_t n = ::read(fd_, buf, sizeof buf);
    if (n < 0) {
      return errno == EINTR || errno == EAGAIN;
    }
    if (n == 0) {
      return false;
    }
    total_ += static_cast<std::uint64_t>(n);
    if (total_ > limit_) {
      overflow_ = true;
      return false;
    }
    pending_.append(buf, static_cast<std::size_t>(n));
    std::size_t start = 0;
    for (std::size_t nl; (nl = pending_.find('\n', start)) != std::string::npos; start = nl + 1) {
      lines.emplace_back(pending_, start, nl - start);
    }
    pending_.erase(0, start);
    return true;
  }
  bool overflow() const { return overflow_; }
  bool has_partial_line() const { return !pending_.empty(); }

 private:
  int fd_;
  std::uint64_t limit_;
  std::uint64_t total_ = 0;
  std::string pending_;
  bool overflow_ = false;
};

// What the worker said, as far as it was believed.
struct worker_output {
  std::optional<std::string> loaded_ruleset;
  std::optional<proto::report_message> report;
  std::optional<proto::error_message> error;
  std::string malformed;  // why its output cannot be trusted; empty: it can
  std::string mismatch;   // the rule set it loaded is not the daemon's
};

// How the wait for the worker ended.
enum class ending { exited, cancelled, timed_out, refused };

}  // namespace

std::filesystem::path work_root_for(const std::filesystem::path& spool_dir) {
  return spool_dir / "work";
}

std::filesystem::path work_folder_for(const scan_record& scan) {
  return work_root_for(std::filesystem::path(scan.spool_path).parent_path()) / scan.id;
}

process_runner::process_runner(process_runner_settings settings) : settings_(std::move(settings)) {}

report_file process_runner::run(const scan_request& request) {
  const scan_record& scan = request.scan;
  if (!std::filesystem::is_regular_file(scan.spool_path)) {
    throw std::runtime_error("spooled image is missing");
  }
  // Taken once: the rule set of this scan, whatever reloads follow.
  const rules_snapshot rules = settings_.rules != nullptr ? settings_.rules->snapshot() : rules_snapshot{};
  const std::string expected_ruleset = rules.rules ? rules.rules->info().digest : std::string();
  const std::filesystem::path report_path = report_path_for(scan);
  std::error_code ignored;
  std::filesystem::remove(report_path, ignored);  // an earlier attempt's

  proto::worker_invocation w;
  w.image = {scan.spool_path};
  for (const auto& p : settings_.rule_paths) {
    w.rule_paths.push_back(p.string());
  }
  w.hashsets = settings_.rules != nullptr ? rules.hashset_args : settings_.hashsets;
  if (!rules.compiled.empty()) {
    w.compiled_rules = rules.compiled.string();
    w.compiled_rules_sha256 = rules.compiled_sha256;
  }
  w.limits_json = nlohmann::json(settings_.limits).dump();
  w.scan_id = scan.id;
  w.station = scan.station;
  w.image_sha256 = scan.image_sha256;
  w.display_name = scan.filename.empty() ? scan.id + ".img" : scan.filename;
  // The only folder the fenced worker may create files in, on the spool disk (sized for
  // images): the report-entry spill and scratch copies. Gone when this attempt ends.
  const sandbox::work_folder work(work_folder_for(scan));
  w.work_dir = work.path().string();
  w.report_path = report_path.string();
  std::filesystem::path evidence_pack;
  if (settings_.evidence) {
    evidence_pack = evidence_pack_path_for(scan);
    std::filesystem::remove(evidence_pack, ignored);  // an earlier attempt's
    w.evidence_pack_path = evidence_pack.string();
    w.evidence_max_file_bytes = settings_.evidence->max_file_bytes;
    w.evidence_max_bytes_per_scan = settings_.evidence->max_bytes_per_scan;
  }
  w.max_report_bytes = settings_.worker.max_output_bytes;
  w.jobs = settings_.scan_threads;
  w.memory_limit = settings_.worker.memory_limit_bytes;
  w.cpu_limit = settings_.worker.cpu_limit_seconds;
  w.parent_pid = ::getpid();

  std::vector<std::string> args = {settings_.command.string(), "worker"};
  for (auto& a : proto::to_arguments(w)) {
    args.push_back(std::move(a));
  }
  std::vector<char*> argv = c_strings(args);
  std::vector<std::string> env = clean_environment();
  std::vector<char*> envp = c_strings(env);

  int out_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
    throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  }
  fd_guard out_read{out_pipe[0]}, out_write{out_pipe[1]};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  // Sockets, the database and other uploads' spool files stay in the daemon.
  posix_spawn_file_actions_addclosefrom_np(&actions, STDERR_FILENO + 1);
  // The daemon blocks its stop and reload signals for sigwait; the worker
  // starts with none blocked, so a signal meant for it is not held back.
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK);
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, argv[0], &actions, &attributes, argv.data(), envp.data());
  posix_spawnattr_destroy(&attributes);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    throw std::runtime_error("cannot start the scan worker " + settings_.command.string() + ": " + std::strerror(rc));
  }
  child_process child(pid);
  ::close(out_write.fd);
  out_write.fd = -1;

  const auto timeout = settings_.worker.deadline(settings_.limits);
  const auto deadline = steady::now() + timeout;
  line_reader reader(out_read.fd, settings_.worker.max_output_bytes);
  worker_output said;
  ending how = ending::exited;
  for (bool eof = false; !eof;) {
    if (request.cancel.load()) {
      how = ending::cancelled;
      break;
    }
    if (steady::now() >= deadline) {
      how = ending::timed_out;
      break;
    }
    pollfd p{out_read.fd, POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) {
      continue;
    }
    std::vector<std::string> lines;
    eof = !reader.read_some(lines);
    for (const auto& line : lines) {
      const auto msg = proto::decode(line);
      if (!msg) {
        said.malformed = "a line that is not a JSON message";
      } else if (const auto* started = std::get_if<proto::started_message>(&*msg)) {
        said.loaded_ruleset = started->ruleset;
        if (!expected_ruleset.empty() && started->ruleset != expected_ruleset) {
          said.mismatch = "the worker loaded rule set " + started->ruleset + ", the daemon holds " + expected_ruleset;
        }
      } else if (const auto* progress = std::get_if<proto::progress_message>(&*msg)) {
        if (request.on_progress) {
          request.on_progress(
              {progress->files_done, progress->files_found, progress->bytes_done, progress->bytes_total, false});
        }
      } else if (const auto* report = std::get_if<proto::report_message>(&*msg)) {
        said.report = *report;
      } else {
        said.error = std::get<proto::error_message>(*msg);
      }
    }
    if (!said.mismatch.empty()) {
      how = ending::refused;  // a report from other rules must not be stored under these
      break;
    }
    if (reader.overflow()) {
      said.malformed = "output larger than " + std::to_string(settings_.worker.max_output_bytes) + " bytes";
      how = ending::refused;
      break;
    }
  }
  if (how != ending::exited) {
    child.kill();
  }
  const int status = child.wait();
  if (reader.has_partial_line() && said.malformed.empty() && how == ending::exited) {
    said.malformed = "output ends in the middle of a line";
  }

  if (how == ending::cancelled) {
    throw std::runtime_error("cancelled");
  }
  if (how == ending::timed_out) {
    throw scan_failed("timed out after " + std::to_string(timeout.count()) + " s");
  }
  if (!said.mismatch.empty()) {
    throw scan_failed("rule-set digest mismatch: " + said.mismatch);
  }
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    if (sig == SIGXCPU) {
      throw scan_failed("CPU time limit " + std::to_string(settings_.worker.cpu_limit_seconds) + " s exceeded");
    }
    if (!said.malformed.empty()) {
      throw scan_failed("malformed worker output: " + said.malformed);
    }
    if (sig == SIGKILL) {
      // Not the daemon's kill (those end above) nor a fault of the worker's
      // own: an operator, or the kernel out of memory. Worth another try,
      // counted against jobs.max_attempts.
      throw std::runtime_error("worker killed by SIGKILL");
    }
    throw scan_failed("crashed: " + signal_name(sig));
  }
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (!said.malformed.empty()) {
    throw scan_failed("malformed worker output: " + said.malformed);
  }
  if (code == static_cast<int>(proto::worker_exit::out_of_memory)) {
    throw scan_failed("memory limit " + std::to_string(settings_.worker.memory_limit_bytes) + " bytes exceeded");
  }
  if (said.error) {
    if (said.error->code == proto::error_codes::rules_mismatch) {
      throw scan_failed("rule-set digest mismatch: " + said.error->message);
    }
    throw scan_failed("worker error: " + said.error->message);
  }
  if (code != static_cast<int>(proto::worker_exit::ok) || !said.report || !said.loaded_ruleset) {
    throw scan_failed("malformed worker output: exited with code " + std::to_string(code) + " without a report");
  }
  if (said.report->path != report_path.string()) {
    throw scan_failed("malformed worker output: a report at " + said.report->path + ", not where it was asked for");
  }
  return {report_path, said.report->size, said.report->sha256, *said.loaded_ruleset, evidence_pack};
}

}  // namespace borderscan::server
