#include "borderscan/server/body_stream.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

namespace borderscan::server {

file_body_stream::file_body_stream(const std::filesystem::path& path) : path_(path) {
  fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) {
    throw std::system_error(errno, std::generic_category(), "cannot open " + path_.string());
  }
  struct stat st {};
  // A directory or a device has no size to announce.
  const int err = ::fstat(fd_, &st) != 0 ? errno : S_ISDIR(st.st_mode) ? EISDIR : S_ISREG(st.st_mode) ? 0 : EINVAL;
  if (err != 0) {
    ::close(fd_);
    throw std::system_error(err, std::generic_category(), "cannot send " + path_.string() + " as a file");
  }
  size_ = static_cast<std::uint64_t>(st.st_size);
  left_ = size_;
}

file_body_stream::~file_body_stream() {
  ::close(fd_);
}

std::size_t file_body_stream::read(std::span<char> out) {
  const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(out.size(), left_));
  if (want == 0) {
    return 0;
  }
  for (;;) {
    const ssize_t n = ::read(fd_, out.data(), want);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      throw std::system_error(errno, std::generic_category(), "cannot read " + path_.string());
    }
    if (n == 0) {
      // The Content-Length promised more: fail rather than end short.
      throw std::system_error(
          EIO, std::generic_category(),
          path_.string() + " shrank while it was sent (" + std::to_string(left_) + " bytes missing)");
    }
    left_ -= static_cast<std::uint64_t>(n);
    return static_cast<std::size_t>(n);
  }
}

std::size_t chunked_body_stream::read(std::span<char> out) {
  while (offset_ == piece_.size()) {
    if (ended_) {
      return 0;
    }
    piece_ = next_();
    offset_ = 0;
    ended_ = piece_.empty();
  }
  const std::size_t n = std::min(out.size(), piece_.size() - offset_);
  std::memcpy(out.data(), piece_.data() + offset_, n);
  offset_ += n;
  return n;
}

}  // namespace borderscan::server
