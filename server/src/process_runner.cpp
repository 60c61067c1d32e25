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

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace borderscan::server {
namespace {

using steady = std::chrono::steady_clock;

struct fd_guard {
  int fd = -1;
  ~fd_guard() {
    if (fd >= 0) {
      ::close(fd);
    }
  }
};

std::string signal_name(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev != nullptr ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

// Only what the worker needs; sanitizer settings pass through for test builds.
std::vector<std::string> clean_environment() {
  std::vector<std::string> env = {"PATH=/usr/bin:/bin", "LANG=C.UTF-8", "TZ=UTC"};
  for (const char* name : {"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"}) {
    if (const char* v = std::getenv(name)) {
      env.push_back(std::string(name) + "=" + v);
    }
  }
  return env;
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

}  // namespace

process_runner::process_runner(process_runner_settings settings) : settings_(std::move(settings)) {}

scanner::report process_runner::run(const scan_request& request) {
  const scan_record& scan = request.scan;
  if (!std::filesystem::is_regular_file(scan.spool_path)) {
    throw std::runtime_error("spooled image is missing");
  }
  std::vector<std::string> args = {settings_.command.string(), "worker", "--image", scan.spool_path};
  for (const auto& p : settings_.rule_paths) {
    args.insert(args.end(), {"--rules", p.string()});
  }
  for (const auto& h : settings_.hashsets) {
    args.insert(args.end(), {"--hashset", h});
  }
  args.insert(args.end(),
              {"--limits", nlohmann::json(settings_.limits).dump(), "--scan-id", scan.id, "--station", scan.station,
               "--name", scan.filename.empty() ? scan.id + ".img" : scan.filename, "--jobs",
               std::to_string(settings_.scan_threads), "--memory-limit", std::to_string(settings_.memory_limit_bytes),
               "--cpu-limit", std::to_string(settings_.cpu_limit_seconds)});
  if (!scan.image_sha256.empty()) {
    args.insert(args.end(), {"--image-sha256", scan.image_sha256});
  }
  // The report's file entries wait on the spool disk, which is sized for images, not in memory.
  args.insert(args.end(), {"--spill-dir", std::filesystem::path(scan.spool_path).parent_path().string()});
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env = clean_environment();
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);

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
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    throw std::runtime_error("cannot start the scan worker " + settings_.command.string() + ": " + std::strerror(rc));
  }
  ::close(out_write.fd);
  out_write.fd = -1;

  const auto deadline = steady::now() + settings_.timeout;
  line_reader reader(out_read.fd, settings_.max_output_bytes);
  std::optional<nlohmann::json> report_json;
  std::string worker_error, malformed;
  bool killed_for_deadline = false, killed_for_cancel = false, eof = false;
  auto kill_child = [&] { ::kill(pid, SIGKILL); };

  while (!eof) {
    if (request.cancel.load()) {
      killed_for_cancel = true;
      kill_child();
      break;
    }
    if (steady::now() >= deadline) {
      killed_for_deadline = true;
      kill_child();
      break;
    }
    pollfd p{out_read.fd, POLLIN, 0};
    const int ready = ::poll(&p, 1, 200);
    if (ready <= 0) {
      continue;
    }
    std::vector<std::string> lines;
    eof = !reader.read_some(lines);
    for (const auto& line : lines) {
      // The worker parses hostile input: trust nothing it says.
      nlohmann::json msg = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (msg.is_discarded() || !msg.is_object() || !msg.contains("type") || !msg["type"].is_string()) {
        malformed = "a line that is not a JSON message";
        continue;
      }
      const std::string type = msg["type"];
      if (type == "progress") {
        scanner::scan_progress prog;
        prog.files_done = msg.value("files_done", std::uint64_t{0});
        prog.files_found = msg.value("files_found", std::uint64_t{0});
        prog.bytes_done = msg.value("bytes_done", std::uint64_t{0});
        prog.bytes_total = msg.value("bytes_total", std::uint64_t{0});
        if (request.on_progress) {
          request.on_progress(prog);
        }
      } else if (type == "report" && msg.contains("report")) {
        report_json = std::move(msg["report"]);
      } else if (type == "error") {
        worker_error = msg.value("message", std::string("unknown error"));
      }
    }
    if (reader.overflow()) {
      malformed = "output larger than " + std::to_string(settings_.max_output_bytes) + " bytes";
      kill_child();
      break;
    }
  }
  if (reader.has_partial_line() && malformed.empty() && !killed_for_cancel && !killed_for_deadline) {
    malformed = "output ends in the middle of a line";
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }

  if (killed_for_cancel) {
    throw std::runtime_error("cancelled");
  }
  if (killed_for_deadline) {
    throw scan_failed("timed out after " + std::to_string(settings_.timeout.count()) + " s");
  }
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    if (sig == SIGXCPU) {
      throw scan_failed("CPU time limit " + std::to_string(settings_.cpu_limit_seconds) + " s exceeded");
    }
    if (!malformed.empty()) {
      throw scan_failed("malformed worker output: " + malformed);
    }
    throw scan_failed("crashed: " + signal_name(sig));
  }
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (!malformed.empty()) {
    throw scan_failed("malformed worker output: " + malformed);
  }
  if (code != 0 || !report_json) {
    if (code == 3) {
      throw scan_failed("memory limit " + std::to_string(settings_.memory_limit_bytes) + " bytes exceeded");
    }
    if (!worker_error.empty()) {
      throw scan_failed("worker error: " + worker_error);
    }
    throw scan_failed("malformed worker output: exited with code " + std::to_string(code) + " without a report");
  }
  try {
    return report_json->get<scanner::report>();
  } catch (const std::exception& e) {
    throw scan_failed(std::string("malformed worker output: the report does not parse: ") + e.what());
  }
}

}  // namespace borderscan::server
