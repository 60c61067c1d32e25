#include "borderscan/scanner/report.hpp"

#include <ctime>
#include <ostream>
#include <stdexcept>

#include "borderscan/scanner/digest.hpp"
#include "borderscan/scanner/file_spill.hpp"
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

std::string finding_id(const finding& f) {
  const nlohmann::json key = {optional_json(f.volume), f.path, f.source, f.rule_namespace, f.rule};
  return sha256_hex(report_element_text(key)).substr(0, 32);
}

void to_json(nlohmann::json& j, const string_match& m) {
  j = nlohmann::json{
      {"identifier", m.identifier}, {"offset", m.offset}, {"length", m.length}, {"text", m.text}, {"hex", m.hex}};
}

void to_json(nlohmann::json& j, const score_reason& r) {
  j = nlohmann::json{{"finding", r.finding},           {"path", r.path},    {"rule", r.rule}, {"source", r.source},
                     {"severity", to_string(r.level)}, {"points", r.points}};
}

void to_json(nlohmann::json& j, const finding& f) {
  j = nlohmann::json{{"id", finding_id(f)},
                     {"path", f.path},
                     {"volume", optional_json(f.volume)},
                     {"source", f.source},
                     {"rule", f.rule},
                     {"namespace", f.rule_namespace},
                     {"severity", to_string(f.level)},
                     {"tags", f.tags},
                     {"meta", f.meta}};
  if (f.source == "yara") {
    j["matches"] = f.matches;
    j["match_count"] = f.match_count;
  }
  if (f.deleted) {
    j["deleted"] = true;
  }
}

void to_json(nlohmann::json& j, const evidence_note& e) {
  j = nlohmann::json{{"kept", e.kept}};
  if (!e.kept) {
    j["reason"] = e.reason;
  }
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
                     {"findings", f.findings},
                     {"evidence", optional_json(f.evidence)}};
}

void to_json(nlohmann::json& j, const volume_encryption& e) {
  j = nlohmann::json{{"type", e.type},
                     {"detected_by", e.detected_by},
                     {"cipher", optional_json(e.cipher)},
                     {"identifiers", e.identifiers},
                     {"key_protectors", e.key_protectors},
                     {"notes", e.notes}};
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
                     {"files", v.files},
                     {"encryption", optional_json(v.encryption)},
                     {"unallocated", optional_json(v.unallocated)}};
}

void to_json(nlohmann::json& j, const unallocated_space& u) {
  j = nlohmann::json{{"bytes", u.bytes}, {"scanned_bytes", u.scanned_bytes}};
}

void to_json(nlohmann::json& j, const gap_entry& g) {
  j = nlohmann::json{{"offset", g.offset},
                     {"length", g.length},
                     {"after_volume", optional_json(g.after_volume)},
                     {"before_volume", optional_json(g.before_volume)},
                     {"content", g.content},
                     {"scanned_bytes", g.scanned_bytes}};
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

void to_json(nlohmann::json& j, const media_info& m) {
  j = nlohmann::json{{"size", m.size},
                     {"sha256", m.sha256},
                     {"md5", optional_json(m.md5)},
                     {"sha1", optional_json(m.sha1)},
                     {"stored_md5", optional_json(m.stored_md5)},
                     {"stored_sha1", optional_json(m.stored_sha1)},
                     {"acquisition_verified", optional_json(m.acquisition_verified)}};
}

void to_json(nlohmann::json& j, const image_info& i) {
  j = nlohmann::json{{"name", i.name},
                     {"size", i.size},
                     {"sha256", i.sha256},
                     {"format", i.format},
                     {"segments", i.segments},
                     {"compression", optional_json(i.compression)},
                     {"media_sha256", i.media_sha256.empty() ? nlohmann::json() : nlohmann::json(i.media_sha256)},
                     {"media", optional_json(i.media)}};
}

void to_json(nlohmann::json& j, const scan_summary& s) {
  j = nlohmann::json{{"files", s.files},           {"directories", s.directories},
                     {"deleted", s.deleted},       {"deleted_directories", s.deleted_directories},
                     {"bytes", s.bytes},           {"flagged_files", s.flagged_files},
                     {"findings", s.findings},     {"errors", s.errors},
                     {"limits_hit", s.limits_hit}, {"by_mime", s.by_mime},
                     {"by_type", s.by_type}};
}

void to_json(nlohmann::json& j, const report& r) {
  j = nlohmann::json{{"schema", report_schema_id},
                     {"scan_id", r.scan_id},
                     {"station", r.station},
                     {"scanner_version", r.scanner_version},
                     {"libraries", r.libraries},
                     {"started_at", iso8601_ms(r.started_at)},
                     {"finished_at", iso8601_ms(r.finished_at)},
                     {"timings", {{"duration_ms", r.duration_ms}}},
                     {"image", r.image},
                     {"ruleset", r.ruleset},
                     {"volumes", r.volumes},
                     {"gaps", r.gaps},
                     {"summary", r.summary},
                     {"verdict", to_string(r.result)},
                     {"verdict_reason", r.verdict_reason},
                     {"score", r.score},
                     {"score_reasons", r.score_reasons},
                     {"findings", r.findings},
                     {"files", r.spilled_files ? r.spilled_files->load(r.files) : r.files},
                     {"errors", r.errors},
                     {"warnings", r.warnings},
                     {"limits_hit", r.limits_hit},
                     {"reviews", nlohmann::json::array()}};
}

}  // namespace borderscan::scanner

