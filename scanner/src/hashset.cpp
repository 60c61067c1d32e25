#include "borderscan/scanner/hashset.hpp"

#include <algorithm>
#include <array>
#include <cmath>
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
  // buckets do not double, and memory does not spike, while they fill.
  std::error_code ec;
  const auto bytes = std::filesystem::file_size(file, ec);
  if (!ec) {
    sha256_.reserve_more(bytes / 65);
  }

  std::uint64_t line_no = 0;
  std::uint64_t count = 0;
  std::uint32_t last_name = 0;
  auto parse_line = [&](std::string_view text) {
    ++line_no;
    // The common line of a big set: a bare SHA-256 (optionally CRLF).
    if ((text.size() == 64 || (text.size() == 65 && text[64] == '\r')) && text[0] != '#' && !is_space(text[0])) {
      entry<32> e{{}, label_for(set_id, 0)};
      if (from_hex(text.substr(0, 64), e.digest)) {
        sha256_.add(e);
        ++count;
        return;
      }
    }
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
        if (ok) md5_.add(e);
        break;
      }
      case 40: {
        entry<20> e{{}, lbl};
        ok = from_hex(hex, e.digest);
        if (ok) sha1_.add(e);
        break;
      }
      case 64: {
        entry<32> e{{}, lbl};
        ok = from_hex(hex, e.digest);
        if (ok) sha256_.add(e);
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
    while (const void* nl = std::memchr(buf.data() + start, '\n', have - start)) {
      const auto i = static_cast<std::size_t>(static_cast<const char*>(nl) - buf.data());
      parse_line(std::string_view(buf.data() + start, i - start));
      start = i + 1;
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

}  // namespace

template <std::size_t N>
void hashset_db::table<N>::reserve_more(std::uint64_t expected) {
  // Random digests spread evenly: the mean per bucket plus four standard
  // deviations rarely overflows, and wastes only a few percent.
  const double per_bucket = static_cast<double>(size + expected) / 256.0;
  const auto want = static_cast<std::size_t>(per_bucket + 4.0 * std::sqrt(per_bucket) + 16.0);
  for (auto& b : buckets) {
    b.reserve(want);
  }
}

template <std::size_t N>
void hashset_db::table<N>::seal() {
  auto sort_buckets = [this](std::size_t first) {
    std::vector<entry<N>> scratch;
    for (std::size_t b = first; b < buckets.size(); b += 2) {
      auto& bucket = buckets[b];
      // Shrinking copies the bucket: only worth it when much is unused.
      if (bucket.capacity() > bucket.size() + bucket.size() / 8 + 64) {
        bucket.shrink_to_fit();
      }
      if (bucket.size() < 4096) {
        std::sort(bucket.begin(), bucket.end(), digest_less<entry<N>>);
        continue;
      }
      // A counting sort on the second byte through a cache-sized scratch
      // buffer, then tiny sorts: much cheaper than one std::sort of
      // 36-byte entries.
      std::array<std::size_t, 257> start{};
      for (const auto& e : bucket) {
        ++start[e.digest[1] + 1];
      }
      for (std::size_t i = 1; i < start.size(); ++i) {
        start[i] += start[i - 1];
      }
      scratch.resize(bucket.size());
      std::array<std::size_t, 256> next{};
      std::copy(start.begin(), start.end() - 1, next.begin());
      for (const auto& e : bucket) {
        scratch[next[e.digest[1]]++] = e;
      }
      for (std::size_t i = 0; i < 256; ++i) {
        std::sort(scratch.begin() + static_cast<std::ptrdiff_t>(start[i]),
                  scratch.begin() + static_cast<std::ptrdiff_t>(start[i + 1]), digest_less<entry<N>>);
      }
      std::copy(scratch.begin(), scratch.end(), bucket.begin());
    }
  };
  if (size < 100'000) {
    sort_buckets(0);
    sort_buckets(1);
    return;
  }
  std::thread odd(sort_buckets, 1);
  sort_buckets(0);
  odd.join();
}

void hashset_db::seal() {
  md5_.seal();
  sha1_.seal();
  sha256_.seal();
}

std::uint64_t hashset_db::size() const noexcept {
  return md5_.size + sha1_.size + sha256_.size;
}

template <std::size_t N>
void hashset_db::collect(const table<N>& t, std::span<const std::uint8_t, N> key, const char* algorithm,
                         std::vector<hashset_hit>& out) const {
  entry<N> probe{};
  std::copy(key.begin(), key.end(), probe.digest.begin());
  const auto& bucket = t.buckets[key[0]];
  auto [first, last] = std::equal_range(bucket.begin(), bucket.end(), probe, digest_less<entry<N>>);
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
  if (sha256_.size != 0) collect<32>(sha256_, sha256, "sha256", hits);
  if (sha1_.size != 0) collect<20>(sha1_, sha1, "sha1", hits);
  if (md5_.size != 0) collect<16>(md5_, md5, "md5", hits);
  return hits;
}

}  // namespace borderscan::scanner
