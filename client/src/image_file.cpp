#include "borderscan/client/image_file.hpp"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "borderscan/client/error.hpp"

namespace borderscan::client {

namespace {

[[noreturn]] void fail(const std::filesystem::path& path, const char* doing, int err) {
  throw client_error(client_error::kind::local,
                     std::string("cannot ") + doing + " " + path.string() + ": " + std::strerror(err));
}

}  // namespace

image_file::image_file(const std::filesystem::path& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) {
    fail(path, "open", errno);
  }
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    const int err = errno;
    ::close(fd_);
    fail(path, "read", err);
  }
  if (S_ISREG(st.st_mode)) {
    size_ = static_cast<std::uint64_t>(st.st_size);
  } else if (S_ISBLK(st.st_mode)) {
    if (::ioctl(fd_, BLKGETSIZE64, &size_) != 0) {
      const int err = errno;
      ::close(fd_);
      fail(path, "size the device", err);
    }
  } else {
    ::close(fd_);
    throw client_error(client_error::kind::local, path.string() + " is not a file or a block device");
  }
}

image_file::~image_file() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

std::size_t image_file::read(char* buf, std::size_t n) {
  std::size_t got = 0;
  while (got < n) {
    const ssize_t r = ::read(fd_, buf + got, n - got);
    if (r < 0) {
      if (errno == EINTR) {
        continue;
      }
      fail(path_, "read", errno);
    }
    if (r == 0) {
      break;
    }
    got += static_cast<std::size_t>(r);
  }
  return got;
}

}  // namespace borderscan::client
