#pragma once
// Container expansion: archives (libarchive) and documents that are ZIP
// containers, recursively and within limits. Members are never written to
// disk: small ones are held in memory, large ones streamed once.
// One container_expander per thread, paired with that thread's object_scanner.

#include <atomic>
#include <cstdint>
#include <functional>

#include "borderscan/scanner/limits.hpp"
#include "borderscan/scanner/object_scanner.hpp"
#include "borderscan/scanner/report.hpp"

namespace borderscan::scanner {

namespace detail {
struct expansion_meter;
}

// Shared by every thread of one scan: the budget of expanded bytes.
struct expansion_budget {
  std::atomic<std::uint64_t> expanded_bytes{0};
  std::atomic<bool> total_limit_reported{false};
};

struct expansion_sink {
  std::function<void(file_entry&&)> member;  // a scanned member, with container and depth set
  std::function<void(error_entry&&)> error;
  std::function<void(limit_hit&&)> limit;
  std::function<bool()> stop;  // cancel or deadline: stop between members
  std::function<void(std::uint64_t)> on_bytes;
};

// Is this object a container we open (by its MIME type)?
bool is_container(const file_entry& entry);
// Does this object look like a raw disk or file-system image (MBR/GPT disk,
// FAT, NTFS, ext, HFS+ ...) that libtsk can walk from its content?
bool is_disk_image(const file_entry& entry);
// Either of the two: something container_expander::expand opens.
inline bool is_expandable(const file_entry& entry) {
  return is_container(entry) || is_disk_image(entry);
}

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
  // outer: the enclosing container's expansion meter (internal type), or null.
  void expand_nested(file_entry& parent, content_source& source, const expansion_sink& sink,
                     detail::expansion_meter* outer);
  void expand_archive(file_entry& parent, content_source& source, const expansion_sink& sink,
                      detail::expansion_meter* outer);
  // Returns the number of members found (to tell "no member" from "opened").
  std::uint64_t expand_archive_as(file_entry& parent, content_source& source, const expansion_sink& sink,
                                  detail::expansion_meter* outer, bool raw_only);
  void expand_disk_image(file_entry& parent, content_source& source, const expansion_sink& sink,
                         detail::expansion_meter* outer);
  const limits& limits_;
  object_scanner& scanner_;
  expansion_budget& budget_;
};

}  // namespace borderscan::scanner
