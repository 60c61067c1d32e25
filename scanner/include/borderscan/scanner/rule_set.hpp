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

class rule_set {
 public:
  // Compiles and loads everything; throws scan_error(rules_invalid) with every
  // compiler message as "file:line: message".
  static std::shared_ptr<const rule_set> load(const rule_sources& sources);

  ~rule_set();
  rule_set(const rule_set&) = delete;
  rule_set& operator=(const rule_set&) = delete;

  YR_RULES* yara() const noexcept { return yara_; }  // null when there are no YARA sources
  const hashset_db& hashsets() const noexcept { return hashsets_; }
  const ruleset_info& info() const noexcept { return info_; }
  // Whether any YARA source mentions an external variable (filename, ...):
  // then the same content may match differently under another name.
  bool uses_externals() const noexcept { return uses_externals_; }

 private:
  rule_set() = default;
  YR_RULES* yara_ = nullptr;
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

// The rules directory shipped with the product: $BORDERSCAN_RULES, then
// <exe>/../share/borderscan/rules, then the source tree's rules/.
std::filesystem::path default_rules_dir();

}  // namespace borderscan::scanner
