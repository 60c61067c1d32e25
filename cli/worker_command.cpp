// `borderscan worker`: one scan in its own fenced process, for the daemon.
// It speaks newline-delimited JSON on stdout: "started", "progress" lines,
// then one "report" line, or one "error" line (exit 2). Logs go to stderr.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <exception>
#include <new>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <mutex>

#include "borderscan/sandbox/sandbox.hpp"
#include "borderscan/scanner/engine.hpp"
#include "borderscan/scanner/error.hpp"
#include "commands.hpp"

namespace borderscan::cli {
namespace {

namespace sc = borderscan::scanner;

struct worker_args {
  std::vector<std::string> image;
  std::vector<std::string> rules;
  std::vector<std::string> hashsets;
  std::string limits_json;
  std::string scan_id, station, image_sha256, display_name;
  std::string spill_dir;
  unsigned jobs = 0;
  std::uint64_t memory_limit = 0;
  std::uint64_t cpu_limit = 0;
  bool no_seccomp = false;
  bool check_sandbox = false;
};

std::mutex out_mutex;

// One JSON document per line; the daemon reads them as they come.
void emit(const nlohmann::json& line) {
  const std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  std::lock_guard lock(out_mutex);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

int fail(const std::string& code, const std::string& message) {
  emit({{"type", "error"}, {"code", code}, {"message", message}});
  return 2;
}

std::string errno_name(int err) {
  return err == 0 ? "ok" : err == EPERM ? "EPERM" : std::strerror(err);
}

// Shows the filter at work: each forbidden call must fail with EPERM.
int check_sandbox() {
  sandbox::install_filter();
  nlohmann::json result;
  errno = 0;
  const int s = ::socket(AF_INET, SOCK_STREAM, 0);
  result["socket"] = errno_name(s >= 0 ? 0 : errno);
  errno = 0;
  const int w = ::open("/tmp/borderscan-sandbox-probe", O_WRONLY | O_CREAT | O_TRUNC, 0600);
  result["open_write"] = errno_name(w >= 0 ? 0 : errno);
  errno = 0;
  const int r = ::open("/proc/self/status", O_RDONLY);
  result["open_read"] = errno_name(r >= 0 ? 0 : errno);
  if (r >= 0) {
    ::close(r);
  }
  errno = 0;
  char* const argv[] = {const_cast<char*>("/bin/true"), nullptr};
  const int e = ::execv("/bin/true", argv);
  result["exec"] = errno_name(e == 0 ? 0 : errno);
  emit({{"type", "sandbox"}, {"result", result}});
  const bool ok = result["socket"] == "EPERM" && result["open_write"] == "EPERM" && result["exec"] == "EPERM" &&
                  result["open_read"] == "ok";
  return ok ? 0 : 1;
}

// Out of memory under RLIMIT_AS surfaces as std::bad_alloc, possibly on a
// scanner thread: say so on the pipe, then end with exit code 3.
[[noreturn]] void on_terminate() {
  const char* line = R"json({"type":"error","code":"memory_limit","message":"out of memory (address-space limit)"})json"
                     "\n";
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
    [[maybe_unused]] const auto n = ::write(STDOUT_FILENO, line, std::strlen(line));
    ::_exit(3);
  }
  std::abort();
}

int run_worker(const worker_args& args) {
  std::set_terminate(on_terminate);
  // Opened before the filter, which forbids opening files for writing.
  std::string spill_error;
  // It holds what memory would otherwise: the same budget bounds it.
  const auto spill = sc::file_spill::open_in(args.spill_dir, args.memory_limit, spill_error);
  if (!spill) {
    std::fprintf(stderr, "borderscan worker: report entries stay in memory: %s\n", spill_error.c_str());
  }
  try {
    sandbox::resource_limits rl;
#if defined(__SANITIZE_ADDRESS__)
    // AddressSanitizer reserves terabytes of address space: RLIMIT_AS would stop it cold.
    rl.address_space_bytes = 0;
#else
    rl.address_space_bytes = args.memory_limit;
#endif
    rl.cpu_seconds = args.cpu_limit;
    sandbox::apply_limits(rl);
    if (args.check_sandbox) {
      return check_sandbox();
    }
    if (!args.no_seccomp) {
      // Everything from here on only reads files and writes to stdout/stderr.
      sandbox::install_filter();
    }
  } catch (const std::exception& e) {
    return fail("sandbox_failed", e.what());
  }
  if (args.image.empty()) {
    return fail("bad_arguments", "no image given");
  }
  sc::limits lim;
  if (!args.limits_json.empty()) {
    try {
      lim = nlohmann::json::parse(args.limits_json).get<sc::limits>();
    } catch (const std::exception& e) {
      return fail("bad_arguments", std::string("--limits: ") + e.what());
    }
  }
  sc::yara_library yara;
  sc::rule_sources sources;
  if (args.rules.empty()) {
    sources.rule_paths.push_back(sc::default_rules_dir());
  }
  for (const auto& p : args.rules) sources.rule_paths.emplace_back(p);
  for (const auto& h : args.hashsets) sources.hashsets.push_back(sc::parse_hashset_arg(h));
  std::shared_ptr<const sc::rule_set> rules;
  try {
    rules = sc::rule_set::load(sources);
  } catch (const sc::scan_error& e) {
    return fail("rules_invalid", e.what());
  }
  emit({{"type", "started"}, {"pid", ::getpid()}, {"ruleset", rules->info().digest}});

  sc::scan_options opts;
  opts.jobs = args.jobs;
  opts.scan_id = args.scan_id;
  opts.station = args.station;
  opts.image_sha256 = args.image_sha256;
  opts.display_name = args.display_name;
  opts.spill = spill;
  opts.on_progress = [](const sc::scan_progress& p) {
    emit({{"type", "progress"},
          {"files_done", p.files_done},
          {"files_found", p.files_found},
          {"bytes_done", p.bytes_done},
          {"bytes_total", p.bytes_total}});
  };
  const sc::engine eng(lim, rules);
  const sc::report r = eng.scan(std::vector<std::filesystem::path>(args.image.begin(), args.image.end()), opts);
  {
    // Streamed: the report line can be large, and is never held twice.
    std::lock_guard lock(out_mutex);
    std::cout << R"({"type":"report","report":)";
    sc::write_report(std::cout, r, /*pretty=*/false);
    std::cout << "}\n" << std::flush;
  }
  return 0;
}

}  // namespace

command_runner add_worker_command(CLI::App& app) {
  auto args = std::make_shared<worker_args>();
  CLI::App* cmd = app.add_subcommand("worker", "Run one scan fenced in this process (used by borderscand)");
  cmd->add_option("--image", args->image, "Image file or segment, in order (repeatable)");
  cmd->add_option("--rules", args->rules, "YARA rule file or directory (repeatable; default: shipped rules/)");
  cmd->add_option("--hashset", args->hashsets, "Hash-set file FILE[:known-good|:known-bad] (repeatable)");
  cmd->add_option("--limits", args->limits_json, "Scan limits as a JSON object");
  cmd->add_option("--scan-id", args->scan_id, "Scan id recorded in the report");
  cmd->add_option("--station", args->station, "Station recorded in the report");
  cmd->add_option("--image-sha256", args->image_sha256, "SHA-256 taken while the image was received");
  cmd->add_option("--name", args->display_name, "Image name recorded in the report");
  cmd->add_option("-j,--jobs", args->jobs, "Worker threads (default: number of cores)");
  cmd->add_option("--spill-dir", args->spill_dir,
                  "Folder for the unlinked temporary file that holds report entries (default: $TMPDIR or /tmp)");
  cmd->add_option("--memory-limit", args->memory_limit, "Address-space limit in bytes (RLIMIT_AS; 0 = none)");
  cmd->add_option("--cpu-limit", args->cpu_limit, "CPU-time limit in seconds (RLIMIT_CPU; 0 = none)");
  cmd->add_flag("--no-seccomp", args->no_seccomp, "Do not install the seccomp filter (debugging only)");
  cmd->add_flag("--check-sandbox", args->check_sandbox,
                "Install the filter, try a socket, an open for writing and an exec, print the results");
  return [args] { return run_worker(*args); };
}

}  // namespace borderscan::cli
