#pragma once
// File entries of a report kept in an unlinked temporary file rather than in
// memory. A report holds ~1 KiB per file until it is written, which on a
// card with a million files is a gigabyte; spilled, an entry costs only what
// sorting and the summary need (~100 bytes plus its path).

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "borderscan/scanner/report.hpp"

namespace borderscan::scanner {

class file_spill {
 public:
  // An anonymous file (O_TMPFILE) in dir, gone when closed, holding at most
  // max_bytes (0: no limit). Throws std::system_error when dir cannot hold one.
  explicit file_spill(const std::filesystem::path& dir, std::uint64_t max_bytes = 0);
  // The same (an empty dir: $TMPDIR or /tmp), or null (entries then stay in
  // memory) with the reason in `why`.
  static std::shared_ptr<file_spill> open_in(const std::filesystem::path& dir, std::uint64_t max_bytes,
                                             std::string& why) noexcept;
  ~file_spill();
  file_spill(const file_spill&) = delete;
  file_spill& operator=(const file_spill&) = delete;

  // Appends an entry as its JSON text. Not thread-safe: callers serialise.
  // Throws std::system_error on a write error or past max_bytes; the entries
  // added before stay readable.
  void add(const file_entry& entry);

  std::size_t size() const noexcept { return index_.size(); }
  // Orders entries as finalize() orders report::files: (volume, path, inode).
  void sort();
  // Each entry's JSON text (as write_report writes it), in the current order,
  // merged with `others` (sorted the same way), which are entries that did not
  // fit in the spill.
  void for_each_text(const std::vector<file_entry>& others, const std::function<void(std::string_view)>& fn) const;
  // The entries merged with `others`, as above.
  std::vector<file_entry> load(const std::vector<file_entry>& others = {}) const;

  // What finalize() needs without reading the entries back.
  const scan_summary& tally() const noexcept { return tally_; }  // all but flagged_files
  const std::vector<finding>& findings() const noexcept { return findings_; }
  std::uint64_t files_at_or_above(severity level) const noexcept;
  std::uint64_t files_in_volume(std::uint32_t volume) const noexcept;

 private:
  struct slot {
    std::uint32_t volume;
    std::optional<std::uint64_t> inode;
    std::string path;
    std::uint64_t offset;
    std::uint32_t length;
    std::int8_t max_level;  // highest finding severity, -1: none
  };
  std::string read_text(const slot& s) const;

  int fd_ = -1;
  std::uint64_t max_bytes_ = 0;
  std::uint64_t end_ = 0;
  std::vector<slot> index_;
  scan_summary tally_;
  std::vector<finding> findings_;
  std::map<std::uint32_t, std::uint64_t> per_volume_;
};

// The order of report::files: (volume, path, inode); equal keys keep the
// order they were added in (stable sorts).
bool file_order(const file_entry& a, const file_entry& b);

// Adds one file entry to a summary (all counts but flagged_files) and its
// findings to `findings`; shared by finalize() and file_spill.
void tally_file(const file_entry& f, scan_summary& s, std::vector<finding>& findings);

// The JSON text of one report element, as write_report() writes it.
std::string report_element_text(const nlohmann::json& j);

}  // namespace borderscan::scanner
