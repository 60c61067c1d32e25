#pragma once
// The scan report (`borderscan.report/v1`): plain structs with to_json beside
// them. docs/report-schema.json documents the JSON; keep both in step.

#include <cstdint>
#include <iosfwd>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace borderscan::scanner {

inline constexpr std::string_view report_schema_id = "borderscan.report/v1";

enum class severity { info = 0, low, medium, high, critical };
const char* to_string(severity s) noexcept;
std::optional<severity> parse_severity(std::string_view text) noexcept;
// YARA-style numeric score 0..100 to a severity band.
severity severity_from_score(long long score) noexcept;

enum class verdict { clean, flagged, incomplete, error };
const char* to_string(verdict v) noexcept;

// One place a YARA string matched: where, how long, and the first bytes.
struct string_match {
  std::string identifier;  // $name
  std::uint64_t offset = 0, length = 0;
  std::string text;  // the first bytes as `yara -s` shows them: printable ASCII, others \\xHH
  std::string hex;   // the same bytes as lower-case hex
};

struct finding {
  std::string path;  // object path, `!` separates container levels
  std::optional<std::uint32_t> volume;
  std::string source;  // yara | hashset | heuristic | limit
  std::string rule;
  std::string rule_namespace;         // JSON key `namespace`
  severity level = severity::medium;  // JSON key `severity`
  std::vector<std::string> tags;
  nlohmann::json meta = nlohmann::json::object();
  // YARA findings: the first matches (at most max_matches_per_finding) and
  // how many there were in all.
  std::vector<string_match> matches;
  std::uint64_t match_count = 0;
  // In the report's top-level list: the file is deleted on the device (in
  // files[], the entry itself says so). Not part of the finding's id.
  bool deleted = false;
};

inline constexpr std::size_t max_matches_per_finding = 16;
inline constexpr std::size_t max_match_bytes = 64;

// A finding's id within its report (32 hex digits): the same file, source and
// rule give the same id, so dispositions outlive a re-scan of the same image.
std::string finding_id(const finding& f);

// What a finding added to the report's score.
struct score_reason {
  std::string finding;  // finding_id
  std::string path, rule, source;
  severity level = severity::medium;
  int points = 0;
};

struct file_times {
  std::optional<std::int64_t> mtime, atime, ctime, crtime;  // Unix seconds, UTC
};

// Whether a flagged file's content was copied into the scan's evidence pack
// (see evidence_pack.hpp); only flagged files get one, and only when the scan
// keeps evidence. JSON: {"kept": true} or {"kept": false, "reason": "..."}.
struct evidence_note {
  bool kept = false;
  std::string reason;  // why not kept; empty when kept
};

struct file_entry {
  std::string path;
  std::uint32_t volume = 0;
  std::optional<std::uint64_t> inode;
  std::optional<std::uint64_t> size;  // null when the file system cannot tell
  bool deleted = false;
  std::string type;  // regular | directory | symlink | other | raw
  file_times times;
  std::string mime, description;
  std::string md5, sha1, sha256;  // empty when content was not fully read
  std::uint64_t bytes_read = 0;
  bool content_complete = false;
  std::optional<std::string> skipped;  // why content was not scanned
  std::vector<std::string> known;      // known-good hash sets that list it
  bool extension_mismatch = false;
  std::optional<std::string> container;  // parent object path (archive members)
  std::uint32_t depth = 0;
  std::vector<finding> findings;
  std::optional<evidence_note> evidence;  // JSON null when the file was not flagged or evidence is off
};

// An encrypted volume found where no file system opened (or an encrypted APFS
// volume): what the headers say without a key. Its content is not examined.
struct volume_encryption {
  std::string type;                                // bitlocker | luks1 | luks2 | filevault2 | apfs | unknown
  std::string detected_by;                         // signature | entropy | apfs-volume-flag
  std::optional<std::string> cipher;               // e.g. aes-xts-plain64; null when the header does not say
  std::map<std::string, std::string> identifiers;  // volume_uuid, label, ...
  std::vector<std::string> key_protectors;         // kinds: password, recovery-password, tpm, pbkdf2, ...
  std::vector<std::string> notes;                  // what could not be read and why
};

// The unallocated space of a file system: its free blocks and the volume's
// bytes past its end, as YARA saw them (see limits::max_unallocated_bytes).
struct unallocated_space {
  std::uint64_t bytes = 0;          // in the image
  std::uint64_t scanned_bytes = 0;  // of those, YARA-scanned
};

struct volume_entry {
  std::uint32_t index = 0;
  std::string scheme;                     // mbr | gpt | none | ...
  std::uint64_t offset = 0, length = 0;   // bytes
  std::string description;                // partition type text from the table
  std::optional<std::string> filesystem;  // fat12, ntfs, ext4, ... null = none
  std::optional<std::string> label;
  std::optional<std::string> error;  // why no file system could be opened
  std::vector<std::string> notes;    // e.g. FAT type forced after auto-detect failed
  std::uint64_t files = 0;
  std::optional<volume_encryption> encryption;   // JSON null when none was recognised
  std::optional<unallocated_space> unallocated;  // null: no file system, or not looked at
};

// Image bytes no partition covers, between volumes or after the last one.
struct gap_entry {
  std::uint64_t offset = 0, length = 0;
  std::optional<std::uint32_t> after_volume, before_volume;
  std::string content;  // zero | data | unknown (not, or not wholly, read)
  std::uint64_t scanned_bytes = 0;
};

struct error_entry {
  std::string path;  // empty for image-level errors
  std::optional<std::uint32_t> volume;
  std::string stage;  // image | volume | walk | read | magic | yara | ...
  std::string code;
  std::string message;
  // Errors about content that no longer exists on the device (deleted files)
  // are evidence, but do not make the verdict incomplete.
  bool affects_verdict = true;
};

