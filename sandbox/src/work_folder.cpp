#include "borderscan/sandbox/work_folder.hpp"

#include <stdlib.h>

#include <cerrno>
#include <string>
#include <system_error>

namespace borderscan::sandbox {

namespace fs = std::filesystem;

namespace {

void make_private(const fs::path& dir) {
  fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace);
}

}  // namespace

work_folder::work_folder(fs::path path) : path_(std::move(path)) {
  fs::remove_all(path_);
  if (!path_.parent_path().empty() && !fs::exists(path_.parent_path())) {
    fs::create_directories(path_.parent_path());
    make_private(path_.parent_path());
  }
  fs::create_directory(path_);
  make_private(path_);
}

work_folder work_folder::temporary(const fs::path& parent) {
  std::string pattern = (parent / "borderscan-work-XXXXXX").string();
  // mkdtemp makes it 0700.
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw fs::filesystem_error("cannot make a work folder", parent, std::error_code(errno, std::generic_category()));
  }
  return work_folder(adopt{}, pattern);
}

work_folder::work_folder(work_folder&& other) noexcept : path_(std::move(other.path_)) {
  other.path_.clear();
}

work_folder::~work_folder() {
  if (!path_.empty()) {
    std::error_code ignored;  // nothing to do about it here; the next start-up sweeps leftovers
    fs::remove_all(path_, ignored);
  }
}

std::size_t remove_leftover_work_folders(const fs::path& root) {
  std::error_code ec;
  std::size_t removed = 0;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    std::error_code ignored;
    if (fs::remove_all(entry.path(), ignored) > 0) {
      ++removed;
    }
  }
  return removed;
}

}  // namespace borderscan::sandbox
