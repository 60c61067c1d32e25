#include "borderscan/scanner/scratch.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "borderscan/scanner/error.hpp"

namespace borderscan::scanner {
namespace {

[[noreturn]] void fail(const std::string& what) {
  throw scan_error(scan_errc::read_failed, what + ": " + std::strerror(errno));
}

// The hint comes from a hostile image: only a short tail of plain characters
// reaches the file system, never a separator or a leading dot.
std::string safe_tail(std::string_view hint) {
  std::string out;
  for (const char c : hint) {
    const bool plain =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
    out += plain ? c : '_';
  }
  if (out.size() > 80) {
    out.erase(0, out.size() - 80);
  }
  return out;
}

}  // namespace

scratch_space::scratch_space(std::filesystem::path dir, int dir_fd)
    : dir_(std::move(dir)), dir_fd_(dir_fd), own_fd_(dir_fd < 0) {
  if (own_fd_) {
    dir_fd_ = ::open(dir_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd_ < 0) {
      fail("scratch folder " + dir_.string());
    }
  }
}

scratch_space::~scratch_space() {
  if (own_fd_) {
    ::close(dir_fd_);
  }
}

std::unique_ptr<scratch_space::file> scratch_space::create(std::string_view name_hint) {
  std::string name =
      "scratch-" + std::to_string(::getpid()) + "-" + std::to_string(next_++) + "-" + safe_tail(name_hint);
  const int fd = ::openat(dir_fd_, name.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) {
    fail("cannot make a scratch file in " + dir_.string());
  }
  std::filesystem::path path = dir_ / name;
  return std::unique_ptr<file>(new file(dir_fd_, std::move(name), std::move(path), fd));
}

scratch_space::file::~file() {
  ::close(fd_);
  ::unlinkat(dir_fd_, name_.c_str(), 0);
}

void scratch_space::file::append(std::span<const std::byte> bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::pwrite(fd_, bytes.data(), bytes.size(), static_cast<off_t>(size_));
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      fail("cannot write the scratch file " + path_.string());
    }
    size_ += static_cast<std::uint64_t>(n);
    bytes = bytes.subspan(static_cast<std::size_t>(n));
  }
}

std::size_t scratch_space::file::read_at(std::uint64_t offset, std::span<std::byte> out) const {
  for (;;) {
    const ssize_t n = ::pread(fd_, out.data(), out.size(), static_cast<off_t>(offset));
    if (n >= 0) {
      return static_cast<std::size_t>(n);
    }
    if (errno != EINTR) {
      fail("cannot read the scratch file " + path_.string());
    }
  }
}

}  // namespace borderscan::scanner
