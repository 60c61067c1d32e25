#pragma once
// Hash sets, in two forms:
//  - text files (hex digest + optional name per line), parsed at load into
//    binary digests in 256 buckets by their first byte, each sorted and
//    looked up by binary search: one digest plus one 32-bit label per entry
//    (36 bytes for SHA-256); labels (set, name) are shared between entries.
//  - compact files (".bhs", made by hashset_writer / import_hashset from
//    text, NSRL RDS v3 or Project VIC VICS JSON): sorted fixed-size records
//    that load() memory-maps read-only, with no per-entry work, so a 50 M
//    entry set is ready in microseconds. Layout: scanner/src/hashset_format.hpp.

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace borderscan::scanner {

enum class hashset_kind { known_bad, known_good };
const char* to_string(hashset_kind k) noexcept;

struct hashset_hit {
  std::string set;  // name of the set (file stem)
  hashset_kind kind;
  std::string entry;      // the name given on the line, may be empty
  std::string algorithm;  // md5 | sha1 | sha256
};

// Immutable once loaded; safe to share between threads for lookups. Copies
// share the mappings of compact files (each unmapped with its last user).
class hashset_db {
 public:
  struct set_info {
    std::string name;
    hashset_kind kind;
    std::uint64_t entries = 0;
    std::filesystem::path source;
    // Compact files: their 512-byte header, which carries the SHA-256 of all
    // the rest, so that the rule-set digest can cover the set by these bytes
    // instead of reading gigabytes. Empty for text files (digest the file).
    std::string fingerprint;
  };

  // Loads one set file: a compact file (recognised by its magic; mapped, not
  // read) or a text file. Text lines: hex digest (32/40/64 chars), optional
  // whitespace + name, `#` comments, blank lines. Throws scan_error
  // (rules_invalid) naming file:line for a malformed line, and naming the
  // file for a compact file that is truncated, inconsistent or of the other
  // kind than `kind`. The set name is set_name, else the compact file's own
  // name, else the text file's stem.
  void load(const std::filesystem::path& file, hashset_kind kind, std::string set_name = {});
  // Sorts the tables; call once after the last load and before lookups.
  void seal();

  // All sets that list any of the given digests (raw bytes).
  std::vector<hashset_hit> lookup(std::span<const std::uint8_t, 16> md5, std::span<const std::uint8_t, 20> sha1,
                                  std::span<const std::uint8_t, 32> sha256) const;

  const std::vector<set_info>& sets() const noexcept { return sets_; }
  std::uint64_t size() const noexcept;

 private:
  template <std::size_t N>
  struct entry {
    std::array<std::uint8_t, N> digest;
    std::uint32_t label;  // index into labels_
    friend bool operator<(const entry& a, const entry& b) { return a.digest < b.digest; }
  };
  struct label {
    std::uint32_t set;
    std::uint32_t name;  // index into names_, 0 = unnamed
  };
  template <std::size_t N>
  struct table {
    std::array<std::vector<entry<N>>, 256> buckets;  // by digest[0]
    std::uint64_t size = 0;
    void add(const entry<N>& e) {
      buckets[e.digest[0]].push_back(e);
      ++size;
    }
    void reserve_more(std::uint64_t expected);
    void seal();
  };
  template <std::size_t N>
  void collect(const table<N>& t, std::span<const std::uint8_t, N> key, const char* algorithm,
               std::vector<hashset_hit>& out) const;
  std::uint32_t label_for(std::uint32_t set, std::uint32_t name);
  void load_text(const std::filesystem::path& file, hashset_kind kind, std::string set_name);

  class compact_set;  // one mapped compact file (hashset.cpp)
  std::vector<std::shared_ptr<const compact_set>> compact_;

  table<16> md5_;
  table<20> sha1_;
  table<32> sha256_;
  std::vector<std::string> names_{std::string{}};
  std::vector<label> labels_;
  std::vector<set_info> sets_;
};

// Parses "FILE", "FILE:known-good" or "FILE:known-bad" (default known-bad).
std::pair<std::filesystem::path, hashset_kind> parse_hashset_arg(std::string_view arg);

// ---- Compact hash-set files (.bhs) ----

// What a compact file's header says about it.
struct compact_hashset_info {
  std::string name;
  hashset_kind kind = hashset_kind::known_bad;
  std::uint64_t md5 = 0, sha1 = 0, sha256 = 0;  // distinct digests per algorithm
  std::uint64_t names = 0;                      // distinct entry names (the empty one included)
  std::uint64_t file_size = 0;
  std::string content_sha256;  // hex, of everything after the header
  std::string source_format;   // text | nsrl-rds3 | vics
  std::string source_file;     // the imported file's name
  std::uint64_t entries() const noexcept { return md5 + sha1 + sha256; }
};

// Reads and checks the header of `file` (512 bytes, never the rest).
// nullopt when the file is not a compact hash set (no magic); throws
// scan_error(rules_invalid) naming the file when it is one but truncated or
// inconsistent, or cannot be read.
std::optional<compact_hashset_info> read_compact_hashset_info(const std::filesystem::path& file);

// Reads the whole file and compares the SHA-256 of its content with the one
// in its header (what load() trusts without reading). Throws like
// read_compact_hashset_info, and when `file` is not a compact file.
bool verify_compact_hashset(const std::filesystem::path& file);

// Names of sets that may become file names: 1 to 64 of A-Z a-z 0-9 . _ -,
// not starting with '.'.
bool is_valid_hashset_name(std::string_view name) noexcept;

// ---- Building compact files: library borderscan::hashset_import ----
// (kept out of borderscan::scanner so that scanning never links SQLite).

// Writes one compact file from digests given in any order, in bounded
// memory: records are sorted in runs of `memory_bytes`, spilled to unlinked
// temporary files in `temp_dir`, and merged; names go to temporary files as
// they arrive. The output appears atomically (temporary file beside it,
// fsync, rename, mode 0600) when finish() returns. Not thread-safe.
class hashset_writer {
 public:
  struct options {
    std::size_t memory_bytes = std::size_t{64} << 20;  // sort buffer for all three algorithms
    std::filesystem::path temp_dir;                    // empty: the output's folder
    std::string source_format;                         // recorded in the header
    std::string source_file;                           // recorded in the header (file name only)
  };
  struct summary {
    compact_hashset_info info;
    std::uint64_t added = 0;       // digests given to add()
    std::uint64_t duplicates = 0;  // of those, repeats of a digest already given (first name kept)
  };

  // Throws std::invalid_argument for an invalid set name, std::system_error
  // when the temporary files cannot be made.
  hashset_writer(std::filesystem::path output, std::string set_name, hashset_kind kind, options opt);
  hashset_writer(std::filesystem::path output, std::string set_name, hashset_kind kind);
  ~hashset_writer();  // removes the temporary files; the output stays untouched unless finish() ran
  hashset_writer(const hashset_writer&) = delete;
  hashset_writer& operator=(const hashset_writer&) = delete;

  // digest: 16 (MD5), 20 (SHA-1) or 32 (SHA-256) bytes; name may be empty.
  // When one digest is added several times, the entry keeps the name that
  // sorts first by first appearance (an empty name counts as last).
  // Throws std::invalid_argument for another digest size, std::system_error
  // on I/O errors.
  void add(std::span<const std::uint8_t> digest, std::string_view name);
  // Writes the file. Call once; throws std::system_error on I/O errors.
  summary finish();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

enum class hashset_source { text, nsrl_rds3, vics };
const char* to_string(hashset_source f) noexcept;
std::optional<hashset_source> parse_hashset_source(std::string_view text) noexcept;

struct hashset_import_options {
  std::string name;  // the set's name (is_valid_hashset_name)
  hashset_kind kind = hashset_kind::known_bad;
  // Which digests of a record become entries: all of them, or only the
  // strongest present (SHA-256, else SHA-1, else MD5). Default: strongest for
  // nsrl-rds3 (every RDS v3 row has a SHA-256 and the scanner computes it for
  // every file, so MD5 and SHA-1 would triple the file and let an MD5
  // collision pass as known-good), all for vics (MD5 and SHA-1) and text.
  enum class digests { format_default, all, strongest };
  digests which = digests::format_default;
  // vics: import only media of these categories (the JSON's "Category" as
  // text, e.g. "1"); empty: every category.
  std::vector<std::string> categories;
  std::size_t memory_bytes = std::size_t{64} << 20;
  std::filesystem::path temp_dir;  // empty: the output's folder
};

struct hashset_import_result {
  hashset_writer::summary written;
  std::uint64_t records = 0;  // lines / rows / media records read
  std::uint64_t skipped = 0;  // records with no digest, or outside `categories`
};

// Imports `input` into the compact file `output`. Formats:
//  - text: hashset_db's line format;
//  - nsrl-rds3: the NIST NSRL RDS v3 SQLite release; reads its FILE view
//    (sha256, sha1, md5, file_name), names entries by file_name;
//  - vics: Project VIC / CAID VICS JSON (OData: "value" holding Media
//    records, or cases holding "Media" arrays), streamed; names entries
//    "MediaID <id>, category <c>".
// Throws scan_error(rules_invalid) naming the file and the line, row or
// record of malformed input; std::system_error on I/O errors.
hashset_import_result import_hashset(hashset_source format, const std::filesystem::path& input,
                                     const std::filesystem::path& output, const hashset_import_options& opt);

}  // namespace borderscan::scanner
