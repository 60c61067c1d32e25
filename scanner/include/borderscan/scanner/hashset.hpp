#pragma once
// Hash sets: binary digests in 256 buckets by their first byte, each sorted
// and looked up by binary search. Compact enough for tens of millions of
// entries: one digest plus one 32-bit label per entry (36 bytes for SHA-256);
// labels (set, name) are shared between entries. Bucketing while loading
// leaves only small, cache-sized sorts for seal().

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace borderscan::scanner {

enum class hashset_kind { known_bad, known_good };
const char* to_string(hashset_kind k) noexcept;

struct hashset_hit {
  std::string set;  // name of the set (file stem)
  hashset_kind kind;
  std::string entry;      // the name given on the line, may be empty
  std::string algorithm;  // md5 | sha1 | sha256
};

// Immutable once loaded; safe to share between threads for lookups.
class hashset_db {
 public:
  struct set_info {
    std::string name;
    hashset_kind kind;
    std::uint64_t entries = 0;
    std::filesystem::path source;
  };

  // Loads one set file. Lines: hex digest (32/40/64 chars), optional
  // whitespace + name, `#` comments, blank lines. Throws scan_error
  // (rules_invalid) naming file:line for a malformed line.
  void load(const std::filesystem::path& file, hashset_kind kind, std::string set_name = {});
  // Sorts the tables; call once after the last load and before lookups.
  void seal();

  // All sets that list any of the given digests (raw bytes).
  std::vector<hashset_hit> lookup(std::span<const std::uint8_t, 16> md5, std::span<const std::uint8_t, 20> sha1,
                                  std::span<const std::uint8_t, 32> sha256) const;

  const std::vector<set_info>& sets() const noexcept { return sets_; }
  std::uint64_t size() const noexcept;

 private:
  template <std::size_t N>
  struct entry {
    std::array<std::uint8_t, N> digest;
    std::uint32_t label;  // index into labels_
    friend bool operator<(const entry& a, const entry& b) { return a.digest < b.digest; }
  };
  struct label {
    std::uint32_t set;
    std::uint32_t name;  // index into names_, 0 = unnamed
  };
  template <std::size_t N>
  struct table {
    std::array<std::vector<entry<N>>, 256> buckets;  // by digest[0]
    std::uint64_t size = 0;
    void add(const entry<N>& e) {
      buckets[e.digest[0]].push_back(e);
      ++size;
    }
    void reserve_more(std::uint64_t expected);
    void seal();
  };
  template <std::size_t N>
  void collect(const table<N>& t, std::span<const std::uint8_t, N> key, const char* algorithm,
               std::vector<hashset_hit>& out) const;
  std::uint32_t label_for(std::uint32_t set, std::uint32_t name);

  table<16> md5_;
  table<20> sha1_;
  table<32> sha256_;
  std::vector<std::string> names_{std::string{}};
  std::vector<label> labels_;
  std::vector<set_info> sets_;
};

// Parses "FILE", "FILE:known-good" or "FILE:known-bad" (default known-bad).
std::pair<std::filesystem::path, hashset_kind> parse_hashset_arg(std::string_view arg);

}  // namespace borderscan::scanner
