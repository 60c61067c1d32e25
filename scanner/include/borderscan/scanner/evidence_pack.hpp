#pragma once
// The evidence pack: copies of flagged files' content, taken by the scanner
// while it reads them, in one file that the fenced worker opened before its
// sandbox (which forbids creating files). The daemon reads it back after the
// worker ended, with read_evidence_pack().
//
// Format: records back to back from offset 0, each a 56-byte header and then
// a data region:
//   magic      8 bytes   "BSEVKEPT" kept, "BSEVDROP" dropped (not kept),
//                        "BSEVPEND" still being written (a worker that died)
//   sha256    32 bytes   SHA-256 of the content (zeros unless kept)
//   length     u64 LE    bytes of content (0 unless kept)
//   reserved   u64 LE    bytes of the data region after the header (>= length)
// The content is the first `length` bytes of the data region; the next header
// starts at header + 56 + reserved. A dropped record's data region is a hole
// (punched out of the file, so it takes no disk space), and dropped records
// at the end of the pack are cut off. Each content is kept once: later files
// with the same SHA-256 name the record already there.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <span>
#include <string>
#include <unordered_set>

#include "borderscan/scanner/digest.hpp"

namespace borderscan::scanner {

inline constexpr std::size_t evidence_header_bytes = 56;

// Bounds of the copies one scan keeps. Every file they keep out is recorded
// in the report as a limit hit (`evidence.max_file_bytes`,
// `evidence.max_bytes_per_scan`) and in its entry's `evidence` note.
struct evidence_limits {
  std::uint64_t max_file_bytes = 64ULL << 20;     // largest single file kept
  std::uint64_t max_bytes_per_scan = 1ULL << 30;  // all kept content of one scan together
};

// Why a copy was not kept (or that it was).
enum class evidence_outcome {
  kept,              // stored in this record
  already_kept,      // the same content (SHA-256) is in the pack already: this copy was dropped
  over_scan_budget,  // keeping it would pass max_bytes_per_scan: dropped
};

// Appends records to one pack file. Shared by all threads of one scan:
// every member function is thread-safe. Writes go through pwrite,
// ftruncate and fallocate on the descriptor it was given, nothing else, so it
// works inside the worker's sandbox. I/O failures throw std::system_error.
class evidence_pack {
 public:
  // A claimed data region. Move-only; one that is destroyed while still
  // pending (an exception, an early return) is dropped.
  class reservation {
   public:
    reservation() = default;
    reservation(reservation&& other) noexcept;
    reservation& operator=(reservation&& other) noexcept;
    reservation(const reservation&) = delete;
    reservation& operator=(const reservation&) = delete;
    ~reservation();

    bool pending() const noexcept { return pack_ != nullptr; }
    std::uint64_t capacity() const noexcept { return capacity_; }
    std::uint64_t header_offset() const noexcept { return header_; }

   private:
    friend class evidence_pack;
    evidence_pack* pack_ = nullptr;
    std::uint64_t header_ = 0, capacity_ = 0;
    std::uint64_t written_ = 0;  // end of the furthest write, to zero it if no hole can be punched
  };

  // Takes ownership of fd, which must be open for reading and writing;
  // records are appended after whatever the file already holds.
  evidence_pack(int fd, evidence_limits lim);
  ~evidence_pack();
  evidence_pack(const evidence_pack&) = delete;
  evidence_pack& operator=(const evidence_pack&) = delete;

  const evidence_limits& limits() const noexcept { return limits_; }

  // Whether `bytes` more of kept content would still fit max_bytes_per_scan:
  // asked before copying, so that no bytes are written to be dropped. keep()
  // decides for good (other threads keep in between).
  bool fits_budget(std::uint64_t bytes) const;
  // Whether content with this SHA-256 is kept already.
  bool contains(const sha256_digest& sha256) const;

  // Claims a data region of `bytes` at the end of the pack (a pending record).
  reservation reserve(std::uint64_t bytes);
  // Writes content bytes at offset_in_content of the region. Throws
  // std::out_of_range past its capacity.
  void write(reservation& r, std::uint64_t offset_in_content, std::span<const std::byte> data);
  // Makes the record kept with this digest and length (the content written),
  // unless the same content is kept already or the budget would pass; then the
  // record is dropped and the outcome says why. The reservation is done.
  evidence_outcome keep(reservation& r, const sha256_digest& sha256, std::uint64_t length);
  // Marks the record dropped and frees its data region's disk space. The
  // reservation is done.
  void drop(reservation& r);

  std::uint64_t bytes_kept() const;  // content bytes of kept records
  std::uint64_t records_kept() const;
  std::uint64_t end_offset() const;  // the pack's size: where the next record starts

  // Flushes the pack to disk (before the report that names its records).
  void sync();

 private:
  void write_header(std::uint64_t at, const char* magic, const sha256_digest& sha256, std::uint64_t length,
                    std::uint64_t reserved);
  void pwrite_all(std::uint64_t at, std::span<const std::byte> data);
  void free_region(const reservation& r);
  void trim_tail();              // under mutex_
  void release(reservation& r);  // drop without throwing (destructor path)

  struct digest_hash {
    std::size_t operator()(const sha256_digest& d) const noexcept;
  };

  int fd_;
  evidence_limits limits_;
  mutable std::mutex mutex_;
  std::uint64_t end_ = 0;
  std::uint64_t kept_bytes_ = 0;
  std::uint64_t kept_records_ = 0;
  std::unordered_set<sha256_digest, digest_hash> kept_;
  // Dropped records after the last kept one (header offset -> end), cut off
  // once they are at the end of the pack.
  std::map<std::uint64_t, std::uint64_t> dropped_;
};

// One kept copy in a pack.
struct evidence_record {
  std::string sha256;             // lower-case hex, as in the report's file entries
  std::uint64_t data_offset = 0;  // of the content in the pack file
  std::uint64_t length = 0;
};

// Calls `each` for every kept record of the pack, in file order. Throws
// std::runtime_error on a malformed pack (a bad magic, a header or data region
// past the end of the file, a length past its region) and std::system_error
// when it cannot be read. Sizes in the file are never trusted beyond the
// file's own size.
void read_evidence_pack(const std::filesystem::path& pack, const std::function<void(const evidence_record&)>& each);

// Streams a record's content to `sink` in pieces and checks that it hashes to
// record.sha256; throws std::runtime_error when it does not (the sink has
// then seen bytes that must be discarded) or the file is shorter.
void copy_evidence(const std::filesystem::path& pack, const evidence_record& record,
                   const std::function<void(std::span<const std::byte>)>& sink);

}  // namespace borderscan::scanner
