#pragma once
// Virtual-disk containers (E01, qcow, VHD/VHDX, VMDK) read through their
// libyal library: the device's bytes as a content_source that libtsk walks
// like any image. Opened by file name: an uploaded image, or a file of the
// device spooled to the scan's scratch space first.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "borderscan/scanner/object_scanner.hpp"

namespace borderscan::scanner::detail {

enum class disk_container { ewf, qcow, vhd, vhdx, vmdk, vdi };

// The format's short name ("ewf", "qcow", "vhdx", ...), as in image.format.
std::string_view container_name(disk_container c);
// Said to people: "an E01 (EWF) forensic image".
std::string_view container_description(disk_container c);

// What the first bytes (and, for VHD, the last 512) say the content is, by
// each format's own signature. libmagic names most of these, but not VHDX.
std::optional<disk_container> sniff_container(content_source& source);
std::optional<disk_container> sniff_container(const std::filesystem::path& file);

// Whether this scanner opens the container (no Debian library reads VDI).
bool can_open(disk_container c);

// Hashes an E01 stores of the media it holds (from the acquisition).
struct stored_media_hashes {
  std::optional<std::string> md5, sha1;  // lower-case hex
};

class virtual_disk final : public content_source {
 public:
  // `files`: the container (E01: every segment, in order). Throws
  // scan_error(image_open_failed) with the library's reason.
  virtual_disk(disk_container format, const std::vector<std::filesystem::path>& files);
  ~virtual_disk() override;
  virtual_disk(const virtual_disk&) = delete;
  virtual_disk& operator=(const virtual_disk&) = delete;

  disk_container format() const noexcept { return format_; }
  std::uint64_t size() const override { return media_size_; }
  std::size_t read_at(std::uint64_t offset, std::span<std::byte> out) override;
  stored_media_hashes stored_hashes() const;

  struct handle;  // one library's handle and its calls

 private:
  disk_container format_;
  std::unique_ptr<handle> handle_;
  std::uint64_t media_size_ = 0;
  std::mutex mutex_;  // libyal handles are not safe for concurrent reads
};

}  // namespace borderscan::scanner::detail
