#include "borderscan/scanner/report.hpp"

#include <ostream>

#include "borderscan/scanner/text.hpp"

namespace borderscan::scanner {
namespace {

template <class T>
nlohmann::json optional_json(const std::optional<T>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

nlohmann::json time_json(const std::optional<std::int64_t>& t) {
  if (!t) {
    return nullptr;
  }
  std::string s = iso8601(*t);
  return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(std::move(s));
}

nlohmann::json string_or_null(const std::string& s) {
  return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s);
}

std::string iso8601_ms(std::int64_t unix_ms) {
  std::string s = iso8601(unix_ms / 1000);
  if (s.size() > 1) {
    char frac[8];
    std::snprintf(frac, sizeof frac, ".%03lldZ", static_cast<long long>(unix_ms % 1000));
    s.pop_back();
    s += frac;
  }
  return s;
}

}  // namespace

const char* to_string(severity s) noexcept {
  switch (s) {
    case severity::info:
      return "info";
    case severity::low:
      return "low";
    case severity::medium:
      return "medium";
    case severity::high:
      return "high";
    case severity::critical:
      return "critical";
  }
  return "medium";
}

std::optional<severity> parse_severity(std::string_view text) noexcept {
  if (text == "info" || text == "informational") return severity::info;
  if (text == "low") return severity::low;
  if (text == "medium" || text == "moderate") return severity::medium;
  if (text == "high") return severity::high;
  if (text == "critical") return severity::critical;
  return std::nullopt;
}

severity severity_from_score(long long score) noexcept {
  if (score < 20) return severity::info;
  if (score < 40) return severity::low;
  if (score < 60) return severity::medium;
  if (score < 80) return severity::high;
  return severity::critical;
}

const char* to_string(verdict v) noexcept {
  switch (v) {
    case verdict::clean:
      return "clean";
    case verdict::flagged:
      return "flagged";
    case verdict::incomplete:
      return "incomplete";
    case verdict::error:
      return "error";
  }
  return "error";
}

void to_json(nlohmann::json& j, const finding& f) {
  j = nlohmann::json{{"path", f.path},
                     {"volume", optional_json(f.volume)},
                     {"source", f.source},
                     {"rule", f.rule},
                     {"namespace", f.rule_namespace},
                     {"severity", to_string(f.level)},
                     {"tags", f.tags},
                     {"meta", f.meta}};
}

void to_json(nlohmann::json& j, const file_entry& f) {
  j = nlohmann::json{{"path", f.path},
                     {"volume", f.volume},
                     {"inode", optional_json(f.inode)},
                     {"size", optional_json(f.size)},
                     {"deleted", f.deleted},
                     {"type", f.type},
                     {"mtime", time_json(f.times.mtime)},
                     {"atime", time_json(f.times.atime)},
                     {"ctime", time_json(f.times.ctime)},
                     {"crtime", time_json(f.times.crtime)},
                     {"mime", string_or_null(f.mime)},
                     {"description", string_or_null(f.description)},
                     {"md5", string_or_null(f.md5)},
                     {"sha1", string_or_null(f.sha1)},
                     {"sha256", string_or_null(f.sha256)},
                     {"bytes_read", f.bytes_read},
                     {"content_complete", f.content_complete},
                     {"skipped", optional_json(f.skipped)},
                     {"known", f.known},
                     {"extension_mismatch", f.extension_mismatch},
                     {"container", optional_json(f.container)},
                     {"depth", f.depth},
                     {"findings", f.findings}};
}

void to_json(nlohmann::json& j, const volume_entry& v) {
  j = nlohmann::json{{"index", v.index},
                     {"scheme", v.scheme},
                     {"offset", v.offset},
                     {"length", v.length},
                     {"description", v.description},
                     {"filesystem", optional_json(v.filesystem)},
                     {"label", optional_json(v.label)},
                     {"error", optional_json(v.error)},
                     {"notes", v.notes},
                     {"files", v.files}};
}

void to_json(nlohmann::json& j, const error_entry& e) {
  j = nlohmann::json{{"path", e.path},       {"volume", optional_json(e.volume)},
                     {"stage", e.stage},     {"code", e.code},
                     {"message", e.message}, {"affects_verdict", e.affects_verdict}};
}

void to_json(nlohmann::json& j, const limit_hit& l) {
  j = nlohmann::json{{"limit", l.limit}, {"value", l.value}, {"path", l.path}, {"volume", optional_json(l.volume)}};
}

void to_json(nlohmann::json& j, const ruleset_info& r) {
  nlohmann::json sets = nlohmann::json::array();
  for (const auto& s : r.hashsets) {
    sets.push_back({{"name", s.name}, {"kind", s.kind}, {"entries", s.entries}});
  }
  j = nlohmann::json{
      {"digest", r.digest}, {"yara_rules", r.yara_rules}, {"yara_files", r.yara_files}, {"hashsets", sets}};
}

void to_json(nlohmann::json& j, const image_info& i) {
  j = nlohmann::json{
      {"name", i.name}, {"size", i.size}, {"sha256", i.sha256}, {"format", i.format}, {"segments", i.segments}};
}

void to_json(nlohmann::json& j, const scan_summary& s) {
  j = nlohmann::json{{"files", s.files},    {"directories", s.directories},     {"deleted", s.deleted},
                     {"bytes", s.bytes},    {"flagged_files", s.flagged_files}, {"findings", s.findings},
                     {"errors", s.errors},  {"limits_hit", s.limits_hit},       {"by_mime", s.by_mime},
                     {"by_type", s.by_type}};
}

void to_json(nlohmann::json& j, const report& r) {
  j = nlohmann::json{{"schema", report_schema_id},
                     {"scan_id", r.scan_id},
                     {"station", r.station},
                     {"scanner_version", r.scanner_version},
                     {"started_at", iso8601_ms(r.started_at)},
                     {"finished_at", iso8601_ms(r.finished_at)},
                     {"timings", {{"duration_ms", r.duration_ms}}},
                     {"image", r.image},
                     {"ruleset", r.ruleset},
                     {"volumes", r.volumes},
                     {"summary", r.summary},
                     {"verdict", to_string(r.result)},
                     {"verdict_reason", r.verdict_reason},
                     {"score", r.score},
                     {"findings", r.findings},
                     {"files", r.files},
                     {"errors", r.errors},
                     {"warnings", r.warnings},
                     {"limits_hit", r.limits_hit},
                     {"reviews", nlohmann::json::array()}};
}

}  // namespace borderscan::scanner

