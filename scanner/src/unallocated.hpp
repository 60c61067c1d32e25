#pragma once
// Unallocated space: bytes no file owns any more. Each file system's free
// blocks (libtsk block walk), the space of its volume past its end, and the
// unpartitioned gaps of the image are read as one stream per area (like
// blkls output: runs in address order, joined), cut into chunks that overlap,
// and YARA-scanned by the scan's worker threads. Only YARA sees these bytes:
// no hashes, libmagic or file entries (a large card has millions of runs).
//
// The walking thread plans (unallocated_planner); any worker scans a chunk
// (scan_unallocated_chunk) with its own tsk_image and object_scanner.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "borderscan/scanner/limits.hpp"
#include "borderscan/scanner/object_scanner.hpp"
#include "borderscan/scanner/report.hpp"
#include "tsk_image.hpp"

namespace borderscan::scanner::detail {

// Chunk size and overlap: a match up to 64 KiB long that straddles two
// chunks lies wholly in the first one's overlap, and is reported once.
inline constexpr std::uint64_t unallocated_chunk_bytes = 4 << 20;
inline constexpr std::uint64_t unallocated_overlap_bytes = 64 << 10;
// At most this many separate runs per chunk, so a queued chunk stays small
// however fragmented the free space is.
inline constexpr std::size_t unallocated_chunk_runs = 256;

struct image_extent {
  std::uint64_t offset = 0, length = 0;  // bytes in the image
};

// Where a chunk comes from: a file system's unallocated space, or a gap.
struct unallocated_area {
  std::size_t index = 0;                // the scan's own numbering of areas
  std::optional<std::uint32_t> volume;  // set for a file system, unset for a gap
};

struct unallocated_chunk {
  unallocated_area area;
  std::vector<image_extent> extents;  // in stream order
  // The first own_length bytes are this chunk's; the rest is overlap that
  // the next chunk scans again (and reports).
  std::uint64_t own_length = 0;
  std::uint64_t length() const;
  // Image offset of byte `at` of the chunk.
  std::uint64_t image_offset(std::uint64_t at) const;
};

// Object path of unallocated content at image offset `offset`:
// `/$Unallocated@OFFSET` in a file system, `$Gap@OFFSET` between partitions.
std::string unallocated_path(const unallocated_area& area, std::uint64_t offset);

// Turns areas into chunks within max_unallocated_bytes (shared by all areas
// of a scan); records the limit once when it stops the look. Walking thread only.
class unallocated_planner {
 public:
  using emit_fn = std::function<void(unallocated_chunk&&)>;
  unallocated_planner(const limits& lim, std::uint64_t image_size, walk_sink& sink, emit_fn emit);

  // A file system's free blocks and its volume's bytes past its end; returns
  // how many bytes of unallocated space the area has in the image.
  std::uint64_t add_filesystem(TSK_FS_INFO& fs, const volume_plan& volume, std::size_t area);
  void add_gap(const layout_gap& gap, std::size_t area);

  class chunker;

 private:
  friend class chunker;
  void take(chunker& c, image_extent e, const unallocated_area& area);

  const limits& limits_;
  std::uint64_t image_size_;
  walk_sink& sink_;
  emit_fn emit_;
  std::uint64_t left_;  // of the budget
  bool exhausted_ = false;
};

struct chunk_outcome {
  std::vector<finding> findings;
  std::vector<error_entry> errors;
  std::uint64_t bytes_read = 0;  // of the chunk's own bytes
  bool holds_data = false;       // a non-zero byte among them
};

// Reads one chunk (into `buffer`, reused) and YARA-scans it. Findings carry
// the image offset of their first match in the path and in meta {offset,
// length}; their matches' offsets are image offsets too.
chunk_outcome scan_unallocated_chunk(const unallocated_chunk& chunk, tsk_image& image, object_scanner& scanner,
                                     std::vector<std::byte>& buffer);

}  // namespace borderscan::scanner::detail
