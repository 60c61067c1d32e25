#pragma once
// The one way deeper, shaped like ClamAV's cli_magic_scan with its
// cli_recursion_stack_push and cli_checklimits. Every child object of a scan
// (an archive member, a file inside a disk image held as a file, the raw
// stream of a compressed file) enters through recursion_gate::recurse, which
// applies the container limits, records each limit it hits, classifies the
// child with the object_scanner and, when a container stage claims the child,
// opens it with that stage.
//
// Container stages only enumerate: they hand every member to the gate and
// never check a limit themselves. A new container type is one container_stage
// subclass, registered in default_container_stages() (or in the list a gate
// is given).
//
// Threads: one recursion_gate per thread, paired with that thread's
// object_scanner; a gate is not thread-safe. The expansion_budget and the
// scan_sink are shared by the threads of one scan. Stages hold no state and
// are shared by every gate.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "borderscan/scanner/limits.hpp"
#include "borderscan/scanner/object_scanner.hpp"
#include "borderscan/scanner/report.hpp"

namespace borderscan::scanner {

// Shared by every thread of one scan: the budget of expanded bytes.
struct expansion_budget {
  std::atomic<std::uint64_t> expanded_bytes{0};
  std::atomic<bool> total_limit_reported{false};
};

// Where a gate's results go. One sink serves every thread of a scan, so
// implementations are thread-safe.
class scan_sink {
 public:
  virtual void add_file(file_entry&& f) = 0;  // a child object, done (container and depth set)
  virtual void add_error(error_entry&& e) = 0;
  virtual void add_limit(limit_hit&& l) = 0;
  // Empty while the scan goes on. Once it has to stop (cancelled, deadline
  // passed): why, as the `skipped` text of a file left unread. Records the
  // stop in the report the first time it is seen.
  virtual std::optional<std::string_view> stop_reason() = 0;
  virtual void add_bytes(std::uint64_t n) = 0;  // content bytes read, for progress

 protected:
  ~scan_sink() = default;
};

// The bytes of a member that its container inflates (decompresses, unpacks)
// while they are read: one pass, front to back.
class inflated_member {
 public:
  // Fills the front of `out` with the member's next bytes; returns how many,
  // 0 at its end. Throws scan_error(read_failed) when the container is corrupt.
  virtual std::size_t read(std::span<std::byte> out) = 0;

 protected:
  ~inflated_member() = default;
};

// The bytes of a member stored as they are (a file of a file system inside a
// disk image): opened only when the gate decides to read them.
class stored_member {
 public:
  // Throws scan_error when the member cannot be opened.
  virtual std::unique_ptr<content_source> open() = 0;

 protected:
  ~stored_member() = default;
};

// How a container yields its members' bytes, which decides the limits the
// gate applies to them.
enum class member_bytes {
  // Inflated while read (archives, compressed streams). The scan-wide budget
  // (max_total_expanded_bytes) is checked before the container is opened and
  // charged as bytes come out; members count against max_members; a member's
  // declared size is checked against max_member_bytes and the expansion
  // ratio before it is read; reading stops as soon as a limit is reached;
  // members up to member_memory_bytes are held in memory, larger ones are
  // streamed once (and, being containers, are not opened).
  inflated,
  // Stored as they are (files of a disk image). Nothing is inflated, so the
  // scan-wide budget is not charged, and the walk is bounded by max_files
  // rather than max_members. Each member's bytes count against the expansion
  // ratio once read, because files that share blocks can amplify an image.
  stored,
};

class container_stage;
class recursion_gate;
class scratch_space;

// One container being expanded: an entry of the gate's recursion stack,
// made by the gate around a stage's expand() and handed back by the stage
// with each member it finds.
class container {
 public:
  container(const container&) = delete;
  container& operator=(const container&) = delete;

  // The container's own entry: findings about the container go here.
  file_entry& entry() const noexcept { return entry_; }
  const container_stage& stage() const noexcept { return stage_; }
  // Members admitted so far (inflating containers).
  std::uint64_t members() const noexcept { return members_; }

 private:
  friend class recursion_gate;
  container(file_entry& entry, std::uint64_t size, std::uint32_t max_ratio, const container_stage& stage,
            container* outer);
  // Counts n more bytes expanded from here against this container's ratio and
  // every enclosing one's; false once this one or one around it went past.
  bool count(std::uint64_t n);
  bool stopped() const noexcept { return bomb_ || outer_stopped_ || budget_exhausted_; }

