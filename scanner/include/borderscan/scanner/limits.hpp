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
  // Findings at or above this severity make the verdict `flagged`.
  severity flag_threshold = severity::medium;
  // Skip YARA for files whose hash is in a known-good set.
  bool skip_yara_for_known_good = false;
};

}  // namespace borderscan::scanner

#include <nlohmann/json_fwd.hpp>

namespace borderscan::scanner {

// Limits as JSON (the daemon hands them to its worker processes this way).
// from_json rejects unknown keys and values of the wrong type with
// std::invalid_argument naming the key.
void to_json(nlohmann::json& j, const limits& l);
void from_json(const nlohmann::json& j, limits& l);

}  // namespace borderscan::scanner
