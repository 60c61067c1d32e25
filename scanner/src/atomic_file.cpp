#include "borderscan/scanner/atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace borderscan::scanner {
namespace {

[[noreturn]] void fail(const std::filesystem::path& file, const char* what, int err) {
  throw std::system_error(err, std::generic_category(), file.string() + ": " + what);
}

}  // namespace

void sync_directory(const std::filesystem::path& dir) {
  const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    fail(dir, "cannot open the folder", errno);
  }
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) {
    fail(dir, "cannot sync the folder", err);
  }
}

void write_file_atomically(const std::filesystem::path& file, std::string_view bytes) {
  write_file_atomically(
      file, [bytes](const piece_writer& write) { write(std::as_bytes(std::span(bytes.data(), bytes.size()))); });
}

void write_file_atomically(const std::filesystem::path& file, const std::function<void(const piece_writer&)>& fill) {
  const std::filesystem::path tmp = file.string() + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    fail(tmp, "cannot create", errno);
  }
  try {
    fill([&](std::span<const std::byte> piece) {
      for (std::size_t done = 0; done < piece.size();) {
        const ssize_t n = ::write(fd, piece.data() + done, piece.size() - done);
        if (n < 0 && errno == EINTR) {
          continue;
        }
        if (n <= 0) {
          fail(tmp, "cannot write", n < 0 ? errno : EIO);
        }
        done += static_cast<std::size_t>(n);
      }
    });
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  if (::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    fail(tmp, "cannot write", err);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), file.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    fail(file, "cannot replace", err);
  }
  sync_directory(file.parent_path());
}

}  // namespace borderscan::scanner
