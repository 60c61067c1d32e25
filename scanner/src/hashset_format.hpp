#pragma once
// The compact hash-set file (".bhs"): what hashset_db memory-maps instead of
// parsing, and what hashset_writer produces. Internal to the scanner and its
// importers; the public view is compact_hashset_info in hashset.hpp.
//
// Layout, version 1. Integers are little-endian; every section starts on an
// 8-byte boundary (zero padding between sections).
//
//   offset  size  header (512 bytes)
//   0       8     magic "\x89" "BHS\r\n\x1a\n" (a text set can never start so;
//                 the CR/LF/^Z bytes show a file mangled by text-mode copies)
//   8       4     version = 1
//   12      4     header size = 512
//   16      8     file size in bytes (the whole file)
//   24      4     kind: 0 known-bad, 1 known-good
//   28      4     flags = 0
//   32      96    three tables, md5 then sha1 then sha256, 32 bytes each:
//                   +0  u64 entries (distinct digests)
//                   +8  u64 records offset
//                   +16 u64 prefix-index offset
//                   +24 u32 prefix-index bits (0..16)
//                   +28 u32 record size (digest size + 4)
//   128     8     names: count, name 0 being the empty name
//   136     8     names: offset of the offset array (count + 1 u64 values;
//                 name i is blob[offsets[i], offsets[i+1]))
//   144     8     names: blob offset
//   152     8     names: blob size
//   160     32    SHA-256 of bytes [512, file size): everything after the header
//   192     4     set name length (1..64)      196  4  source format length (0..16)
//   200     4     source file name length (0..128)
//   204     4     reserved = 0
//   208     64    set name ([A-Za-z0-9._-], zero padded)
//   272     16    source format ("text", "nsrl-rds3", "vics")
//   288     128   source file name (the imported file's name, for `hashset list`)
//   416     96    reserved = 0
//
//   sections   per table: records (entries x (digest, u32 name index), sorted
//              by digest, one record per digest) then its prefix index
//              ((1 << bits) + 1 u64 values: index[p] is the first record whose
//              digest's top `bits` bits are >= p, the last is the entry count);
//              then the name offsets and the name blob (UTF-8 as imported).
//
// A lookup reads index[p] and index[p + 1] (with 16 bits and 50 M entries, a
// slice of about 760 records), guesses the key's place in the slice from its
// next bits (digests are uniform) and walks to it: in all, about one memory
// miss beyond the index; a walk past 32 records ends in a binary search. The
// header's SHA-256 pins the content: the rule-set digest can cover a
// gigabyte-sized set by its 512-byte header (hashset_db::set_info::fingerprint).

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "borderscan/scanner/hashset.hpp"

namespace borderscan::scanner::detail {

inline constexpr std::array<char, 8> bhs_magic = {'\x89', 'B', 'H', 'S', '\r', '\n', '\x1a', '\n'};
inline constexpr std::uint32_t bhs_version = 1;
inline constexpr std::size_t bhs_header_size = 512;
inline constexpr std::size_t bhs_max_set_name = 64;
inline constexpr std::size_t bhs_max_format = 16;
inline constexpr std::size_t bhs_max_source = 128;
inline constexpr std::uint32_t bhs_max_index_bits = 16;
// Digest sizes of the tables, in file order.
inline constexpr std::array<std::size_t, 3> bhs_digest_sizes = {16, 20, 32};
inline constexpr std::array<const char*, 3> bhs_algorithms = {"md5", "sha1", "sha256"};

struct bhs_table {
  std::uint64_t entries = 0;
  std::uint64_t records_offset = 0;
  std::uint64_t index_offset = 0;
  std::uint32_t index_bits = 0;
  std::uint32_t record_size = 0;
};

struct bhs_header {
  std::uint64_t file_size = 0;
  hashset_kind kind = hashset_kind::known_bad;
  std::array<bhs_table, 3> tables{};
  std::uint64_t names_count = 1;
  std::uint64_t names_offsets_offset = 0;
  std::uint64_t names_blob_offset = 0;
  std::uint64_t names_blob_size = 0;
  std::array<std::uint8_t, 32> content_sha256{};
  std::string set_name;
  std::string source_format;
  std::string source_file;
};

inline std::uint64_t load_u64(const std::uint8_t* p) noexcept {
  std::uint64_t v = 0;
  std::memcpy(&v, p, 8);  // little-endian host (static_assert in hashset.cpp)
  return v;
}
inline std::uint32_t load_u32(const std::uint8_t* p) noexcept {
  std::uint32_t v = 0;
  std::memcpy(&v, p, 4);
  return v;
}

// The 512 header bytes of h.
std::array<std::uint8_t, bhs_header_size> encode_bhs_header(const bhs_header& h);

// Parses and checks a header against the size of its file: every section
// inside the file, counts consistent with sizes, no arithmetic overflow.
// Throws scan_error(rules_invalid) "FILE: reason".
bhs_header decode_bhs_header(std::span<const std::uint8_t, bhs_header_size> bytes, std::uint64_t actual_file_size,
                             const std::filesystem::path& file);

// Whether bytes start with the magic.
bool has_bhs_magic(std::span<const std::uint8_t> bytes) noexcept;

// Valid names for sets and files: 1..64 of [A-Za-z0-9._-], not starting with '.'.
bool is_valid_set_name(std::string_view name) noexcept;

// Reads a text hash-set file (hashset_db::load's format) and calls on_entry
// for every digest line with the raw digest (16, 20 or 32 bytes) and the
// name (may be empty). Throws scan_error(rules_invalid) naming file:line.
using text_entry_fn = std::function<void(std::span<const std::uint8_t> digest, std::string_view name)>;
void read_text_hashset(const std::filesystem::path& file, const text_entry_fn& on_entry);

}  // namespace borderscan::scanner::detail