namespace borderscan::scanner {

void write_report(std::ostream& out, const report& r, bool pretty) {
  // The small part as a tree; the large arrays are spliced in element by element.
  nlohmann::json head;
  {
    report shell;
    shell.scan_id = r.scan_id;
    shell.station = r.station;
    shell.scanner_version = r.scanner_version;
    shell.started_at = r.started_at;
    shell.finished_at = r.finished_at;
    shell.duration_ms = r.duration_ms;
    shell.image = r.image;
    shell.ruleset = r.ruleset;
    shell.volumes = r.volumes;
    shell.errors = r.errors;
    shell.warnings = r.warnings;
    shell.limits_hit = r.limits_hit;
    shell.summary = r.summary;
    shell.result = r.result;
    shell.verdict_reason = r.verdict_reason;
    shell.score = r.score;
    head = shell;
  }
  const auto dump = [](const nlohmann::json& j) {
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  };
  const char* nl = pretty ? "\n" : "";
  const char* indent = pretty ? "  " : "";
  const char* item_indent = pretty ? "    " : "";
  auto stream_array = [&](const auto& items) {
    out << "[";
    bool first = true;
    for (const auto& item : items) {
      out << (first ? "" : ",") << nl << item_indent << dump(nlohmann::json(item));
      first = false;
    }
    out << (first ? "" : nl) << (first ? "" : indent) << "]";
  };
  // Keys in the order nlohmann::json (a sorted map) writes them.
  out << "{" << nl;
  bool first = true;
  for (const auto& [key, value] : head.items()) {
    out << (first ? "" : ",") << (first ? "" : nl) << indent << dump(key) << ":" << (pretty ? " " : "");
    first = false;
    if (key == "files") {
      stream_array(r.files);
    } else if (key == "findings") {
      stream_array(r.findings);
    } else {
      out << dump(value);
    }
  }
  out << nl << "}";
}

}  // namespace borderscan::scanner