namespace borderscan::scanner {

std::string report_element_text(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void write_report(std::ostream& out, const report& r, bool pretty) {
  // The small part as a tree; the large arrays are spliced in element by element.
  nlohmann::json head;
  {
    report shell;
    shell.scan_id = r.scan_id;
    shell.station = r.station;
    shell.scanner_version = r.scanner_version;
    shell.libraries = r.libraries;
    shell.started_at = r.started_at;
    shell.finished_at = r.finished_at;
    shell.duration_ms = r.duration_ms;
    shell.image = r.image;
    shell.ruleset = r.ruleset;
    shell.volumes = r.volumes;
    shell.gaps = r.gaps;
    shell.errors = r.errors;
    shell.warnings = r.warnings;
    shell.limits_hit = r.limits_hit;
    shell.summary = r.summary;
    shell.result = r.result;
    shell.verdict_reason = r.verdict_reason;
    shell.score = r.score;
    shell.score_reasons = r.score_reasons;
    head = shell;
  }
  const auto dump = report_element_text;
  const char* nl = pretty ? "\n" : "";
  const char* indent = pretty ? "  " : "";
  const char* item_indent = pretty ? "    " : "";
  // for_each_text(emit) calls emit with the JSON text of each element.
  auto stream = [&](const auto& for_each_text) {
    out << "[";
    bool first = true;
    for_each_text([&](std::string_view text) {
      out << (first ? "" : ",") << nl << item_indent << text;
      first = false;
    });
    out << (first ? "" : nl) << (first ? "" : indent) << "]";
  };
  auto stream_array = [&](const auto& items) {
    stream([&](const auto& emit) {
      for (const auto& item : items) {
        emit(dump(nlohmann::json(item)));
      }
    });
  };
  // Keys in the order nlohmann::json (a sorted map) writes them.
  out << "{" << nl;
  bool first = true;
  for (const auto& [key, value] : head.items()) {
    out << (first ? "" : ",") << (first ? "" : nl) << indent << dump(key) << ":" << (pretty ? " " : "");
    first = false;
    if (key == "files" && r.spilled_files) {
      stream([&](const auto& emit) { r.spilled_files->for_each_text(r.files, emit); });
    } else if (key == "files") {
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

// Reading a report back (the daemon receives it from its worker process).
// Strict about types: a malformed document throws nlohmann::json::exception
// or std::invalid_argument.
namespace borderscan::scanner {
namespace {

std::optional<std::int64_t> parse_time(const nlohmann::json& j) {
  if (j.is_null()) {
    return std::nullopt;
  }
  const std::string s = j.get<std::string>();
  std::tm tm{};
  const char* rest = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (rest == nullptr) {
    throw std::invalid_argument("bad timestamp: " + s);
  }
  std::int64_t ms = static_cast<std::int64_t>(timegm(&tm)) * 1000;
  if (*rest == '.') {
    ms += std::strtol(rest + 1, nullptr, 10);
  }
  return ms;
}

template <class T>
std::optional<T> opt(const nlohmann::json& j, const char* key) {
  if (!j.contains(key) || j.at(key).is_null()) {
    return std::nullopt;
  }
  return j.at(key).get<T>();
}

std::string str_or_empty(const nlohmann::json& j, const char* key) {
  return j.contains(key) && !j.at(key).is_null() ? j.at(key).get<std::string>() : std::string();
}

}  // namespace

void from_json(const nlohmann::json& j, finding& f) {
  f.path = j.at("path").get<std::string>();
  f.volume = opt<std::uint32_t>(j, "volume");
  f.source = j.at("source").get<std::string>();
  f.rule = j.at("rule").get<std::string>();
  f.rule_namespace = j.at("namespace").get<std::string>();
  const auto level = parse_severity(j.at("severity").get<std::string>());
  if (!level) {
    throw std::invalid_argument("bad severity");
  }
  f.level = *level;
  f.tags = j.at("tags").get<std::vector<std::string>>();
  f.meta = j.at("meta");
  if (j.contains("matches")) {
    f.matches = j.at("matches").get<std::vector<string_match>>();
    f.match_count = j.at("match_count").get<std::uint64_t>();
  }
  f.deleted = j.contains("deleted") && j.at("deleted").get<bool>();
  if (j.contains("id") && j.at("id").get<std::string>() != finding_id(f)) {
    throw std::invalid_argument("finding id does not match its path and rule");
  }
}

void from_json(const nlohmann::json& j, string_match& m) {
  m.identifier = j.at("identifier").get<std::string>();
  m.offset = j.at("offset").get<std::uint64_t>();
  m.length = j.at("length").get<std::uint64_t>();
  m.text = j.at("text").get<std::string>();
  m.hex = j.at("hex").get<std::string>();
}

void from_json(const nlohmann::json& j, score_reason& r) {
  r.finding = j.at("finding").get<std::string>();
  r.path = j.at("path").get<std::string>();
  r.rule = j.at("rule").get<std::string>();
  r.source = j.at("source").get<std::string>();
  const auto level = parse_severity(j.at("severity").get<std::string>());
  if (!level) {
    throw std::invalid_argument("bad severity");
  }
  r.level = *level;
  r.points = j.at("points").get<int>();
}

void from_json(const nlohmann::json& j, evidence_note& e) {
  e.kept = j.at("kept").get<bool>();
  e.reason = e.kept ? std::string() : j.at("reason").get<std::string>();
}

void from_json(const nlohmann::json& j, file_entry& f) {
  f.path = j.at("path").get<std::string>();
  f.volume = j.at("volume").get<std::uint32_t>();
  f.inode = opt<std::uint64_t>(j, "inode");
  f.size = opt<std::uint64_t>(j, "size");
  f.deleted = j.at("deleted").get<bool>();
  f.type = j.at("type").get<std::string>();
  for (auto [key, slot] : {std::pair{"mtime", &f.times.mtime}, std::pair{"atime", &f.times.atime},
                           std::pair{"ctime", &f.times.ctime}, std::pair{"crtime", &f.times.crtime}}) {
    const auto ms = parse_time(j.at(key));
    *slot = ms ? std::optional<std::int64_t>(*ms / 1000) : std::nullopt;
  }
  f.mime = str_or_empty(j, "mime");
  f.description = str_or_empty(j, "description");
  f.md5 = str_or_empty(j, "md5");
  f.sha1 = str_or_empty(j, "sha1");
  f.sha256 = str_or_empty(j, "sha256");
  f.bytes_read = j.at("bytes_read").get<std::uint64_t>();
  f.content_complete = j.at("content_complete").get<bool>();
  f.skipped = opt<std::string>(j, "skipped");
  f.known = j.at("known").get<std::vector<std::string>>();
  f.extension_mismatch = j.at("extension_mismatch").get<bool>();
  f.container = opt<std::string>(j, "container");
  f.depth = j.at("depth").get<std::uint32_t>();
  f.findings = j.at("findings").get<std::vector<finding>>();
  f.evidence = opt<evidence_note>(j, "evidence");  // absent in reports from before evidence packs
}

void from_json(const nlohmann::json& j, volume_entry& v) {
  v.index = j.at("index").get<std::uint32_t>();
  v.scheme = j.at("scheme").get<std::string>();
  v.offset = j.at("offset").get<std::uint64_t>();
  v.length = j.at("length").get<std::uint64_t>();
  v.description = j.at("description").get<std::string>();
  v.filesystem = opt<std::string>(j, "filesystem");
  v.label = opt<std::string>(j, "label");
  v.error = opt<std::string>(j, "error");
  v.notes = j.at("notes").get<std::vector<std::string>>();
  v.files = j.at("files").get<std::uint64_t>();
  v.encryption = opt<volume_encryption>(j, "encryption");    // reports before encryption fields have none
  v.unallocated = opt<unallocated_space>(j, "unallocated");  // absent in reports from before the look
}

void from_json(const nlohmann::json& j, volume_encryption& e) {
  e.type = j.at("type").get<std::string>();
  e.detected_by = j.at("detected_by").get<std::string>();
  e.cipher = opt<std::string>(j, "cipher");
  e.identifiers = j.at("identifiers").get<std::map<std::string, std::string>>();
  e.key_protectors = j.at("key_protectors").get<std::vector<std::string>>();
  e.notes = j.at("notes").get<std::vector<std::string>>();
}

void from_json(const nlohmann::json& j, unallocated_space& u) {
  u.bytes = j.at("bytes").get<std::uint64_t>();
  u.scanned_bytes = j.at("scanned_bytes").get<std::uint64_t>();
}

void from_json(const nlohmann::json& j, gap_entry& g) {
  g.offset = j.at("offset").get<std::uint64_t>();
  g.length = j.at("length").get<std::uint64_t>();
  g.after_volume = opt<std::uint32_t>(j, "after_volume");
  g.before_volume = opt<std::uint32_t>(j, "before_volume");
  g.content = j.at("content").get<std::string>();
  g.scanned_bytes = j.at("scanned_bytes").get<std::uint64_t>();
}

void from_json(const nlohmann::json& j, error_entry& e) {
  e.path = j.at("path").get<std::string>();
  e.volume = opt<std::uint32_t>(j, "volume");
  e.stage = j.at("stage").get<std::string>();
  e.code = j.at("code").get<std::string>();
  e.message = j.at("message").get<std::string>();
  e.affects_verdict = j.at("affects_verdict").get<bool>();
}

void from_json(const nlohmann::json& j, limit_hit& l) {
  l.limit = j.at("limit").get<std::string>();
  l.value = j.at("value").get<std::string>();
  l.path = j.at("path").get<std::string>();
  l.volume = opt<std::uint32_t>(j, "volume");
}

void from_json(const nlohmann::json& j, report& r) {
  if (j.at("schema") != report_schema_id) {
    throw std::invalid_argument("not a borderscan.report/v1 document");
  }
  r.scan_id = j.at("scan_id").get<std::string>();
  r.station = j.at("station").get<std::string>();
  r.scanner_version = j.at("scanner_version").get<std::string>();
  // Reports written before they named their libraries have none.
  if (j.contains("libraries")) {
    r.libraries = j.at("libraries").get<std::map<std::string, std::string>>();
  }
  r.started_at = parse_time(j.at("started_at")).value_or(0);
  r.finished_at = parse_time(j.at("finished_at")).value_or(0);
  r.duration_ms = j.at("timings").at("duration_ms").get<std::int64_t>();
  const auto& img = j.at("image");
  r.image.name = img.at("name").get<std::string>();
  r.image.size = img.at("size").get<std::uint64_t>();
  r.image.sha256 = img.at("sha256").get<std::string>();
  r.image.format = img.at("format").get<std::string>();
  r.image.segments = img.at("segments").get<std::vector<std::string>>();
  // Reports written before images were opened inside containers have none of these.
  if (const auto c = img.find("compression"); c != img.end() && !c->is_null()) {
    r.image.compression = c->get<std::string>();
  }
  if (const auto m = img.find("media_sha256"); m != img.end() && !m->is_null()) {
    r.image.media_sha256 = m->get<std::string>();
  }
  if (const auto m = img.find("media"); m != img.end() && !m->is_null()) {
    media_info media;
    media.size = m->at("size").get<std::uint64_t>();
    media.sha256 = m->at("sha256").get<std::string>();
    auto text = [&](const char* key) -> std::optional<std::string> {
      const auto v = m->find(key);
      return v == m->end() || v->is_null() ? std::nullopt : std::optional(v->get<std::string>());
    };
    media.md5 = text("md5");
    media.sha1 = text("sha1");
    media.stored_md5 = text("stored_md5");
    media.stored_sha1 = text("stored_sha1");
    if (const auto v = m->find("acquisition_verified"); v != m->end() && !v->is_null()) {
      media.acquisition_verified = v->get<bool>();
    }
    r.image.media = std::move(media);
  }
  const auto& rs = j.at("ruleset");
  r.ruleset.digest = rs.at("digest").get<std::string>();
  r.ruleset.yara_rules = rs.at("yara_rules").get<std::uint64_t>();
  r.ruleset.yara_files = rs.at("yara_files").get<std::vector<std::string>>();
  for (const auto& h : rs.at("hashsets")) {
    r.ruleset.hashsets.push_back(
        {h.at("name").get<std::string>(), h.at("kind").get<std::string>(), h.at("entries").get<std::uint64_t>()});
  }
  r.volumes = j.at("volumes").get<std::vector<volume_entry>>();
  if (j.contains("gaps")) {  // absent in reports from before gaps were listed
    r.gaps = j.at("gaps").get<std::vector<gap_entry>>();
  }
  r.files = j.at("files").get<std::vector<file_entry>>();
  r.findings = j.at("findings").get<std::vector<finding>>();
  r.errors = j.at("errors").get<std::vector<error_entry>>();
  r.warnings = j.at("warnings").get<std::vector<std::string>>();
  r.limits_hit = j.at("limits_hit").get<std::vector<limit_hit>>();
  const auto& s = j.at("summary");
  r.summary.files = s.at("files").get<std::uint64_t>();
  r.summary.directories = s.at("directories").get<std::uint64_t>();
  r.summary.deleted = s.at("deleted").get<std::uint64_t>();
  r.summary.deleted_directories = s.value("deleted_directories", std::uint64_t{0});
  r.summary.bytes = s.at("bytes").get<std::uint64_t>();
  r.summary.flagged_files = s.at("flagged_files").get<std::uint64_t>();
  r.summary.findings = s.at("findings").get<std::uint64_t>();
  r.summary.errors = s.at("errors").get<std::uint64_t>();
  r.summary.limits_hit = s.at("limits_hit").get<std::uint64_t>();
  r.summary.by_mime = s.at("by_mime").get<std::map<std::string, std::uint64_t>>();
  r.summary.by_type = s.at("by_type").get<std::map<std::string, std::uint64_t>>();
  const std::string v = j.at("verdict").get<std::string>();
  if (v == "clean") {
    r.result = verdict::clean;
  } else if (v == "flagged") {
    r.result = verdict::flagged;
  } else if (v == "incomplete") {
    r.result = verdict::incomplete;
  } else if (v == "error") {
    r.result = verdict::error;
  } else {
    throw std::invalid_argument("bad verdict: " + v);
  }
  r.verdict_reason = j.at("verdict_reason").get<std::string>();
  r.score = j.at("score").get<int>();
  // Reports stored before score reasons existed have none.
  if (j.contains("score_reasons")) {
    r.score_reasons = j.at("score_reasons").get<std::vector<score_reason>>();
  }
}

}  // namespace borderscan::scanner
