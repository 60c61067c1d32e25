#pragma once
// Room for the temporary files a scan makes: a disk image held as a file on
// the device, spooled so that libyal can open it by name, or an uploaded
// image decompressed before it is walked. The folder is reached through a
// descriptor opened before the worker's sandbox, which lets the worker create
// and remove files relative to that descriptor only.

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace borderscan::scanner {

class scratch_space {
 public:
  // A file of the scratch space, removed when this object goes.
  class file {
   public:
    file(const file&) = delete;
    file& operator=(const file&) = delete;
    ~file();
    const std::filesystem::path& path() const noexcept { return path_; }
    std::uint64_t size() const noexcept { return size_; }
    // Appends; throws scan_error(read_failed) with the reason (a full disk).
    void append(std::span<const std::byte> bytes);
    // Reads back what was appended; throws scan_error(read_failed).
    std::size_t read_at(std::uint64_t offset, std::span<std::byte> out) const;

   private:
    friend class scratch_space;
    file(int dir_fd, std::string name, std::filesystem::path path, int fd)
        : dir_fd_(dir_fd), name_(std::move(name)), path_(std::move(path)), fd_(fd) {}
    int dir_fd_;
    std::string name_;
    std::filesystem::path path_;
    int fd_;
    std::uint64_t size_ = 0;
  };

  // `dir_fd` is a descriptor of `dir` the caller keeps open (the worker's,
  // opened before its sandbox), or -1 to open one here.
  scratch_space(std::filesystem::path dir, int dir_fd = -1);
  ~scratch_space();
  scratch_space(const scratch_space&) = delete;
  scratch_space& operator=(const scratch_space&) = delete;

  const std::filesystem::path& dir() const noexcept { return dir_; }

  // A new empty file whose name ends with `name_hint`'s safe characters
  // (libvmdk finds a sparse VMDK's data by the name its descriptor gives).
  // Throws scan_error(read_failed) when it cannot be made.
  std::unique_ptr<file> create(std::string_view name_hint);

 private:
  std::filesystem::path dir_;
  int dir_fd_;
  bool own_fd_;
  std::atomic<std::uint64_t> next_{0};
};

}  // namespace borderscan::scanner
