#include "borderscan/protocol/worker_protocol.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

namespace borderscan::protocol {
namespace {

using nlohmann::json;

// Every option once: name, member, help. Both directions walk this list.
template <class Invocation, class Visit>
void for_each_option(Invocation& w, Visit&& visit) {
  visit("--image", w.image, "Image file or segment, in order (repeatable)");
  visit("--rules", w.rule_paths, "YARA rule file or directory (repeatable; default: shipped rules/)");
  visit("--hashset", w.hashsets, "Hash-set file FILE[:known-good|:known-bad] (repeatable)");
  visit("--compiled-rules", w.compiled_rules, "Compiled YARA rules written by borderscand for these sources");
  visit("--compiled-rules-sha256", w.compiled_rules_sha256, "SHA-256 the compiled rules file must have");
  visit("--limits", w.limits_json, "Scan limits as a JSON object");
  visit("--scan-id", w.scan_id, "Scan id recorded in the report");
  visit("--station", w.station, "Station recorded in the report");
  visit("--image-sha256", w.image_sha256, "SHA-256 taken while the image was received");
  visit("--name", w.display_name, "Image name recorded in the report");
  visit("--work-dir", w.work_dir,
        "The scan's private work folder: the only place the fenced worker creates files (report-entry spill, "
        "scratch copies); default: none, the spill goes to $TMPDIR");
  visit("--report", w.report_path, "Report file to create (must not exist); its path, size and SHA-256 end the output");
  visit("--max-report-bytes", w.max_report_bytes, "Largest report file written (0 = no bound)");
  visit("--evidence-pack", w.evidence_pack_path,
        "Evidence pack to create (must not exist): flagged files' content is copied there");
  visit("--evidence-max-file-bytes", w.evidence_max_file_bytes,
        "Largest flagged file whose content is kept (0 = default, 64 MiB)");
  visit("--evidence-max-bytes-per-scan", w.evidence_max_bytes_per_scan,
        "Content kept per scan, all files together (0 = default, 1 GiB)");
  visit("-j,--jobs", w.jobs, "Worker threads (default: number of cores)");
  visit("--memory-limit", w.memory_limit, "Address-space limit in bytes (RLIMIT_AS; 0 = none)");
  visit("--cpu-limit", w.cpu_limit, "CPU-time limit in seconds (RLIMIT_CPU; 0 = none)");
  visit("--parent-pid", w.parent_pid, "Exit at once if this process is gone, and die when it dies");
  visit("--no-seccomp", w.no_seccomp, "Install neither Landlock nor the seccomp filter (debugging only)");
  visit("--check-sandbox", w.check_sandbox,
        "Install the fence, try each class of denied call and the allowed scratch-file operations, print one line "
        "each; exit 0 only when all are as they should be");
}

// "-j,--jobs" -> "--jobs": the long name is what the daemon writes.
std::string long_name(std::string_view names) {
  return std::string(names.substr(names.rfind(',') + 1));
}

template <class T>
bool get(const json& j, const char* key, T& out) {
  const auto it = j.find(key);
  if (it == j.end()) {
    return false;
  }
  if constexpr (std::is_same_v<T, std::string>) {
    if (!it->is_string()) {
      return false;
    }
  } else {
    if (!it->is_number_integer() && !it->is_number_unsigned()) {
      return false;
    }
    if constexpr (std::is_unsigned_v<T>) {
      if (it->is_number_integer() && it->template get<std::int64_t>() < 0) {
        return false;
      }
    }
  }
  out = it->template get<T>();
  return true;
}

}  // namespace

std::string encode(const message& m) {
  json j = std::visit(
      [](const auto& msg) -> json {
        using T = std::decay_t<decltype(msg)>;
        if constexpr (std::is_same_v<T, started_message>) {
          return {{"type", "started"}, {"pid", msg.pid}, {"ruleset", msg.ruleset}};
        } else if constexpr (std::is_same_v<T, progress_message>) {
          return {{"type", "progress"},
                  {"files_done", msg.files_done},
                  {"files_found", msg.files_found},
                  {"bytes_done", msg.bytes_done},
                  {"bytes_total", msg.bytes_total}};
        } else if constexpr (std::is_same_v<T, report_message>) {
          return {{"type", "report"}, {"path", msg.path}, {"size", msg.size}, {"sha256", msg.sha256}};
        } else {
          return {{"type", "error"}, {"code", msg.code}, {"message", msg.message}};
        }
      },
      m);
  // Messages carry file names and library text: never let bad UTF-8 throw.
  return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

std::optional<message> decode(std::string_view line) {
  const json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
  std::string type;
  if (j.is_discarded() || !j.is_object() || !get(j, "type", type)) {
    return std::nullopt;
  }
  if (type == "started") {
    started_message m;
    if (get(j, "pid", m.pid) && get(j, "ruleset", m.ruleset)) {
      return m;
    }
  } else if (type == "progress") {
    progress_message m;
    if (get(j, "files_done", m.files_done) && get(j, "files_found", m.files_found) &&
        get(j, "bytes_done", m.bytes_done) && get(j, "bytes_total", m.bytes_total)) {
      return m;
    }
  } else if (type == "report") {
    report_message m;
    if (get(j, "path", m.path) && get(j, "size", m.size) && get(j, "sha256", m.sha256)) {
      return m;
    }
  } else if (type == "error") {
    error_message m;
    if (get(j, "code", m.code) && get(j, "message", m.message)) {
      return m;
    }
  }
  return std::nullopt;
}

std::vector<std::string> to_arguments(const worker_invocation& w) {
  std::vector<std::string> args;
  for_each_option(w, [&](std::string_view names, const auto& value, const char*) {
    using T = std::decay_t<decltype(value)>;
    const std::string name = long_name(names);
    if constexpr (std::is_same_v<T, std::vector<std::string>>) {
      for (const auto& v : value) {
        args.insert(args.end(), {name, v});
      }
    } else if constexpr (std::is_same_v<T, std::string>) {
      if (!value.empty()) {
        args.insert(args.end(), {name, value});
      }
    } else if constexpr (std::is_same_v<T, bool>) {
      if (value) {
        args.push_back(name);
      }
    } else if (value != 0) {
      args.insert(args.end(), {name, std::to_string(value)});
    }
  });
  return args;
}

void add_options(CLI::App& command, worker_invocation& into) {
  for_each_option(into, [&](std::string_view names, auto& value, const char* help) {
    using T = std::decay_t<decltype(value)>;
    if constexpr (std::is_same_v<T, bool>) {
      command.add_flag(std::string(names), value, help);
    } else {
      command.add_option(std::string(names), value, help);
    }
  });
}

}  // namespace borderscan::protocol
