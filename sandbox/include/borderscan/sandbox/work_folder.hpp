#pragma once
// A scan's private work folder (mode 0700): the only place its fenced worker
// may create files (report-entry spill, scratch copies). Removed with all it
// holds when the owning object ends, however the scan ended.

#include <filesystem>

namespace borderscan::sandbox {

class work_folder {
 public:
  // Creates `path` (and missing parents, 0700); a leftover of an earlier
  // attempt at the same path is removed first. Throws std::filesystem_error.
  explicit work_folder(std::filesystem::path path);
  // A new folder with a unique name beneath `parent` (mkdtemp).
  static work_folder temporary(const std::filesystem::path& parent = std::filesystem::temp_directory_path());

  work_folder(work_folder&& other) noexcept;
  work_folder& operator=(work_folder&&) = delete;
  work_folder(const work_folder&) = delete;
  work_folder& operator=(const work_folder&) = delete;
  ~work_folder();

  const std::filesystem::path& path() const { return path_; }

 private:
  struct adopt {};
  work_folder(adopt, std::filesystem::path path) : path_(std::move(path)) {}
  std::filesystem::path path_;
};

// Removes every folder beneath `root` (work folders of a process that died
// mid-scan); returns how many.
std::size_t remove_leftover_work_folders(const std::filesystem::path& root);

}  // namespace borderscan::sandbox
