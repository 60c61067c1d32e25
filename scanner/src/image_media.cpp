#include "image_media.hpp"

#include <archive.h>
#include <archive_entry.h>

#include <array>
#include <cstring>
#include <fstream>

#include "borderscan/scanner/digest.hpp"
#include "borderscan/scanner/error.hpp"
#include "c_handle.hpp"
#include "digest.hpp"

namespace borderscan::scanner::detail {
namespace {

using archive_ptr = std::unique_ptr<archive, c_deleter<&archive_read_free>>;

// The single-stream compressions an image is commonly copied in, by their
// format's own magic numbers (RFC 1952, the xz and zstd specifications, bzip2's
// stream header "BZh" + level + block magic).
std::optional<std::string> sniff_compression(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::array<unsigned char, 16> h{};
  in.read(reinterpret_cast<char*>(h.data()), h.size());
  const auto n = static_cast<std::size_t>(in.gcount());
  if (n >= 3 && h[0] == 0x1f && h[1] == 0x8b && h[2] == 0x08) {
    return "gzip";
  }
  if (n >= 6 && std::memcmp(h.data(),
                            "\xfd"
                            "7zXZ\0",
                            6) == 0) {
    return "xz";
  }
  if (n >= 4 && h[0] == 0x28 && h[1] == 0xb5 && h[2] == 0x2f && h[3] == 0xfd) {
    return "zstd";
  }
  if (n >= 10 && h[0] == 'B' && h[1] == 'Z' && h[2] == 'h' && h[3] >= '1' && h[3] <= '9' &&
      std::memcmp(h.data() + 4, "\x31\x41\x59\x26\x53\x59", 6) == 0) {
    return "bzip2";
  }
  return std::nullopt;
}

}  // namespace

image_media::image_media(const std::vector<std::filesystem::path>& segments, scratch_space* scratch, const limits& lim)
    : files_(segments) {
  if (const auto compression = sniff_compression(files_.front())) {
    if (files_.size() != 1) {
      throw scan_error(scan_errc::image_open_failed, "a " + *compression + "-compressed image comes as one file, not " +
                                                         std::to_string(files_.size()) + " segments");
    }
    compression_ = *compression;
    decompress(scratch, lim);
    files_ = {decompressed_->path()};
  }
  container_ = sniff_container(files_.front());
  if (container_ && !can_open(*container_)) {
    throw scan_error(scan_errc::image_open_failed,
                     std::string(container_description(*container_)) + ": not read by this scanner");
  }
}

void image_media::decompress(scratch_space* scratch, const limits& lim) {
  if (scratch == nullptr) {
    throw scan_error(
        scan_errc::image_open_failed,
        "the image is " + compression_ + "-compressed and this scan has no scratch folder to expand it in");
  }
  archive_ptr a(archive_read_new());
  archive_read_support_filter_all(a.get());
  archive_read_support_format_raw(a.get());
  archive_entry* entry = nullptr;
  if (archive_read_open_filename(a.get(), files_.front().c_str(), 1 << 20) != ARCHIVE_OK ||
      archive_read_next_header(a.get(), &entry) != ARCHIVE_OK) {
    throw scan_error(scan_errc::image_open_failed,
                     "cannot decompress the " + compression_ + " image: " +
                         (archive_error_string(a.get()) ? archive_error_string(a.get()) : "unknown error"));
  }
  decompressed_ = scratch->create("decompressed.img");
  sha256_hasher hash;
  std::vector<std::byte> buf(1 << 20);
  for (;;) {
    const la_ssize_t n = archive_read_data(a.get(), buf.data(), buf.size());
    if (n < 0) {
      // A truncated or damaged stream: what came out before is still the device's start.
      throw scan_error(scan_errc::image_open_failed,
                       "the " + compression_ + " image is damaged after " + std::to_string(decompressed_->size()) +
                           " bytes: " + (archive_error_string(a.get()) ? archive_error_string(a.get()) : "read error"));
    }
    if (n == 0) {
      break;
    }
    auto piece = std::span(buf).first(static_cast<std::size_t>(n));
    const std::uint64_t room = lim.max_decompressed_image_bytes - decompressed_->size();
    if (piece.size() > room) {
      piece = piece.first(static_cast<std::size_t>(room));
      cut = limit_hit{"max_decompressed_image_bytes", std::to_string(lim.max_decompressed_image_bytes), "", {}};
    }
    decompressed_->append(piece);
    hash.update(piece);
    if (cut) {
      break;
    }
  }
  if (decompressed_->size() == 0) {
    throw scan_error(scan_errc::image_empty, "the " + compression_ + " image decompresses to nothing");
  }
  decompressed_size_ = decompressed_->size();
  decompressed_sha256_ = to_hex(hash.finish());
}

std::unique_ptr<tsk_image> image_media::open() const {
  // qcow and VHDX through libyal; everything else (raw, split raw, E01, VHD,
  // VMDK) libtsk opens by itself.
  if (container_ == disk_container::qcow || container_ == disk_container::vhdx) {
    return std::make_unique<tsk_image>(std::make_unique<virtual_disk>(*container_, files_));
  }
  return std::make_unique<tsk_image>(files_);
}

media_info image_media::hash_media(const std::string& format) const {
  media_info m;
  if (format == "raw" || format == "split raw" || format == "unknown") {
    if (!compression_.empty()) {
      m.size = decompressed_size_;
      m.sha256 = decompressed_sha256_;
    }
    return m;  // a raw image received as is: its bytes are the device's (image.sha256)
  }
  std::unique_ptr<virtual_disk> disk;
  std::unique_ptr<tsk_image> image;
  if (container_ == disk_container::ewf || container_ == disk_container::qcow || container_ == disk_container::vhdx) {
    // E01 through libewf too: it also gives the hashes stored at acquisition.
    std::vector<std::filesystem::path> all = files_;
    if (container_ == disk_container::ewf) {
      all = open()->segments();
    }
    disk = std::make_unique<virtual_disk>(*container_, all);
  } else {
    image = open();
  }
  multi_hasher hasher;
  std::vector<std::byte> buf(1 << 20);
  const std::uint64_t size = disk ? disk->size() : image->size();
  std::uint64_t offset = 0;
  while (offset < size) {
    const std::size_t n = disk ? disk->read_at(offset, buf) : image->read(offset, buf);
    if (n == 0) {
      throw scan_error(scan_errc::short_read, "the device inside the image ends at byte " + std::to_string(offset) +
                                                  " of " + std::to_string(size));
    }
    hasher.update(std::span(buf).first(n));
    offset += n;
  }
  const digests d = hasher.finish();
  m.size = size;
  m.sha256 = to_hex(d.sha256);
  m.md5 = to_hex(d.md5);
  m.sha1 = to_hex(d.sha1);
  if (disk) {
    const stored_media_hashes stored = disk->stored_hashes();
    m.stored_md5 = stored.md5;
    m.stored_sha1 = stored.sha1;
    if (stored.md5 || stored.sha1) {
      m.acquisition_verified = (!stored.md5 || *stored.md5 == *m.md5) && (!stored.sha1 || *stored.sha1 == *m.sha1);
    }
  }
  return m;
}

}  // namespace borderscan::scanner::detail
