#pragma once
// Limits and policy knobs of one scan. Every limit that is hit is recorded in
// the report's `limits_hit`; none of them silently drops a file.

#include <cstdint>

#include "borderscan/scanner/report.hpp"

namespace borderscan::scanner {

struct limits {
  // Wall-clock budget of the whole scan in seconds (0 = none). Files not yet
  // scanned when it expires are listed with `skipped: "deadline"`.
  std::uint32_t scan_timeout_seconds = 0;
  // Per-object YARA timeout in seconds; expiry is an error on that file.
  std::uint32_t yara_timeout_seconds = 60;
  // Largest number of file entries listed per scan; past it, the walk stops.
  std::uint64_t max_files = 5'000'000;
  // Deepest directory nesting followed (loops are cut earlier, by detection).
  std::uint32_t max_directory_depth = 256;
  // Largest amount of content read from one file (bytes); the rest is skipped.
  std::uint64_t max_file_bytes = 64ULL << 30;
  // Archive recursion. Each limit hit is recorded; the rest of the scan goes on.
  // Deepest container nesting expanded (a member at depth N is N levels inside files).
  std::uint32_t max_depth = 8;
  // Members listed per container; the rest of that container is skipped.
  std::uint64_t max_members = 100'000;
  // Bytes expanded from all containers of one scan together.
  std::uint64_t max_total_expanded_bytes = 64ULL << 30;
  // Largest single member read; larger ones are listed, not read.
  std::uint64_t max_member_bytes = 4ULL << 30;
  // A container expanding past this many times its own size is an archive bomb.
  std::uint32_t max_expansion_ratio = 100;
  // Members up to this size are held in memory (random access for YARA and
  // nested containers); larger ones are streamed once.
  std::uint64_t member_memory_bytes = 32ULL << 20;
  // How many leading bytes libmagic sees.
  std::uint32_t magic_bytes = 64 * 1024;
  // Bytes of a partition without a recognised file system that are scanned raw
  // (enough for encrypted-container headers).
  std::uint64_t raw_volume_head_bytes = 1 << 20;
  // Largest image decompressed from a .gz/.xz/.zst/.bz2 upload into the
  // scratch space; past it the rest of the image is not examined.
  std::uint64_t max_decompressed_image_bytes = 1ULL << 40;
  // Bytes of unallocated space (free blocks of each file system, space past
  // a file system's end in its volume, unpartitioned gaps) YARA-scanned per
  // scan; past it the look stops and the limit is recorded. 0 = not looked
  // at (a warning says so). Enough for a whole 64 GB card by default: a
  // partial look makes the verdict `incomplete`.
  std::uint64_t max_unallocated_bytes = 64ULL << 30;
  // Findings at or above this severity make the verdict `flagged`.
  severity flag_threshold = severity::medium;
  // Skip YARA for files whose hash is in a known-good set.
  bool skip_yara_for_known_good = false;
};

}  // namespace borderscan::scanner

#include <nlohmann/json_fwd.hpp>

namespace borderscan::scanner {

// Every numeric limit once: its name (the same in the daemon's configuration
// file, the worker's JSON, `limits_hit` in reports, and, with '-' for '_',
// the CLI's flags), its allowed range and what it bounds.
struct limit_field {
  const char* name;
  std::uint64_t min, max;
  const char* help;
  const char* cli_alias = nullptr;  // a short flag kept for people, e.g. --timeout
};

template <class Limits, class Fn>
void for_each_limit(Limits& l, Fn&& fn) {
  constexpr std::uint64_t u32 = 0xFFFF'FFFF;
  constexpr std::uint64_t i64 = 0x7FFF'FFFF'FFFF'FFFF;
  fn(limit_field{"scan_timeout_seconds", 0, u32, "Whole-scan time limit in seconds (0 = none)", "--timeout"},
     l.scan_timeout_seconds);
  fn(limit_field{"yara_timeout_seconds", 1, u32, "Per-file YARA time limit in seconds", "--yara-timeout"},
     l.yara_timeout_seconds);
  fn(limit_field{"max_files", 1, i64, "File entries listed per scan; past it the walk stops"}, l.max_files);
  fn(limit_field{"max_directory_depth", 1, 100'000, "Deepest directory nesting followed"}, l.max_directory_depth);
  fn(limit_field{"max_file_bytes", 1, i64, "Largest amount of content read from one file"}, l.max_file_bytes);
  fn(limit_field{"max_depth", 0, 1000, "Deepest container nesting expanded"}, l.max_depth);
  fn(limit_field{"max_members", 1, i64, "Members listed per container"}, l.max_members);
  fn(limit_field{"max_total_expanded_bytes", 0, i64, "Bytes expanded from all containers of one scan"},
     l.max_total_expanded_bytes);
  fn(limit_field{"max_member_bytes", 0, i64, "Largest archive member read"}, l.max_member_bytes);
  fn(limit_field{"max_expansion_ratio", 1, u32, "Expanded/compressed ratio past which a container is an archive bomb"},
     l.max_expansion_ratio);
  fn(limit_field{"member_memory_bytes", 0, 1ULL << 32, "Archive members up to this size are held in memory"},
     l.member_memory_bytes);
  fn(limit_field{"magic_bytes", 1, 16ULL << 20, "Leading bytes libmagic sees"}, l.magic_bytes);
  fn(limit_field{"raw_volume_head_bytes", 0, i64, "Bytes of a volume without a file system scanned raw"},
     l.raw_volume_head_bytes);
  fn(limit_field{"max_decompressed_image_bytes", 1, i64, "Largest image decompressed from a compressed upload"},
     l.max_decompressed_image_bytes);
  fn(limit_field{"max_unallocated_bytes", 0, i64,
                 "Bytes of unallocated space and partition gaps YARA-scanned (0 = off)"},
     l.max_unallocated_bytes);
}

// The two policy knobs beside the limits, by the same names everywhere.
inline constexpr const char* flag_severity_key = "flag_severity";      // limits::flag_threshold
inline constexpr const char* skip_known_good_key = "skip_known_good";  // limits::skip_yara_for_known_good

// Limits as JSON (the daemon hands them to its worker processes this way).
// from_json rejects unknown keys and values of the wrong type with
// std::invalid_argument naming the key.
void to_json(nlohmann::json& j, const limits& l);
void from_json(const nlohmann::json& j, limits& l);

}  // namespace borderscan::scanner