  file_entry& entry_;
  const container_stage& stage_;
  container* outer_;       // the enclosing container, or null at the top
  std::uint64_t size_;     // of the container's own content
  std::uint64_t allowed_;  // bytes it may expand to before it is a bomb
  std::uint64_t expanded_ = 0;
  std::uint64_t members_ = 0;
  bool bomb_ = false;
  bool outer_stopped_ = false;
  bool budget_exhausted_ = false;
  std::vector<std::byte> held_;  // the member in memory: reused from one member to the next
};

// Opens one type of container. Implementations hold no state.
class container_stage {
 public:
  virtual ~container_stage() = default;
  // Also the `stage` of the error on an inflated member that cannot be read
  // (a stored one that cannot be read is a `read` error, like any file's).
  virtual std::string_view name() const = 0;
  virtual member_bytes yields() const = 0;
  // Whether this stage opens `entry` (classified already: mime and description set).
  virtual bool claims(const file_entry& entry) const = 0;
  // Lists the members of `parent`, read from `source`, handing each to the
  // gate: gate.more() before taking the next one, gate.admit() for each
  // inflated member found, then gate.list() or gate.recurse(). A member's
  // path is given relative to the container ("dir/a.txt"); the gate prefixes
  // the container's. May throw scan_error when the container cannot be read
  // at all.
  virtual void expand(container& parent, content_source& source, recursion_gate& gate) const = 0;
  // The description of the archive_bomb finding on a container of this type.
  virtual std::string bomb_description(std::uint32_t max_ratio) const;
};

class recursion_gate {
 public:
  using stage_list = std::vector<const container_stage*>;

  // Stages are tried in order; the first that claims an object opens it.
  recursion_gate(const limits& lim, object_scanner& scanner, expansion_budget& budget, scan_sink& sink,
                 stage_list stages);
  recursion_gate(const recursion_gate&) = delete;
  recursion_gate& operator=(const recursion_gate&) = delete;

  // A top-level object of the scan (a file of the image's own file systems):
  // left unread when the scan has to stop, else opened, classified and, when
  // a stage claims it, expanded. Its own errors and limits, read failures
  // included, land in `outcome`, for the caller to record with the entry
  // after those of its members.
  void scan_top(file_entry& entry, stored_member& content, object_outcome& outcome);

  // An object classified already (fuzzing, container_expander): expanded,
  // within the limits, when a stage claims it.
  void expand(file_entry& entry, content_source& source);

  // For container stages, with the container the gate gave them.
  // False once the stage has to stop listing: the scan stops, or this
  // container (or one around it) reached a limit.
  bool more(container& parent);
  // One more member found in an inflating container: false, and max_members
  // recorded, past the limit.
  bool admit(container& parent);
  // A member without content to read (directory, link, encrypted member).
  void list(container& parent, file_entry&& child);
  // The one way deeper: a member with content. Places it under its
  // container, applies the limits, classifies it, expands it when a stage
  // claims it, and hands it to the sink.
  void recurse(container& parent, file_entry&& child, inflated_member& bytes);
  void recurse(container& parent, file_entry&& child, stored_member& bytes);
  // What a stage has to say about a container or its listing.
  void add_error(error_entry&& e);
  void add_limit(limit_hit&& l);
  const limits& scan_limits() const noexcept { return limits_; }
  // Where stages may spool a member they can open only by name (virtual
  // disks); null when the scan has none.
  scratch_space* scratch() const noexcept { return scratch_; }
  void use_scratch(scratch_space* scratch) noexcept { scratch_ = scratch; }

 private:
  const container_stage* claimant(const file_entry& entry) const;
  // Opens `entry` with the stage that claims it, if one does, inside `outer`
  // (null at the top) when the depth and the budget allow; records the
  // container's own limits and findings when it is done.
  void expand_in(file_entry& entry, content_source& source, container* outer);
  void close_container(container& c);
  void place(const container& parent, file_entry& child) const;
  void scan_held(container& parent, file_entry& child, inflated_member& bytes);
  void scan_streamed(container& parent, file_entry& child, inflated_member& bytes);
  // Counts n inflated bytes against the container's ratios and the scan-wide
  // budget; false once no more may come out of it.
  bool count_inflated(container& c, std::uint64_t n);
  void record(object_outcome&& outcome);
  class metered_stream;
  class spooled_stream;

  const limits& limits_;
  object_scanner& scanner_;
  expansion_budget& budget_;
  scan_sink& sink_;
  stage_list stages_;
  scratch_space* scratch_ = nullptr;
  std::function<void(std::uint64_t)> on_bytes_;
};

// The stages of a scan, in the order they are tried: libarchive's formats
// (archives, compressed streams, ZIP documents), then disk images (libtsk).
const recursion_gate::stage_list& default_container_stages();

}  // namespace borderscan::scanner
