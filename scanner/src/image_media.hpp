#pragma once
// How a scan reaches the device's bytes from the files it was given: as they
// are (raw, split raw, and the containers libtsk opens itself: E01, VHD,
// VMDK), through a libyal library (qcow, VHDX), or decompressed first into
// the scratch space (a single-stream .gz, .xz, .zst or .bz2 image).

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "borderscan/scanner/limits.hpp"
#include "borderscan/scanner/report.hpp"
#include "borderscan/scanner/scratch.hpp"
#include "tsk_image.hpp"
#include "virtual_disk.hpp"

namespace borderscan::scanner::detail {

class image_media {
 public:
  // Decompresses when it has to (bounded by limits.max_decompressed_image_bytes;
  // a cut is recorded in `cut`). Throws scan_error(image_open_failed) when the
  // image cannot be reached at all.
  image_media(const std::vector<std::filesystem::path>& segments, scratch_space* scratch, const limits& lim);

  // One image handle per thread (libtsk's are not shared).
  std::unique_ptr<tsk_image> open() const;

  // "gzip", "xz", "zstd", "bzip2"; empty when the image came as it is.
  const std::string& compression() const noexcept { return compression_; }
  // The decompressed bytes, when they were.
  std::uint64_t decompressed_size() const noexcept { return decompressed_size_; }
  const std::string& decompressed_sha256() const noexcept { return decompressed_sha256_; }
  // Set when max_decompressed_image_bytes stopped the decompression.
  std::optional<limit_hit> cut;
  // The container read through libyal, if one is.
  std::optional<disk_container> container() const noexcept { return container_; }

  // Reads the whole device once: media size and hashes, and for an E01 the
  // acquisition hashes it stores, compared with what was read. Meant for a
  // thread of its own beside the walk; throws scan_error on a read failure.
  media_info hash_media(const std::string& format) const;

 private:
  void decompress(scratch_space* scratch, const limits& lim);

  std::vector<std::filesystem::path> files_;  // what libtsk or libyal opens
  std::optional<disk_container> container_;
  std::string compression_;
  std::unique_ptr<scratch_space::file> decompressed_;
  std::uint64_t decompressed_size_ = 0;
  std::string decompressed_sha256_;
};

}  // namespace borderscan::scanner::detail
