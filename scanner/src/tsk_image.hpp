#pragma once
// libtsk side of a scan: open the image, find volumes and file systems, walk
// every name (allocated and deleted), and read content per thread.
// TSK handles are not shared between threads: the walker and each worker open
// their own (TSK's error slot is per thread too).

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "borderscan/scanner/limits.hpp"
#include "borderscan/scanner/object_scanner.hpp"
#include "borderscan/scanner/recursion_gate.hpp"
#include "borderscan/scanner/report.hpp"

struct TSK_FS_INFO;

namespace borderscan::scanner::detail {

// Where a file system lives and how to open it again in another thread.
struct volume_plan {
  volume_entry entry;
  int fs_type = 0;  // TSK_FS_TYPE_ENUM resolved at discovery; 0 = none
  // An APFS volume: its superblock's block in the container at entry.offset.
  std::optional<std::uint64_t> apfs_block;
};

// Image bytes that no partition covers (and that are not the partition
// table itself), between volumes or after the last one (volume_layout.cpp).
struct layout_gap {
  std::uint64_t offset = 0, length = 0;
  std::optional<std::uint32_t> after, before;  // the neighbouring volumes' indexes
};

// Content to scan: one data stream of one file, or the head of a raw volume.
struct content_ref {
  enum class kind { file_stream, volume_head } what = kind::file_stream;
  std::uint64_t inode = 0;
  std::optional<std::uint16_t> attr_id;  // stream; default stream when empty
  std::uint64_t length = 0;              // volume_head: bytes to scan
};

struct walk_item {
  file_entry entry;
  std::optional<content_ref> content;  // nothing to read for directories and name-only entries
};

// Receives what a walk finds. Called on the walking thread only.
class walk_sink {
 public:
  virtual void item(walk_item&& item) = 0;
  virtual void error(error_entry&& e) = 0;
  virtual void warning(std::string&& w) = 0;
  virtual void limit(limit_hit&& l) = 0;
  virtual bool stop() = 0;  // checked between entries: cancel, deadline, a container's limit

 protected:
  ~walk_sink() = default;
};

class tsk_image {
 public:
  // Throws scan_error(image_open_failed / image_empty) with libtsk's reason.
  explicit tsk_image(const std::vector<std::filesystem::path>& segments);
  // A disk image held inside another object (a file on the device, an
  // archive member): libtsk reads it through `source`, which must outlive this.
  explicit tsk_image(content_source& source);
  // The same, owning the source (a virtual disk opened for this image alone).
  explicit tsk_image(std::unique_ptr<content_source> source);
  ~tsk_image();
  tsk_image(const tsk_image&) = delete;
  tsk_image& operator=(const tsk_image&) = delete;

  std::uint64_t size() const;
  std::string format() const;
  // The image's own bytes (the device's, for a container format), at `offset`.
  // Returns the bytes read, 0 at the end; throws scan_error(read_failed).
  std::size_t read(std::uint64_t offset, std::span<std::byte> out);
  // The files libtsk actually reads (split raw and E01 segments found from the first name).
  std::vector<std::filesystem::path> segments() const;

  // Volume system (MBR/GPT) or the whole image; each volume's file system
  // opened (with explicit FAT types when auto-detection fails).
  std::vector<volume_plan> discover_volumes(walk_sink& sink);

  // Lists every entry of one volume's file system, or the raw head of a
  // volume without one.
  void walk(volume_plan& volume, const limits& lim, walk_sink& sink);

  // Opens a content source for one item on this thread's handles.
  std::unique_ptr<content_source> open(const volume_plan& volume, const content_ref& ref);

  // Unpartitioned gaps found by discover_volumes, in image order.
  const std::vector<layout_gap>& gaps() const { return gaps_; }
  // A volume's file system on this thread's handles (volume.fs_type != 0).
  TSK_FS_INFO& filesystem(const volume_plan& volume) { return *fs_for(volume); }
  // Image bytes at `offset`, as many as there are; throws scan_error(read_failed).
  std::size_t read_raw(std::uint64_t offset, std::span<std::byte> out);

 private:
  // Opens the file system of a volume found by discover_volumes, noting in the
  // plan what was found or why nothing was.
  void open_filesystem(volume_plan& plan);
  // When `container` holds an APFS container: its volumes, appended to `out`.
  bool add_apfs_volumes(const volume_plan& container, std::vector<volume_plan>& out);
  void list_raw_head(volume_plan& volume, const limits& lim, walk_sink& sink);
  TSK_FS_INFO* fs_for(const volume_plan& volume);
  struct external;
  struct handles;
  std::unique_ptr<content_source> owned_source_;  // first: outlives the handles reading it  // libtsk's handles of the
                                                  // image and its file systems, closed by RAII
  std::unique_ptr<external> external_;
  std::unique_ptr<handles> handles_;  // after external_: closed before that memory goes
  std::vector<layout_gap> gaps_;
};

// One item's content on a tsk_image, opened when the gate reads it.
class tsk_content final : public stored_member {
 public:
  tsk_content(tsk_image& image, const volume_plan& volume, const content_ref& ref)
      : image_(image), volume_(volume), ref_(ref) {}
  std::unique_ptr<content_source> open() override { return image_.open(volume_, ref_); }

 private:
  tsk_image& image_;
  const volume_plan& volume_;
  const content_ref& ref_;
};

}  // namespace borderscan::scanner::detail
