#include "borderscan/scanner/hashset.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>

#include "borderscan/scanner/error.hpp"
#include "borderscan/scanner/text.hpp"
#include "c_handle.hpp"

namespace borderscan::scanner {
namespace {

using file_ptr = std::unique_ptr<FILE, detail::c_deleter<&std::fclose>>;

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// Stem without the ".known-bad.txt" style suffix: "eicar.known-bad.txt" -> "eicar".
std::string set_name_of(const std::filesystem::path& file) {
  std::string name = file.filename().string();
  for (std::string_view suffix : {".known-bad.txt", ".known-good.txt", ".txt", ".hashes"}) {
    if (name.size() > suffix.size() && name.ends_with(suffix)) {
      name.resize(name.size() - suffix.size());
      break;
    }
  }
  return name;
}

}  // namespace

const char* to_string(hashset_kind k) noexcept {
  return k == hashset_kind::known_bad ? "known-bad" : "known-good";
}

std::pair<std::filesystem::path, hashset_kind> parse_hashset_arg(std::string_view arg) {
  for (auto [suffix, kind] : {std::pair{std::string_view(":known-good"), hashset_kind::known_good},
                              std::pair{std::string_view(":known-bad"), hashset_kind::known_bad}}) {
    if (arg.ends_with(suffix)) {
      return {std::filesystem::path(arg.substr(0, arg.size() - suffix.size())), kind};
    }
  }
  return {std::filesystem::path(arg), hashset_kind::known_bad};
}

std::uint32_t hashset_db::label_for(std::uint32_t set, std::uint32_t name) {
  // Lines of one file mostly share a label: check the last one first.
  if (!labels_.empty() && labels_.back().set == set && labels_.back().name == name) {
    return static_cast<std::uint32_t>(labels_.size() - 1);
  }
  labels_.push_back({set, name});
  return static_cast<std::uint32_t>(labels_.size() - 1);
}

void hashset_db::load(const std::filesystem::path& file, hashset_kind kind, std::string set_name) {
  file_ptr f(std::fopen(file.c_str(), "rb"));
  if (!f) {
    throw scan_error(scan_errc::rules_invalid, file.string() + ": cannot open hash set: " + std::strerror(errno));
  }
  const auto set_id = static_cast<std::uint32_t>(sets_.size());
  sets_.push_back({set_name.empty() ? set_name_of(file) : std::move(set_name), kind, 0, file});

  // Reserve from the file size (a SHA-256 line is at least 65 bytes) so the
  // tables do not double, and memory does not spike, while they fill.
  std::error_code ec;
  const auto bytes = std::filesystem::file_size(file, ec);
  if (!ec) {
    sha256_.reserve(sha256_.size() + bytes / 65 + 1);
  }

  std::uint64_t line_no = 0;
  std::uint64_t count = 0;
  std::uint32_t last_name = 0;
  auto parse_line = [&](std::string_view text) {
    ++line_no;
    text = trim(text);
    if (text.empty() || text.front() == '#') {
      return;
    }
    std::size_t end = 0;
    while (end < text.size() && !is_space(text[end])) ++end;
    const std::string_view hex = text.substr(0, end);
    const std::string_view entry_name = trim(text.substr(end));
    std::uint32_t name_id = 0;
    if (!entry_name.empty()) {
      // Consecutive lines often share a name (one sample, three digests).
      if (last_name == 0 || names_[last_name] != entry_name) {
        names_.emplace_back(entry_name);
        last_name = static_cast<std::uint32_t>(names_.size() - 1);
      }
      name_id = last_name;
    }
    const std::uint32_t lbl = label_for(set_id, name_id);
    bool ok = false;
    switch (hex.size()) {
      case 32: {
        entry<16> e{{}, lbl};
        ok = from_hex(hex, e.digest);
        if (ok) md5_.push_back(e);
        break;
      }
      case 40: {
        entry<20> e{{}, lbl};
        ok = from_hex(hex, e.digest);
        if (ok) sha1_.push_back(e);
        break;
      }
      case 64: {
        entry<32> e{{}, lbl};
        ok = from_hex(hex, e.digest);
        if (ok) sha256_.push_back(e);
        break;
      }
      default:
        break;
    }
    if (!ok) {
      throw scan_error(scan_errc::rules_invalid,
                       file.string() + ":" + std::to_string(line_no) + ": not an MD5, SHA-1 or SHA-256 hex digest");
    }
    ++count;
  };

  // Big reads and in-place line splitting: tens of millions of lines load in seconds.
  std::vector<char> buf(1 << 20);
  std::size_t have = 0;
  for (;;) {
    const std::size_t n = std::fread(buf.data() + have, 1, buf.size() - have, f.get());
    have += n;
    const bool eof = n == 0;
    std::size_t start = 0;
    for (std::size_t i = 0; i < have; ++i) {
      if (buf[i] == '\n') {
        parse_line(std::string_view(buf.data() + start, i - start));
        start = i + 1;
      }
    }
    if (eof) {
      if (start < have) {
        parse_line(std::string_view(buf.data() + start, have - start));
      }
      break;
    }
    std::memmove(buf.data(), buf.data() + start, have - start);
    have -= start;
    if (have == buf.size()) {
      throw scan_error(scan_errc::rules_invalid, file.string() + ":" + std::to_string(line_no + 1) + ": line too long");
    }
  }
  if (std::ferror(f.get())) {
    throw scan_error(scan_errc::rules_invalid, file.string() + ": read error");
  }
  sets_.back().entries = count;
}

namespace {

// Orders digests by their first 8 bytes as one big-endian number, then the
// rest: most comparisons of random digests end at the first word.
template <class Entry>
bool digest_less(const Entry& a, const Entry& b) {
  std::uint64_t wa = 0, wb = 0;
  std::memcpy(&wa, a.digest.data(), 8);
  std::memcpy(&wb, b.digest.data(), 8);
  if (wa != wb) {
    return __builtin_bswap64(wa) < __builtin_bswap64(wb);
  }
  return std::memcmp(a.digest.data() + 8, b.digest.data() + 8, a.digest.size() - 8) < 0;
}

// Sorts in place: one radix pass on the first byte (American flag sort),
// then the 256 buckets on two threads. Millions of entries sort several
// times faster than with one std::sort.
template <class Entry>
void sort_table(std::vector<Entry>& table) {
  if (table.size() < 100'000) {
    std::sort(table.begin(), table.end(), digest_less<Entry>);
    return;
  }
  std::array<std::size_t, 257> start{};
  for (const auto& e : table) {
    ++start[e.digest[0] + 1];
  }
  for (std::size_t b = 1; b < start.size(); ++b) {
    start[b] += start[b - 1];
  }
  std::array<std::size_t, 256> next{};
  std::copy(start.begin(), start.end() - 1, next.begin());
  for (std::size_t b = 0; b < 256; ++b) {
    while (next[b] < start[b + 1]) {
      const std::uint8_t home = table[next[b]].digest[0];
      if (home == b) {
        ++next[b];
      } else {
        std::swap(table[next[b]], table[next[home]++]);
      }
    }
  }
  auto sort_buckets = [&](std::size_t first_bucket) {
    for (std::size_t b = first_bucket; b < 256; b += 2) {
      std::sort(table.begin() + static_cast<std::ptrdiff_t>(start[b]),
                table.begin() + static_cast<std::ptrdiff_t>(start[b + 1]), digest_less<Entry>);
    }
  };
  std::thread odd(sort_buckets, 1);
  sort_buckets(0);
  odd.join();
}

template <class Entry>
void trim_capacity(std::vector<Entry>& table) {
  // Shrinking copies the table: only worth it when much is unused.
  if (table.capacity() > table.size() + table.size() / 8 + 1024) {
    table.shrink_to_fit();
  }
}

}  // namespace

void hashset_db::seal() {
  trim_capacity(md5_);
  trim_capacity(sha1_);
  trim_capacity(sha256_);
  sort_table(md5_);
  sort_table(sha1_);
  sort_table(sha256_);
}

std::uint64_t hashset_db::size() const noexcept {
  return md5_.size() + sha1_.size() + sha256_.size();
}

template <std::size_t N>
void hashset_db::collect(const std::vector<entry<N>>& table, std::span<const std::uint8_t, N> key,
                         const char* algorithm, std::vector<hashset_hit>& out) const {
  entry<N> probe{};
  std::copy(key.begin(), key.end(), probe.digest.begin());
  auto [first, last] = std::equal_range(table.begin(), table.end(), probe, digest_less<entry<N>>);
  for (auto it = first; it != last; ++it) {
    const label& l = labels_[it->label];
    const auto& set = sets_[l.set];
    out.push_back({set.name, set.kind, names_[l.name], algorithm});
  }
}

std::vector<hashset_hit> hashset_db::lookup(std::span<const std::uint8_t, 16> md5,
                                            std::span<const std::uint8_t, 20> sha1,
                                            std::span<const std::uint8_t, 32> sha256) const {
  std::vector<hashset_hit> hits;
  if (!sha256_.empty()) collect<32>(sha256_, sha256, "sha256", hits);
  if (!sha1_.empty()) collect<20>(sha1_, sha1, "sha1", hits);
  if (!md5_.empty()) collect<16>(md5_, md5, "md5", hits);
  return hits;
}

}  // namespace borderscan::scanner
