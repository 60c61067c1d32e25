#pragma once
// Classifies one object (a file, a stream, later an archive member) in a single
// pass over its content: hashes, libmagic, YARA, hash sets, extension check.
// One object_scanner per thread: it owns a magic cookie, a YARA scanner and
// its buffers. Not thread-safe; the rule_set it uses is shared and immutable.

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "borderscan/scanner/evidence_pack.hpp"
#include "borderscan/scanner/limits.hpp"
#include "borderscan/scanner/report.hpp"
#include "borderscan/scanner/rule_set.hpp"

namespace borderscan::scanner {

// Random-access content of one object. read_at returns the bytes read (0 at or
// past the end) and throws scan_error(read_failed) when the source fails.
class content_source {
 public:
  virtual ~content_source() = default;
  virtual std::uint64_t size() const = 0;
  // False for streams whose length is only known at their end (a raw .gz
  // member): size() is then meaningless and reading stops at the end.
  virtual bool size_known() const { return true; }
  // True for streams that can be read only once, front to back (a streamed
  // archive member): reading them again to hash first would lose the content.
  virtual bool forward_only() const { return false; }
  virtual std::size_t read_at(std::uint64_t offset, std::span<std::byte> out) = 0;
};

// Content held in memory (tests, fuzzing, small members).
class memory_source final : public content_source {
 public:
  explicit memory_source(std::span<const std::byte> data) : data_(data) {}
  std::uint64_t size() const override { return data_.size(); }
  std::size_t read_at(std::uint64_t offset, std::span<std::byte> out) override;

 private:
  std::span<const std::byte> data_;
};

struct object_outcome {
  std::vector<error_entry> errors;
  std::vector<limit_hit> limits;
};

// What this scan already knows about content it has seen, so duplicated
// files (and archive members that are copies of files) are examined once:
//  - YARA results, keyed by SHA-256 (plus the per-file externals when the
//    rules read them);
//  - libmagic's MIME type and description, keyed by SHA-256 (libmagic sees
//    only the bytes, so the same bytes get the same answer).
// Shared by the threads of one scan; thread-safe. Bounded: past max_entries
// (per kind) it stops remembering.
class yara_result_cache {
 public:
  struct content_type {
    std::string mime;
    std::string description;
  };

  explicit yara_result_cache(std::size_t max_entries = 200'000) : max_entries_(max_entries) {}
  std::optional<std::vector<finding>> find(const std::string& key) const;
  void store(std::string key, std::vector<finding> findings);
  std::uint64_t hits() const;  // YARA results reused

  using sha256_digest = std::array<std::uint8_t, 32>;
  std::optional<content_type> find_type(const sha256_digest& sha256) const;
  void store_type(const sha256_digest& sha256, const content_type& type);
  std::uint64_t type_hits() const;  // libmagic results reused

 private:
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::vector<finding>> entries_;
  struct digest_hash {
    std::size_t operator()(const sha256_digest& d) const noexcept;
  };
  // Few distinct answers, many files: each (mime, description) is kept once.
  std::set<std::pair<std::string, std::string>> type_names_;
  std::unordered_map<sha256_digest, const std::pair<std::string, std::string>*, digest_hash> types_;
  std::size_t max_entries_;
  mutable std::uint64_t hits_ = 0;
  mutable std::uint64_t type_hits_ = 0;
};

class object_scanner {
 public:
  // block_size: read unit; files up to it are scanned from one buffer, larger
  // ones as overlapping YARA blocks (overlap catches straddling matches).
  // cache: optional, shared with the other threads of the same scan.
  // evidence: optional, shared likewise; when set, the content of every
  // flagged file is copied into it (see scan()).
  object_scanner(const limits& lim, std::shared_ptr<const rule_set> rules, std::size_t block_size = 4 << 20,
                 std::size_t overlap = 64 << 10, yara_result_cache* cache = nullptr,
                 std::shared_ptr<evidence_pack> evidence = nullptr);
  ~object_scanner();
  object_scanner(const object_scanner&) = delete;
  object_scanner& operator=(const object_scanner&) = delete;

  // Fills entry's content fields (hashes, mime, description, findings,
  // bytes_read, content_complete). entry.path, .size and .deleted must be set;
  // entry.size is the declared size to compare with what is read.
  // on_bytes is told how many new bytes were read (for progress).
  //
  // With an evidence pack, a file that ends up flagged (a finding at or above
  // limits::flag_threshold) gets entry.evidence, and its content is kept when
  // it was read completely and fits the pack's limits (each limit that keeps
  // it out is in the outcome's limits). The copy costs no second read for
  // small objects (held in one buffer) and forward-only sources (copied as
  // they are read, dropped if not flagged); larger random-access objects are
  // read again, only when flagged, and kept only if they hash the same.
  object_outcome scan(file_entry& entry, content_source& source,
                      const std::function<void(std::uint64_t)>& on_bytes = {});

  // For an entry flagged after scan() returned (a container stage added a
  // finding): keeps its content as scan() would have, reading `source` again
  // (a forward-only source cannot be, and the note says so). Does nothing
  // for an entry that is not flagged, already has a note, or without a pack.
  object_outcome settle_evidence(file_entry& entry, content_source& source);

  // YARA alone over bytes that belong to no file (unallocated space, a gap
  // between partitions): findings go to entry.findings with entry's path and
  // volume, their match offsets relative to `data`. No hashes, libmagic,
  // hash sets or evidence copy.
  object_outcome scan_region(file_entry& entry, std::span<const std::byte> data);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace borderscan::scanner
