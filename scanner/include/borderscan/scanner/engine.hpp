#pragma once
// The scanner's entry point: image in, report out. One engine serves the CLI
// and the daemon's fenced worker.

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "borderscan/scanner/evidence_pack.hpp"
#include "borderscan/scanner/file_spill.hpp"
#include "borderscan/scanner/limits.hpp"
#include "borderscan/scanner/report.hpp"
#include "borderscan/scanner/rule_set.hpp"

namespace borderscan::scanner {

struct scan_progress {
  std::uint64_t files_done = 0;
  std::uint64_t files_found = 0;
  std::uint64_t bytes_done = 0;
  std::uint64_t bytes_total = 0;  // of regular-file content found so far
  bool walk_done = false;
};

struct scan_options {
  unsigned jobs = 0;  // 0 = number of cores
  std::string scan_id, station;
  // If set, used as image.sha256 (the daemon hashes while receiving);
  // otherwise the engine hashes the image file(s) itself.
  std::string image_sha256;
  std::string display_name;  // image.name; default: file name
  // Checked between objects; set it to stop the scan early (recorded as a limit hit).
  const std::atomic<bool>* cancel = nullptr;
  // Called from scanner threads, at most every ~100 ms and once at the end.
  std::function<void(const scan_progress&)> on_progress;
  // If set, file entries are written there as they finish rather than kept in
  // report::files, so memory does not grow with the number of files.
  std::shared_ptr<file_spill> spill;
  // If set, the content of every flagged file is copied there while it is
  // read (bounded by the pack's limits), and each file entry that is flagged
  // says in `evidence` whether its copy was kept. One pack per scan.
  std::shared_ptr<evidence_pack> evidence;
  // Folder for the scan's temporary files (virtual disks found on the device,
  // a decompressed image); the system's temporary folder when empty. The
  // fenced worker passes a descriptor it opened before its sandbox.
  std::filesystem::path work_dir;
  int work_dir_fd = -1;
};

class engine {
 public:
  engine(limits lim, std::shared_ptr<const rule_set> rules);

  // Scans one image (split raw: the first segment, or all segments in order).
  // Never throws for bad images: an unusable image gives verdict `error`.
  report scan(const std::vector<std::filesystem::path>& image_segments, const scan_options& options = {}) const;
  report scan(const std::filesystem::path& image, const scan_options& options = {}) const {
    return scan(std::vector<std::filesystem::path>{image}, options);
  }

  const limits& scan_limits() const noexcept { return limits_; }
  const rule_set& rules() const noexcept { return *rules_; }

 private:
  limits limits_;
  std::shared_ptr<const rule_set> rules_;
};

}  // namespace borderscan::scanner
