#pragma once
// An image to upload, read in pieces: a regular file or a block device (a
// kiosk may read the stick directly, /dev/sdb), with its size known up front
// so the upload can announce Content-Length. Errors are client_error(local)
// naming the file.

#include <cstddef>
#include <cstdint>
#include <filesystem>

namespace borderscan::client {

class image_file {
 public:
  explicit image_file(const std::filesystem::path& path);
  ~image_file();
  image_file(const image_file&) = delete;
  image_file& operator=(const image_file&) = delete;

  std::uint64_t size() const noexcept { return size_; }
  const std::filesystem::path& path() const noexcept { return path_; }
  // Fills buf with up to n bytes; fewer only at the end of the file.
  std::size_t read(char* buf, std::size_t n);

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
};

}  // namespace borderscan::client
