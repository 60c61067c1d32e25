#include "borderscan/scanner/hashset.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>
#include <utility>

#include "borderscan/scanner/digest.hpp"
#include "borderscan/scanner/error.hpp"
#include "borderscan/scanner/text.hpp"
#include "c_handle.hpp"
#include "hashset_format.hpp"

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
  // FILE:something else is a kind misspelt, unless FILE:something is itself a file.
  const auto colon = arg.rfind(':');
  std::error_code ec;
  if (colon != std::string_view::npos && !std::filesystem::exists(std::filesystem::path(arg), ec) &&
      std::filesystem::exists(std::filesystem::path(arg.substr(0, colon)), ec)) {
    throw scan_error(scan_errc::rules_invalid, "unknown hash-set kind '" + std::string(arg.substr(colon + 1)) +
                                                   "' in " + std::string(arg) +
                                                   ": write FILE:known-bad or FILE:known-good (known-bad if left out)");
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

namespace detail {

void read_text_hashset(const std::filesystem::path& file, const text_entry_fn& on_entry) {
  file_ptr f(std::fopen(file.c_str(), "rb"));
  if (!f) {
    throw scan_error(scan_errc::rules_invalid, file.string() + ": cannot open hash set: " + std::strerror(errno));
  }
  std::uint64_t line_no = 0;
  std::array<std::uint8_t, 32> digest{};
  auto parse_line = [&](std::string_view text) {
    ++line_no;
    // The common line of a big set: a bare SHA-256 (optionally CRLF).
    if ((text.size() == 64 || (text.size() == 65 && text[64] == '\r')) && text[0] != '#' && !is_space(text[0])) {
      if (from_hex(text.substr(0, 64), digest)) {
        on_entry(digest, {});
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
    const bool sized = hex.size() == 32 || hex.size() == 40 || hex.size() == 64;
    const auto bytes = std::span(digest).first(sized ? hex.size() / 2 : 0);
    if (!sized || !from_hex(hex, bytes)) {
      throw scan_error(scan_errc::rules_invalid,
                       file.string() + ":" + std::to_string(line_no) + ": not an MD5, SHA-1 or SHA-256 hex digest");
    }
    on_entry(bytes, trim(text.substr(end)));
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
}

}  // namespace detail

void hashset_db::load_text(const std::filesystem::path& file, hashset_kind kind, std::string set_name) {
  // Listed before parsing: entries added before a malformed line refer to it.
  const auto set_id = static_cast<std::uint32_t>(sets_.size());
  sets_.push_back({set_name.empty() ? set_name_of(file) : std::move(set_name), kind, 0, file, {}});

  // Reserve from the file size (a SHA-256 line is at least 65 bytes) so the
  // buckets do not double, and memory does not spike, while they fill.
  std::error_code ec;
  const auto bytes = std::filesystem::file_size(file, ec);
  if (!ec) {
    sha256_.reserve_more(bytes / 65);
  }

  std::uint64_t count = 0;
  std::uint32_t last_name = 0;
  detail::read_text_hashset(file, [&](std::span<const std::uint8_t> digest, std::string_view entry_name) {
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
    switch (digest.size()) {
      case 16: {
        entry<16> e{{}, lbl};
        std::copy(digest.begin(), digest.end(), e.digest.begin());
        md5_.add(e);
        break;
      }
      case 20: {
        entry<20> e{{}, lbl};
        std::copy(digest.begin(), digest.end(), e.digest.begin());
        sha1_.add(e);
        break;
      }
      default: {
        entry<32> e{{}, lbl};
        std::copy(digest.begin(), digest.end(), e.digest.begin());
        sha256_.add(e);
        break;
      }
    }
    ++count;
  });
  sets_[set_id].entries = count;
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

// ---- Compact files ----

namespace detail {
namespace {

void put_u32(std::uint8_t* p, std::uint32_t v) {
  std::memcpy(p, &v, 4);
}
void put_u64(std::uint8_t* p, std::uint64_t v) {
  std::memcpy(p, &v, 8);
}

// off + len fits inside size, without overflow.
bool within(std::uint64_t off, std::uint64_t len, std::uint64_t size) {
  return off <= size && len <= size - off;
}

std::string fixed_text(const std::uint8_t* p, std::uint32_t len) {
  return std::string(reinterpret_cast<const char*>(p), len);
}

}  // namespace

bool has_bhs_magic(std::span<const std::uint8_t> bytes) noexcept {
  return bytes.size() >= bhs_magic.size() && std::memcmp(bytes.data(), bhs_magic.data(), bhs_magic.size()) == 0;
}

bool is_valid_set_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > bhs_max_set_name || name.front() == '.') {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
  });
}

std::array<std::uint8_t, bhs_header_size> encode_bhs_header(const bhs_header& h) {
  std::array<std::uint8_t, bhs_header_size> b{};
  std::memcpy(b.data(), bhs_magic.data(), bhs_magic.size());
  put_u32(&b[8], bhs_version);
  put_u32(&b[12], bhs_header_size);
  put_u64(&b[16], h.file_size);
  put_u32(&b[24], h.kind == hashset_kind::known_good ? 1 : 0);
  for (std::size_t t = 0; t < 3; ++t) {
    std::uint8_t* p = &b[32 + 32 * t];
    put_u64(p, h.tables[t].entries);
    put_u64(p + 8, h.tables[t].records_offset);
    put_u64(p + 16, h.tables[t].index_offset);
    put_u32(p + 24, h.tables[t].index_bits);
    put_u32(p + 28, static_cast<std::uint32_t>(bhs_digest_sizes[t] + 4));
  }
  put_u64(&b[128], h.names_count);
  put_u64(&b[136], h.names_offsets_offset);
  put_u64(&b[144], h.names_blob_offset);
  put_u64(&b[152], h.names_blob_size);
  std::memcpy(&b[160], h.content_sha256.data(), 32);
  const std::string_view name = std::string_view(h.set_name).substr(0, bhs_max_set_name);
  const std::string_view format = std::string_view(h.source_format).substr(0, bhs_max_format);
  const std::string_view source = std::string_view(h.source_file).substr(0, bhs_max_source);
  put_u32(&b[192], static_cast<std::uint32_t>(name.size()));
  put_u32(&b[196], static_cast<std::uint32_t>(format.size()));
  put_u32(&b[200], static_cast<std::uint32_t>(source.size()));
  std::memcpy(&b[208], name.data(), name.size());
  std::memcpy(&b[272], format.data(), format.size());
  std::memcpy(&b[288], source.data(), source.size());
  return b;
}

bhs_header decode_bhs_header(std::span<const std::uint8_t, bhs_header_size> b, std::uint64_t actual_size,
                             const std::filesystem::path& file) {
  auto bad = [&](const std::string& why) {
    return scan_error(scan_errc::rules_invalid, file.string() + ": not a usable compact hash set: " + why);
  };
  if (!has_bhs_magic(b)) {
    throw bad("no magic");
  }
  if (const auto v = load_u32(&b[8]); v != bhs_version) {
    throw bad("format version " + std::to_string(v) + " (this build reads version " + std::to_string(bhs_version) +
              ")");
  }
  if (load_u32(&b[12]) != bhs_header_size) {
    throw bad("header size is not " + std::to_string(bhs_header_size));
  }
  bhs_header h;
  h.file_size = load_u64(&b[16]);
  if (h.file_size != actual_size) {
    throw bad("the header says " + std::to_string(h.file_size) + " bytes, the file has " + std::to_string(actual_size) +
              " (truncated or appended to)");
  }
  const std::uint32_t kind = load_u32(&b[24]);
  if (kind > 1) {
    throw bad("unknown kind " + std::to_string(kind));
  }
  h.kind = kind == 1 ? hashset_kind::known_good : hashset_kind::known_bad;
  for (std::size_t t = 0; t < 3; ++t) {
    const std::uint8_t* p = &b[32 + 32 * t];
    bhs_table& tb = h.tables[t];
    tb.entries = load_u64(p);
    tb.records_offset = load_u64(p + 8);
    tb.index_offset = load_u64(p + 16);
    tb.index_bits = load_u32(p + 24);
    tb.record_size = load_u32(p + 28);
    const std::string what = std::string(bhs_algorithms[t]) + " table: ";
    if (tb.record_size != bhs_digest_sizes[t] + 4) {
      throw bad(what + "record size " + std::to_string(tb.record_size));
    }
    if (tb.index_bits > bhs_max_index_bits) {
      throw bad(what + "prefix index of " + std::to_string(tb.index_bits) + " bits");
    }
    // Divide first: entries * record_size cannot overflow once entries fit.
    if (tb.entries > actual_size / tb.record_size ||
        !within(tb.records_offset, tb.entries * tb.record_size, actual_size) ||
        (tb.entries != 0 && tb.records_offset < bhs_header_size)) {
      throw bad(what + std::to_string(tb.entries) + " records do not fit in the file");
    }
    const std::uint64_t index_bytes = ((std::uint64_t{1} << tb.index_bits) + 1) * 8;
    if (tb.entries != 0 && (!within(tb.index_offset, index_bytes, actual_size) || tb.index_offset < bhs_header_size)) {
      throw bad(what + "prefix index outside the file");
    }
  }
  h.names_count = load_u64(&b[128]);
  h.names_offsets_offset = load_u64(&b[136]);
  h.names_blob_offset = load_u64(&b[144]);
  h.names_blob_size = load_u64(&b[152]);
  if (h.names_count == 0 || h.names_count > actual_size / 8 ||
      !within(h.names_offsets_offset, (h.names_count + 1) * 8, actual_size) ||
      h.names_offsets_offset < bhs_header_size) {
    throw bad("name offsets outside the file");
  }
  if (!within(h.names_blob_offset, h.names_blob_size, actual_size) || h.names_blob_offset < bhs_header_size) {
    throw bad("names outside the file");
  }
  std::memcpy(h.content_sha256.data(), &b[160], 32);
  const std::uint32_t name_len = load_u32(&b[192]);
  const std::uint32_t format_len = load_u32(&b[196]);
  const std::uint32_t source_len = load_u32(&b[200]);
  if (name_len == 0 || name_len > bhs_max_set_name || format_len > bhs_max_format || source_len > bhs_max_source) {
    throw bad("set name or source description of impossible length");
  }
  h.set_name = escape_name(fixed_text(&b[208], name_len));
  h.source_format = escape_name(fixed_text(&b[272], format_len));
  h.source_file = escape_name(fixed_text(&b[288], source_len));
  return h;
}

}  // namespace detail

namespace {

static_assert(std::endian::native == std::endian::little, "compact hash sets are read in place: little-endian only");

struct fd_closer {
  int fd = -1;
  fd_closer() = default;
  fd_closer(fd_closer&& o) noexcept : fd(std::exchange(o.fd, -1)) {}
  fd_closer& operator=(fd_closer&&) = delete;
  ~fd_closer() {
    if (fd >= 0) {
      ::close(fd);
    }
  }
};

// Reads exactly n bytes at offset; false at end of file.
bool read_at(int fd, void* buf, std::size_t n, std::uint64_t offset) {
  auto* p = static_cast<std::uint8_t*>(buf);
  while (n > 0) {
    const ssize_t r = ::pread(fd, p, n, static_cast<off_t>(offset));
    if (r < 0 && errno == EINTR) {
      continue;
    }
    if (r <= 0) {
      return false;
    }
    p += r;
    n -= static_cast<std::size_t>(r);
    offset += static_cast<std::uint64_t>(r);
  }
  return true;
}

struct opened_compact {
  fd_closer fd;
  std::uint64_t size = 0;
  std::array<std::uint8_t, detail::bhs_header_size> raw{};
  detail::bhs_header header;
};

// nullopt: not a compact file. Throws for a compact file that is not usable.
std::optional<opened_compact> open_compact(const std::filesystem::path& file) {
  opened_compact c;
  c.fd.fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (c.fd.fd < 0) {
    throw scan_error(scan_errc::rules_invalid, file.string() + ": cannot open hash set: " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(c.fd.fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    throw scan_error(scan_errc::rules_invalid, file.string() + ": not a regular file");
  }
  c.size = static_cast<std::uint64_t>(st.st_size);
  std::array<std::uint8_t, detail::bhs_magic.size()> magic{};
  if (c.size < magic.size() || !read_at(c.fd.fd, magic.data(), magic.size(), 0) || !detail::has_bhs_magic(magic)) {
    return std::nullopt;
  }
  if (c.size < detail::bhs_header_size || !read_at(c.fd.fd, c.raw.data(), c.raw.size(), 0)) {
    throw scan_error(scan_errc::rules_invalid,
                     file.string() + ": not a usable compact hash set: shorter than its header");
  }
  c.header = detail::decode_bhs_header(c.raw, c.size, file);
  return c;
}

compact_hashset_info info_of(const detail::bhs_header& h) {
  compact_hashset_info info;
  info.name = h.set_name;
  info.kind = h.kind;
  info.md5 = h.tables[0].entries;
  info.sha1 = h.tables[1].entries;
  info.sha256 = h.tables[2].entries;
  info.names = h.names_count;
  info.file_size = h.file_size;
  info.content_sha256 = to_hex(h.content_sha256);
  info.source_format = h.source_format;
  info.source_file = h.source_file;
  return info;
}

}  // namespace

// One compact file, mapped read-only for its lifetime. Every read of the
// mapping stays inside the bounds the header was checked against, and the
// values read from the sections (prefix index, name offsets) are clamped
// before use: a hostile file gives wrong answers at worst, never a read
// outside the mapping.
class hashset_db::compact_set {
 public:
  static std::shared_ptr<compact_set> open(const std::filesystem::path& file) {
    auto opened = open_compact(file);
    if (!opened) {
      return nullptr;
    }
    void* base = ::mmap(nullptr, opened->size, PROT_READ, MAP_PRIVATE, opened->fd.fd, 0);
    if (base == MAP_FAILED) {
      throw scan_error(scan_errc::rules_invalid, file.string() + ": cannot map hash set: " + std::strerror(errno));
    }
    // Lookups jump around: read ahead no more than the page asked for.
    ::madvise(base, opened->size, MADV_RANDOM);
    auto set = std::shared_ptr<compact_set>(new compact_set(static_cast<const std::uint8_t*>(base), *opened));
#ifdef MADV_POPULATE_READ
    // The prefix indexes (512 KiB each at most) are touched by every lookup:
    // map them now, so that a worker's first lookups do not each fault.
    for (const auto& t : set->header_.tables) {
      if (t.entries != 0) {
        const std::uint64_t page = t.index_offset & ~std::uint64_t{4095};
        ::madvise(const_cast<std::uint8_t*>(set->base_) + page,
                  t.index_offset - page + ((std::uint64_t{1} << t.index_bits) + 1) * 8, MADV_POPULATE_READ);
      }
    }
#endif
    return set;
  }

  ~compact_set() {
    ::munmap(const_cast<std::uint8_t*>(base_), size_);
  }
  compact_set(const compact_set&) = delete;
  compact_set& operator=(const compact_set&) = delete;

  hashset_kind kind() const noexcept {
    return header_.kind;
  }
  const std::string& name() const noexcept {
    return name_;
  }
  void rename(std::string name) {
    name_ = std::move(name);
  }
  const std::string& fingerprint() const noexcept {
    return fingerprint_;
  }
  std::uint64_t entries() const noexcept {
    return header_.tables[0].entries + header_.tables[1].entries + header_.tables[2].entries;
  }

  // Appends a hit for every record of table t (0 md5, 1 sha1, 2 sha256) equal to key.
  void find(std::size_t t, std::span<const std::uint8_t> key, std::vector<hashset_hit>& out) const {
    const detail::bhs_table& tb = header_.tables[t];
    if (tb.entries == 0) {
      return;
    }
    const std::size_t n = detail::bhs_digest_sizes[t];
    const std::uint8_t* records = base_ + tb.records_offset;
    const std::uint8_t* index = base_ + tb.index_offset;
    const std::uint64_t prefix = (std::uint64_t{key[0]} << 8 | key[1]) >> (16 - tb.index_bits);
    std::uint64_t lo = std::min(detail::load_u64(index + prefix * 8), tb.entries);
    std::uint64_t hi = std::min(detail::load_u64(index + (prefix + 1) * 8), tb.entries);
    if (lo < hi) {
      lo = lower_bound(records, tb.record_size, n, tb.index_bits, lo, hi, key);
    }
    for (; lo < tb.entries && std::memcmp(records + lo * tb.record_size, key.data(), n) == 0; ++lo) {
      const std::uint32_t name = detail::load_u32(records + lo * tb.record_size + n);
      out.push_back({name_, header_.kind, entry_name(name), detail::bhs_algorithms[t]});
    }
  }

 private:
  compact_set(const std::uint8_t* base, const opened_compact& c)
      : base_(base),
        size_(c.size),
        header_(c.header),
        name_(c.header.set_name),
        fingerprint_(reinterpret_cast<const char*>(c.raw.data()), c.raw.size()) {}

  static std::uint64_t prefix64(const std::uint8_t* p) {
    std::uint64_t v = 0;
    std::memcpy(&v, p, 8);
    return __builtin_bswap64(v);
  }

  // First record in [lo, hi) not less than key (hi when none); [lo, hi) is
  // the slice of the key's top `bits` bits. Digests are uniform, so the key's
  // place is guessed from its next bits, as a fraction of the slice, then
  // reached by a short walk: one memory miss and a cache line or two, where a
  // binary search takes a dozen misses. A walk longer than 32 records (data
  // that is not uniform) ends in a binary search.
  static std::uint64_t lower_bound(const std::uint8_t* records, std::uint32_t size, std::size_t n, std::uint32_t bits,
                                   std::uint64_t lo, std::uint64_t hi, std::span<const std::uint8_t> key) {
    auto less = [&](std::uint64_t i) { return std::memcmp(records + i * size, key.data(), n) < 0; };
    if (hi - lo > 8) {
      // The bits below the prefix, as a fraction of 2^64 (bits < 64).
      const std::uint64_t below = prefix64(key.data()) << bits;
      const std::uint64_t guess =
          lo + static_cast<std::uint64_t>((static_cast<unsigned __int128>(below) * (hi - lo)) >> 64);
      if (less(guess)) {
        lo = guess + 1;
        for (int step = 0; step < 32 && lo < hi; ++step, ++lo) {
          if (!less(lo)) {
            return lo;
          }
        }
      } else {
        hi = guess;
        for (int step = 0; step < 32 && hi > lo; ++step, --hi) {
          if (less(hi - 1)) {
            return hi;
          }
        }
      }
    }
    while (lo < hi) {
      const std::uint64_t mid = lo + (hi - lo) / 2;
      if (less(mid)) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return lo;
  }

  std::string entry_name(std::uint32_t id) const {
    if (id == 0 || id >= header_.names_count) {
      return {};
    }
    const std::uint8_t* offsets = base_ + header_.names_offsets_offset;
    const std::uint64_t begin = detail::load_u64(offsets + std::uint64_t{id} * 8);
    const std::uint64_t end = detail::load_u64(offsets + (std::uint64_t{id} + 1) * 8);
    if (begin > end || end > header_.names_blob_size || end - begin > 4096) {
      return {};
    }
    // Names are untrusted text: valid UTF-8 for the report, whatever the file holds.
    return escape_name(
        std::string_view(reinterpret_cast<const char*>(base_ + header_.names_blob_offset + begin), end - begin));
  }

  const std::uint8_t* base_;
  std::size_t size_;
  detail::bhs_header header_;
  std::string name_;
  std::string fingerprint_;
};

std::uint64_t hashset_db::size() const noexcept {
  std::uint64_t n = md5_.size + sha1_.size + sha256_.size;
  for (const auto& c : compact_) {
    n += c->entries();
  }
  return n;
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
  for (const auto& c : compact_) c->find(2, sha256, hits);
  if (sha1_.size != 0) collect<20>(sha1_, sha1, "sha1", hits);
  for (const auto& c : compact_) c->find(1, sha1, hits);
  if (md5_.size != 0) collect<16>(md5_, md5, "md5", hits);
  for (const auto& c : compact_) c->find(0, md5, hits);
  return hits;
}

void hashset_db::load(const std::filesystem::path& file, hashset_kind kind, std::string set_name) {
  auto compact = compact_set::open(file);
  if (!compact) {
    load_text(file, kind, std::move(set_name));
    return;
  }
  if (compact->kind() != kind) {
    throw scan_error(scan_errc::rules_invalid,
                     file.string() + ": imported as a " + to_string(compact->kind()) + " set but given as " +
                         to_string(kind) + " (append :" + to_string(compact->kind()) + " to use it as imported)");
  }
  if (!set_name.empty()) {
    compact->rename(std::move(set_name));
  }
  sets_.push_back({compact->name(), kind, compact->entries(), file, compact->fingerprint()});
  compact_.push_back(std::move(compact));
}

std::optional<compact_hashset_info> read_compact_hashset_info(const std::filesystem::path& file) {
  auto opened = open_compact(file);
  if (!opened) {
    return std::nullopt;
  }
  return info_of(opened->header);
}

bool verify_compact_hashset(const std::filesystem::path& file) {
  auto opened = open_compact(file);
  if (!opened) {
    throw scan_error(scan_errc::rules_invalid, file.string() + ": not a compact hash set");
  }
  sha256_hasher h;
  std::vector<std::uint8_t> buf(1 << 20);
  std::uint64_t pos = detail::bhs_header_size;
  while (pos < opened->size) {
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), opened->size - pos));
    if (!read_at(opened->fd.fd, buf.data(), n, pos)) {
      throw scan_error(scan_errc::rules_invalid, file.string() + ": read error");
    }
    h.update(buf.data(), n);
    pos += n;
  }
  return h.finish() == opened->header.content_sha256;
}

bool is_valid_hashset_name(std::string_view name) noexcept {
  return detail::is_valid_set_name(name);
}

}  // namespace borderscan::scanner
