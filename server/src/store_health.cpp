#include "borderscan/server/store_health.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace borderscan::server {

void store_health::failing(std::string why) {
  std::lock_guard lock(mutex_);
  problem_ = std::move(why);
}

void store_health::recovered() {
  std::lock_guard lock(mutex_);
  problem_.reset();
}

std::optional<std::string> store_health::problem() const {
  std::lock_guard lock(mutex_);
  return problem_;
}

bool store_health::probe(const std::filesystem::path& dir, std::size_t bytes) {
  const std::filesystem::path file = dir / ".write-probe";
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  int err = fd < 0 ? errno : 0;
  if (fd >= 0) {
    // Real bytes, synced: a file system that only has room for the name fails here.
    const std::vector<char> zeros(bytes, '\0');
    std::size_t done = 0;
    while (err == 0 && done < zeros.size()) {
      const ssize_t n = ::write(fd, zeros.data() + done, zeros.size() - done);
      if (n < 0 && errno != EINTR) {
        err = errno;
      } else if (n > 0) {
        done += static_cast<std::size_t>(n);
      }
    }
    if (err == 0 && ::fsync(fd) != 0) {
      err = errno;
    }
    ::close(fd);
    ::unlink(file.c_str());
  }
  if (err != 0) {
    std::lock_guard lock(mutex_);
    if (!problem_) {  // the store's own reason says more than the probe's
      problem_ = "cannot write in " + dir.string() + ": " + std::strerror(err);
    }
    return false;
  }
  recovered();
  return true;
}

}  // namespace borderscan::server
