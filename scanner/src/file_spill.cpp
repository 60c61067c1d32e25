#include "borderscan/scanner/file_spill.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>
#include <tuple>

namespace borderscan::scanner {
namespace {

[[noreturn]] void fail(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

}  // namespace

file_spill::file_spill(const std::filesystem::path& dir, std::uint64_t max_bytes) : max_bytes_(max_bytes) {
  fd_ = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd_ < 0) {
    fail("cannot create a temporary file for report entries in " + dir.string());
  }
}

std::shared_ptr<file_spill> file_spill::open_in(const std::filesystem::path& dir, std::uint64_t max_bytes,
                                                std::string& why) noexcept {
  try {
    return std::make_shared<file_spill>(dir.empty() ? std::filesystem::temp_directory_path() : dir, max_bytes);
  } catch (const std::exception& e) {
    why = e.what();
    return nullptr;
  }
}

file_spill::~file_spill() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

void file_spill::add(const file_entry& entry) {
  const std::string text = report_element_text(nlohmann::json(entry));
  if (max_bytes_ != 0 && end_ + text.size() > max_bytes_) {
    errno = EFBIG;
    fail("the report entries outgrew their temporary file's limit of " + std::to_string(max_bytes_) + " bytes");
  }
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::pwrite(fd_, text.data() + done, text.size() - done, static_cast<off_t>(end_ + done));
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      fail("cannot write report entries to their temporary file");
    }
    done += static_cast<std::size_t>(n);
  }
  std::int8_t max_level = -1;
  for (const auto& fi : entry.findings) {
    max_level = std::max(max_level, static_cast<std::int8_t>(fi.level));
  }
  index_.push_back({entry.volume, entry.inode, entry.path, end_, static_cast<std::uint32_t>(text.size()), max_level});
  end_ += text.size();
  tally_file(entry, tally_, findings_);
  ++per_volume_[entry.volume];
}

void file_spill::sort() {
  std::stable_sort(index_.begin(), index_.end(), [](const slot& a, const slot& b) {
    return std::tie(a.volume, a.path, a.inode) < std::tie(b.volume, b.path, b.inode);
  });
}

std::string file_spill::read_text(const slot& s) const {
  std::string text(s.length, '\0');
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::pread(fd_, text.data() + done, text.size() - done, static_cast<off_t>(s.offset + done));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      fail("cannot read report entries back from their temporary file");
    }
    done += static_cast<std::size_t>(n);
  }
  return text;
}

void file_spill::for_each_text(const std::vector<file_entry>& others,
                               const std::function<void(std::string_view)>& fn) const {
  auto other = others.begin();
  for (const auto& s : index_) {
    // Equal keys: the spilled entry first, as it was added first.
    for (; other != others.end() &&
           std::tie(other->volume, other->path, other->inode) < std::tie(s.volume, s.path, s.inode);
         ++other) {
      fn(report_element_text(nlohmann::json(*other)));
    }
    fn(read_text(s));
  }
  for (; other != others.end(); ++other) {
    fn(report_element_text(nlohmann::json(*other)));
  }
}

std::vector<file_entry> file_spill::load(const std::vector<file_entry>& others) const {
  std::vector<file_entry> out;
  out.reserve(index_.size() + others.size());
  for_each_text(others, [&](std::string_view text) { out.push_back(nlohmann::json::parse(text).get<file_entry>()); });
  return out;
}

std::uint64_t file_spill::files_at_or_above(severity level) const noexcept {
  return static_cast<std::uint64_t>(std::count_if(
      index_.begin(), index_.end(), [&](const slot& s) { return s.max_level >= static_cast<std::int8_t>(level); }));
}

std::uint64_t file_spill::files_in_volume(std::uint32_t volume) const noexcept {
  const auto it = per_volume_.find(volume);
  return it == per_volume_.end() ? 0 : it->second;
}

}  // namespace borderscan::scanner
