#pragma once
// Container expansion: archives (libarchive), documents that are ZIP
// containers and disk images held as files (libtsk), recursively and within
// limits. Members are never written to disk: small ones are held in memory,
// large ones streamed once. The work is done by a recursion_gate with the
// default container stages; this header names what they open.

#include <cstdint>
#include <functional>

#include "borderscan/scanner/limits.hpp"
#include "borderscan/scanner/object_scanner.hpp"
#include "borderscan/scanner/recursion_gate.hpp"
#include "borderscan/scanner/report.hpp"

namespace borderscan::scanner {

// Is this object a container libarchive opens (by its MIME type)?
bool is_container(const file_entry& entry);
// Does this object look like a raw disk or file-system image (MBR/GPT disk,
// FAT, NTFS, ext, HFS+ ...) that libtsk can walk from its content?
bool is_disk_image(const file_entry& entry);
// Either of the two: something the default container stages open.
inline bool is_expandable(const file_entry& entry) {
  return is_container(entry) || is_disk_image(entry);
}

// The callbacks of container_expander.
struct expansion_sink {
  std::function<void(file_entry&&)> member;  // a scanned member, with container and depth set
  std::function<void(error_entry&&)> error;
  std::function<void(limit_hit&&)> limit;
  std::function<bool()> stop;  // cancel or deadline: stop between members
  std::function<void(std::uint64_t)> on_bytes;
};

// Expands one object that was scanned already, through a recursion_gate with
// the default stages, reporting to callbacks (the fuzz targets use it). One
// per thread, paired with that thread's object_scanner.
class container_expander {
 public:
  container_expander(const limits& lim, object_scanner& scanner, expansion_budget& budget);

  // `parent` was just scanned from `source`. Lists and scans its members
  // (recursively), reporting them to the sink. A disk image's files are
  // members too: "/stick/backup.img!/DCIM/a.jpg" (single volume) or
  // "/disk.img!vol1/a.jpg" (partitioned). Findings about the container
  // itself (archive_bomb, encrypted_archive) are added to `parent`.
  void expand(file_entry& parent, content_source& source, const expansion_sink& sink);

 private:
  const limits& limits_;
  object_scanner& scanner_;
  expansion_budget& budget_;
};

}  // namespace borderscan::scanner