struct limit_hit {
  std::string limit;
  std::string value;
  std::string path;
  std::optional<std::uint32_t> volume;
};

struct ruleset_info {
  std::string digest;  // sha256 over all rule and hash-set sources
  std::uint64_t yara_rules = 0;
  std::vector<std::string> yara_files;
  struct hashset {
    std::string name, kind;
    std::uint64_t entries = 0;
  };
  std::vector<hashset> hashsets;
};

// The device's own bytes, when they came inside a container (E01, qcow,
// VHD/VHDX, VMDK) or compressed: what was read out of it.
struct media_info {
  std::uint64_t size = 0;
  std::string sha256;
  std::optional<std::string> md5, sha1;  // computed beside sha256 for containers
  // What an E01 stores from its acquisition, and whether the bytes read match
  // it (null: nothing stored to compare with).
  std::optional<std::string> stored_md5, stored_sha1;
  std::optional<bool> acquisition_verified;
};

struct image_info {
  std::string name;
  std::uint64_t size = 0;
  std::string sha256;  // of the bytes received
  std::string format;  // raw, ewf, vhd, vhdx, vmdk, qcow, ...
  std::vector<std::string> segments;
  std::optional<std::string> compression;  // gzip, xz, zstd, bzip2: decompressed before the walk
  // The device's bytes: sha256 equals `sha256` for a raw image received as is.
  std::string media_sha256;
  std::optional<media_info> media;
};

struct scan_summary {
  std::uint64_t files = 0, directories = 0, deleted = 0, bytes = 0;
  std::uint64_t deleted_directories = 0;  // of `deleted`, the directories
  std::uint64_t flagged_files = 0, findings = 0, errors = 0, limits_hit = 0;
  std::map<std::string, std::uint64_t> by_mime;
  std::map<std::string, std::uint64_t> by_type;
};

class file_spill;

struct report {
  std::string scan_id;
  std::string station;
  std::string scanner_version;
  std::map<std::string, std::string> libraries;  // library_versions() of the scanner
  std::int64_t started_at = 0, finished_at = 0;  // Unix milliseconds (wall clock)
  std::int64_t duration_ms = 0;                  // measured on a monotonic clock
  image_info image;
  ruleset_info ruleset;
  std::vector<volume_entry> volumes;
  std::vector<gap_entry> gaps;  // unpartitioned space, in image order
  std::vector<file_entry> files;
  // When set, the file entries are there instead of in `files` (see
  // scan_options::spill); JSON output and finalize() read them from it.
  std::shared_ptr<file_spill> spilled_files;
  std::vector<finding> findings;  // all findings, each with its path
  std::vector<error_entry> errors;
  std::vector<std::string> warnings;  // anomalies that did not stop anything
  std::vector<limit_hit> limits_hit;
  scan_summary summary;
  verdict result = verdict::clean;  // JSON key `verdict`
  std::string verdict_reason;
  int score = 0;
  std::vector<score_reason> score_reasons;  // their points add up to score
};

void to_json(nlohmann::json& j, const string_match& m);
void to_json(nlohmann::json& j, const score_reason& r);
void to_json(nlohmann::json& j, const finding& f);
void to_json(nlohmann::json& j, const evidence_note& e);
void to_json(nlohmann::json& j, const file_entry& f);
void to_json(nlohmann::json& j, const volume_encryption& e);
void to_json(nlohmann::json& j, const unallocated_space& u);
void to_json(nlohmann::json& j, const volume_entry& v);
void to_json(nlohmann::json& j, const gap_entry& g);
void to_json(nlohmann::json& j, const error_entry& e);
void to_json(nlohmann::json& j, const limit_hit& l);
void to_json(nlohmann::json& j, const ruleset_info& r);
void to_json(nlohmann::json& j, const media_info& m);
void to_json(nlohmann::json& j, const image_info& i);
void to_json(nlohmann::json& j, const scan_summary& s);
void to_json(nlohmann::json& j, const report& r);

// Reading a report back (strict about types; throws on a malformed document).
void from_json(const nlohmann::json& j, string_match& m);
void from_json(const nlohmann::json& j, score_reason& r);
void from_json(const nlohmann::json& j, finding& f);
void from_json(const nlohmann::json& j, evidence_note& e);
void from_json(const nlohmann::json& j, file_entry& f);
void from_json(const nlohmann::json& j, volume_encryption& e);
void from_json(const nlohmann::json& j, unallocated_space& u);
void from_json(const nlohmann::json& j, volume_entry& v);
void from_json(const nlohmann::json& j, gap_entry& g);
void from_json(const nlohmann::json& j, error_entry& e);
void from_json(const nlohmann::json& j, limit_hit& l);
void from_json(const nlohmann::json& j, report& r);

// Writes the same JSON document as to_json(report), streaming the files and
// findings one at a time so that memory does not hold the whole document
// twice (once as a JSON tree, once as text). pretty: one file or finding per
// line; otherwise a single line (for newline-delimited JSON).
void write_report(std::ostream& out, const report& r, bool pretty = true);

// Sorts files, findings and errors by (volume, path) and fills the summary,
// the top-level findings list, the verdict and the score. Call once, after
// all entries are in.
void finalize(report& r, severity flag_threshold);

// The verdict (never `error`: that one comes from the image) and score that
// finalize() gives a report with findings of these severities.
struct judgement {
  verdict result = verdict::clean;
  int score = 0;
};
judgement judge(const std::vector<severity>& finding_levels, bool limits_hit, bool unread, severity flag_threshold);

// Which findings make up judge()'s score: the weightiest finding its weight,
// each further finding above info one point, up to the score.
std::vector<score_reason> explain_score(const std::vector<finding>& findings);

}  // namespace borderscan::scanner
