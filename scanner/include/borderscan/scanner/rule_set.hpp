#pragma once
// The immutable rule set of a scan: compiled YARA rules plus hash sets, and a
// digest naming exactly which sources produced them. Shared between threads
// through shared_ptr<const rule_set>; a reload builds a new one and swaps.

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "borderscan/scanner/hashset.hpp"
#include "borderscan/scanner/report.hpp"

struct YR_RULES;

namespace borderscan::scanner {

// Process-wide libyara initialisation: create one in main() before any
// rule_set, destroy it after the last one.
class yara_library {
 public:
  yara_library();
  ~yara_library();
  yara_library(const yara_library&) = delete;
  yara_library& operator=(const yara_library&) = delete;
};

struct rule_sources {
  // Files or directories. Directories are searched recursively: *.yar and
  // *.yara are YARA sources, *.known-bad.txt and *.known-good.txt hash sets.
  std::vector<std::filesystem::path> rule_paths;
  // Extra hash-set files with an explicit kind.
  std::vector<std::pair<std::filesystem::path, hashset_kind>> hashsets;
};

// How the YARA part of a rule set is obtained. Compiling the public rule set
// takes most of a second, so the daemon compiles once per rule set and its
// workers load the result.
struct compiled_rules {
  enum class mode {
    compile,  // compile the sources (the default)
    cache,    // use `file` when it was made from these sources, else compile and (re)write it
    require,  // use `file`, which must have been made from these sources and have SHA-256 `sha256`
  };
  mode how = mode::compile;
  std::filesystem::path file;
  std::string sha256;  // require: lower-case hex of the whole file
};

class rule_set {
 public:
  // Compiles (or loads, see compiled_rules) and loads everything. Throws
  // scan_error: rules_invalid with every compiler message as "file:line:
  // message"; rules_mismatch when a required compiled file was made from
  // other sources or changed since it was written.
  static std::shared_ptr<const rule_set> load(const rule_sources& sources, const compiled_rules& compiled = {});

  ~rule_set();
  rule_set(const rule_set&) = delete;
  rule_set& operator=(const rule_set&) = delete;

  YR_RULES* yara() const noexcept { return yara_.get(); }  // null when there are no YARA sources
  const hashset_db& hashsets() const noexcept { return hashsets_; }
  const ruleset_info& info() const noexcept { return info_; }
  // Whether any YARA source mentions an external variable (filename, ...):
  // then the same content may match differently under another name.
  bool uses_externals() const noexcept { return uses_externals_; }
  // Writes the compiled YARA rules to `file` (through a temporary file and a
  // rename, mode 0600), headed by the rule-set digest. Returns the file's
  // SHA-256 (hex). Throws scan_error(internal) naming the file.
  std::string save_compiled(const std::filesystem::path& file) const;

 private:
  struct yara_rules_deleter {
    void operator()(YR_RULES* r) const noexcept;
  };
  rule_set() = default;
  std::unique_ptr<YR_RULES, yara_rules_deleter> yara_;
  hashset_db hashsets_;
  ruleset_info info_;
  bool uses_externals_ = false;
};

namespace detail {
// Whether YARA source text may refer to one of the external variables the
// object scanner sets (filename, filepath, extension, filetype, owner).
// Conservative: comments, strings, regular expressions, string identifiers,
// module fields and meta keys do not count; anything else named so does.
bool yara_source_mentions_external(std::string_view yara_source);
}  // namespace detail

// The rule sources of a command line or configuration: YARA files or
// directories (the shipped rules when there is none) and hash-set arguments
// "FILE[:known-good|:known-bad]". The one way `scan`, `worker` and the daemon
// name their rules.
rule_sources rule_sources_for(const std::vector<std::string>& rule_paths, const std::vector<std::string>& hashsets);

// The rules directory shipped with the product: $BORDERSCAN_RULES, then
// <exe>/../share/borderscan/rules, then the source tree's rules/.
std::filesystem::path default_rules_dir();

}  // namespace borderscan::scanner
