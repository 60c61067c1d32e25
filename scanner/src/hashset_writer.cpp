// hashset_writer: digests in any order in, one compact file (hashset_format.hpp)
// out, in bounded memory. Records collect in a sort buffer; a full buffer is
// sorted, deduplicated and appended as a run to an unlinked temporary file;
// finish() merges the runs (and what is left in the buffer) straight into the
// output, building the prefix index and the content SHA-256 on the way.
// Names are deduplicated through a bounded map and streamed to temporary
// files, so neither the entries nor their names are ever all in memory.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <queue>
#include <stdexcept>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

#include "borderscan/scanner/atomic_file.hpp"
#include "borderscan/scanner/digest.hpp"
#include "borderscan/scanner/hashset.hpp"
#include "hashset_format.hpp"

namespace borderscan::scanner {
namespace fs = std::filesystem;
namespace {

[[noreturn]] void io_fail(const fs::path& file, const char* what, int err) {
  throw std::system_error(err, std::generic_category(), file.string() + ": " + what);
}

void write_all(int fd, const void* data, std::size_t n, const fs::path& name) {
  const auto* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) {
      continue;
    }
    if (w <= 0) {
      io_fail(name, "cannot write", w < 0 ? errno : EIO);
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

void read_exact(int fd, void* data, std::size_t n, std::uint64_t offset, const fs::path& name) {
  auto* p = static_cast<char*>(data);
  while (n > 0) {
    const ssize_t r = ::pread(fd, p, n, static_cast<off_t>(offset));
    if (r < 0 && errno == EINTR) {
      continue;
    }
    if (r <= 0) {
      io_fail(name, "cannot read back a temporary file", r < 0 ? errno : EIO);
    }
    p += r;
    n -= static_cast<std::size_t>(r);
    offset += static_cast<std::uint64_t>(r);
  }
}

// A file descriptor, closed on destruction; for temporary files, the name
// is unlinked at once so that nothing is left behind, even after a crash.
class owned_fd {
 public:
  owned_fd() = default;
  explicit owned_fd(int fd) : fd_(fd) {}
  owned_fd(owned_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  owned_fd& operator=(owned_fd&& o) noexcept {
    std::swap(fd_, o.fd_);
    return *this;
  }
  ~owned_fd() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  int get() const noexcept { return fd_; }

 private:
  int fd_ = -1;
};

owned_fd anonymous_temp(const fs::path& dir) {
  std::string tmpl = (dir / ".hashset-import-XXXXXX").string();
  const int fd = ::mkostemp(tmpl.data(), O_CLOEXEC);
  if (fd < 0) {
    io_fail(dir, "cannot create a temporary file", errno);
  }
  ::unlink(tmpl.c_str());
  return owned_fd(fd);
}

// Sequential writes through a buffer; optionally hashes what it writes.
class buffered_out {
 public:
  buffered_out(int fd, fs::path name, sha256_hasher* hash = nullptr) : fd_(fd), name_(std::move(name)), hash_(hash) {
    buf_.reserve(1 << 20);
  }
  void write(const void* data, std::size_t n) {
    const auto* p = static_cast<const char*>(data);
    if (hash_ != nullptr) {
      hash_->update(p, n);
    }
    offset_ += n;
    if (buf_.size() + n > buf_.capacity()) {
      flush();
      if (n >= buf_.capacity()) {
        write_all(fd_, p, n, name_);
        return;
      }
    }
    buf_.insert(buf_.end(), p, p + n);
  }
  void write_u64(std::uint64_t v) { write(&v, 8); }
  void pad8() {
    static constexpr std::array<char, 8> zeros{};
    if (const auto rem = offset_ % 8; rem != 0) {
      write(zeros.data(), 8 - rem);
    }
  }
  void flush() {
    if (!buf_.empty()) {
      write_all(fd_, buf_.data(), buf_.size(), name_);
      buf_.clear();
    }
  }
  std::uint64_t offset() const noexcept { return offset_; }
  void set_offset(std::uint64_t o) noexcept { offset_ = o; }

 private:
  int fd_;
  fs::path name_;
  sha256_hasher* hash_;
  std::vector<char> buf_;
  std::uint64_t offset_ = 0;
};

template <std::size_t N>
struct record {
  std::array<std::uint8_t, N> digest;
  std::uint32_t name;  // name index; 0 = unnamed
};
static_assert(sizeof(record<16>) == 20 && sizeof(record<20>) == 24 && sizeof(record<32>) == 36,
              "records are written as they are in memory");

// Digest order; for equal digests, the smallest name index first, the empty
// name (0) last, so that a named entry wins over an unnamed duplicate.
template <std::size_t N>
bool record_less(const record<N>& a, const record<N>& b) {
  std::uint64_t wa = 0, wb = 0;
  std::memcpy(&wa, a.digest.data(), 8);
  std::memcpy(&wb, b.digest.data(), 8);
  if (wa != wb) {
    return __builtin_bswap64(wa) < __builtin_bswap64(wb);
  }
  if (const int c = std::memcmp(a.digest.data() + 8, b.digest.data() + 8, N - 8); c != 0) {
    return c < 0;
  }
  return a.name - 1U < b.name - 1U;
}

// Bits of the prefix index for a table of about n entries: some 16 to 64
// records per slice, at most 16 bits (512 KiB of index).
std::uint32_t index_bits_for(std::uint64_t n) {
  std::uint32_t bits = 0;
  while (bits < detail::bhs_max_index_bits && (n >> (bits + 5)) != 0) {
    ++bits;
  }
  return bits;
}

// One algorithm's records: the sort buffer plus the runs already spilled.
template <std::size_t N>
struct table_builder {
  std::vector<record<N>> buffer;
  owned_fd runs;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> run_ranges;  // (first record, count) in `runs`
  std::uint64_t runs_size = 0;                                      // records in `runs`
  std::uint64_t added = 0;
  std::uint64_t duplicates = 0;

  // Sorts the buffer and drops repeated digests (the first by record_less stays).
  void sort_buffer() {
    std::sort(buffer.begin(), buffer.end(), record_less<N>);
    auto same = [](const record<N>& a, const record<N>& b) { return a.digest == b.digest; };
    const auto end = std::unique(buffer.begin(), buffer.end(), same);
    duplicates += static_cast<std::uint64_t>(buffer.end() - end);
    buffer.erase(end, buffer.end());
  }

  void spill(const fs::path& temp_dir) {
    if (buffer.empty()) {
      return;
    }
    sort_buffer();
    if (runs.get() < 0) {
      runs = anonymous_temp(temp_dir);
    }
    write_all(runs.get(), buffer.data(), buffer.size() * sizeof(record<N>), temp_dir);
    run_ranges.emplace_back(runs_size, buffer.size());
    runs_size += buffer.size();
    buffer.clear();
  }
};

// Reads one sorted run back through a buffer.
template <std::size_t N>
class run_reader {
 public:
  run_reader(int fd, std::uint64_t first, std::uint64_t count, std::size_t buffer_records, const fs::path& name)
      : fd_(fd), next_(first), end_(first + count), name_(name) {
    buf_.resize(std::max<std::size_t>(1, std::min<std::uint64_t>(buffer_records, count)));
  }
  // The next record, or nullptr at the end.
  const record<N>* next() {
    if (pos_ == len_) {
      if (next_ == end_) {
        return nullptr;
      }
      len_ = static_cast<std::size_t>(std::min<std::uint64_t>(buf_.size(), end_ - next_));
      read_exact(fd_, buf_.data(), len_ * sizeof(record<N>), next_ * sizeof(record<N>), name_);
      next_ += len_;
      pos_ = 0;
    }
    return &buf_[pos_++];
  }

 private:
  int fd_;
  std::uint64_t next_, end_;
  const fs::path& name_;
  std::vector<record<N>> buf_;
  std::size_t pos_ = 0, len_ = 0;
};

// Entry names: deduplicated through a bounded map (names repeat, e.g. the
// same DLL name across NSRL packages), streamed to two temporary files: the
// bytes, and each name's end offset.
class name_table {
 public:
  static constexpr std::size_t max_name_bytes = 1024;

  explicit name_table(const fs::path& temp_dir)
      : dir_(temp_dir),
        blob_fd_(anonymous_temp(temp_dir)),
        ends_fd_(anonymous_temp(temp_dir)),
        blob_(blob_fd_.get(), temp_dir),
        ends_(ends_fd_.get(), temp_dir) {}

  std::uint32_t id_for(std::string_view name) {
    if (name.empty() || count_ == UINT32_MAX) {
      return 0;
    }
    name = name.substr(0, max_name_bytes);
    if (last_id_ != 0 && name == last_) {
      return last_id_;
    }
    std::uint32_t id = 0;
    if (const auto it = recent_.find(std::string(name)); it != recent_.end()) {
      id = it->second;
    } else {
      id = static_cast<std::uint32_t>(count_++);
      blob_.write(name.data(), name.size());
      ends_.write_u64(blob_.offset());
      // Bounded: past the budget, forget and start again (repeats are then
      // stored twice, which costs bytes, not correctness).
      recent_bytes_ += name.size() + 64;
      if (recent_bytes_ > map_budget) {
        recent_.clear();
        recent_bytes_ = 0;
      }
      recent_.emplace(name, id);
    }
    last_.assign(name);
    last_id_ = id;
    return id;
  }

  // Appends offsets then bytes to out; returns (offsets offset, blob offset, blob size).
  std::array<std::uint64_t, 3> copy_to(buffered_out& out) {
    blob_.flush();
    ends_.flush();
    recent_.clear();
    out.pad8();
    const std::uint64_t offsets_at = out.offset();
    out.write_u64(0);  // name 0, the empty name: [0, 0)
    out.write_u64(0);
    copy(ends_fd_.get(), ends_.offset(), out);
    const std::uint64_t blob_at = out.offset();
    copy(blob_fd_.get(), blob_.offset(), out);
    return {offsets_at, blob_at, blob_.offset()};
  }

  std::uint64_t count() const noexcept { return count_; }

 private:
  static constexpr std::size_t map_budget = std::size_t{32} << 20;

  void copy(int fd, std::uint64_t size, buffered_out& out) {
    std::vector<char> buf(1 << 20);
    for (std::uint64_t pos = 0; pos < size;) {
      const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), size - pos));
      read_exact(fd, buf.data(), n, pos, dir_);
      out.write(buf.data(), n);
      pos += n;
    }
  }

  fs::path dir_;
  owned_fd blob_fd_, ends_fd_;
  buffered_out blob_, ends_;
  std::uint64_t count_ = 1;
  std::unordered_map<std::string, std::uint32_t> recent_;
  std::size_t recent_bytes_ = 0;
  std::string last_;
  std::uint32_t last_id_ = 0;
};

}  // namespace

struct hashset_writer::impl {
  fs::path output;
  std::string set_name;
  hashset_kind kind;
  options opt;
  table_builder<16> md5;
  table_builder<20> sha1;
  table_builder<32> sha256;
  name_table names;
  std::size_t buffered_bytes = 0;
  bool finished = false;

  impl(fs::path out, std::string name, hashset_kind k, options o)
      : output(std::move(out)),
        set_name(std::move(name)),
        kind(k),
        opt(with_temp_dir(std::move(o), output)),
        names(opt.temp_dir) {}

  static options with_temp_dir(options o, const fs::path& output) {
    if (o.temp_dir.empty()) {
      o.temp_dir = output.parent_path().empty() ? fs::path(".") : output.parent_path();
    }
    return o;
  }

  template <std::size_t N>
  void add(table_builder<N>& t, std::span<const std::uint8_t> digest, std::uint32_t name) {
    record<N> r{};
    std::copy(digest.begin(), digest.end(), r.digest.begin());
    r.name = name;
    t.buffer.push_back(r);
    ++t.added;
    buffered_bytes += sizeof(record<N>);
    if (buffered_bytes >= opt.memory_bytes) {
      md5.spill(opt.temp_dir);
      sha1.spill(opt.temp_dir);
      sha256.spill(opt.temp_dir);
      buffered_bytes = 0;
    }
  }

  // Merges table t's runs and buffer into out: records, then the prefix index.
  template <std::size_t N>
  detail::bhs_table emit(table_builder<N>& t, buffered_out& out) {
    detail::bhs_table tb;
    tb.record_size = N + 4;
    t.sort_buffer();
    if (t.runs_size + t.buffer.size() == 0) {
      return tb;
    }
    tb.index_bits = index_bits_for(t.added - t.duplicates);
    std::vector<std::uint64_t> index((std::size_t{1} << tb.index_bits) + 1, 0);
    std::size_t next_slot = 0;
    out.pad8();
    tb.records_offset = out.offset();

    // Sources: every run, then the buffer (already sorted), merged by a heap.
    // Runs share the memory budget for their read buffers.
    const std::size_t per_run = std::max<std::size_t>(
        4096, opt.memory_bytes / sizeof(record<N>) / std::max<std::size_t>(1, t.run_ranges.size()));
    std::vector<run_reader<N>> readers;
    readers.reserve(t.run_ranges.size());
    for (const auto& [first, count] : t.run_ranges) {
      readers.emplace_back(t.runs.get(), first, count, per_run, opt.temp_dir);
    }
    std::size_t buffer_pos = 0;
    auto pull = [&](std::size_t source) -> const record<N>* {
      if (source < readers.size()) {
        return readers[source].next();
      }
      return buffer_pos < t.buffer.size() ? &t.buffer[buffer_pos++] : nullptr;
    };
    using item = std::pair<record<N>, std::size_t>;
    auto greater = [](const item& a, const item& b) {
      if (record_less<N>(b.first, a.first)) return true;
      if (record_less<N>(a.first, b.first)) return false;
      return a.second > b.second;
    };
    std::priority_queue<item, std::vector<item>, decltype(greater)> heap(greater);
    for (std::size_t s = 0; s <= readers.size(); ++s) {
      if (const record<N>* r = pull(s)) {
        heap.emplace(*r, s);
      }
    }
    std::uint64_t written = 0;
    record<N> last{};
    while (!heap.empty()) {
      const auto [r, source] = heap.top();
      heap.pop();
      if (const record<N>* next = pull(source)) {
        heap.emplace(*next, source);
      }
      if (written != 0 && r.digest == last.digest) {
        ++t.duplicates;  // the same digest in two runs: the first (by record_less) stays
        continue;
      }
      const std::size_t slot = (std::size_t{r.digest[0]} << 8 | r.digest[1]) >> (16 - tb.index_bits);
      while (next_slot <= slot) {
        index[next_slot++] = written;
      }
      out.write(&r, sizeof r);
      last = r;
      ++written;
    }
    while (next_slot < index.size()) {
      index[next_slot++] = written;
    }
    tb.entries = written;
    out.pad8();
    tb.index_offset = out.offset();
    out.write(index.data(), index.size() * 8);
    // Done with this table: give its memory back before the next one.
    t.buffer = {};
    t.runs = owned_fd();
    return tb;
  }
};

hashset_writer::hashset_writer(fs::path output, std::string set_name, hashset_kind kind, options opt) {
  if (!detail::is_valid_set_name(set_name)) {
    throw std::invalid_argument("hash-set name '" + set_name +
                                "' is not 1 to 64 characters of A-Z a-z 0-9 . _ - (not starting with '.')");
  }
  impl_ = std::make_unique<impl>(std::move(output), std::move(set_name), kind, std::move(opt));
}

hashset_writer::hashset_writer(fs::path output, std::string set_name, hashset_kind kind)
    : hashset_writer(std::move(output), std::move(set_name), kind, options{}) {}

hashset_writer::~hashset_writer() = default;

void hashset_writer::add(std::span<const std::uint8_t> digest, std::string_view name) {
  if (digest.size() != 16 && digest.size() != 20 && digest.size() != 32) {
    throw std::invalid_argument("a digest of " + std::to_string(digest.size()) + " bytes is not MD5, SHA-1 or SHA-256");
  }
  const std::uint32_t id = impl_->names.id_for(name);
  switch (digest.size()) {
    case 16:
      impl_->add(impl_->md5, digest, id);
      break;
    case 20:
      impl_->add(impl_->sha1, digest, id);
      break;
    default:
      impl_->add(impl_->sha256, digest, id);
      break;
  }
}

hashset_writer::summary hashset_writer::finish() {
  impl& m = *impl_;
  if (m.finished) {
    throw std::logic_error("hashset_writer::finish called twice");
  }
  m.finished = true;
  const fs::path dir = m.output.parent_path().empty() ? fs::path(".") : m.output.parent_path();
  std::string tmp_name = (dir / ("." + m.output.filename().string() + ".XXXXXX")).string();
  const int raw_fd = ::mkostemp(tmp_name.data(), O_CLOEXEC);  // mode 0600
  if (raw_fd < 0) {
    io_fail(m.output, "cannot create a temporary file beside it", errno);
  }
  owned_fd fd(raw_fd);
  const fs::path tmp = tmp_name;
  // Removes the temporary file unless it was renamed into place.
  struct remove_guard {
    const fs::path& path;
    bool armed = true;
    ~remove_guard() {
      if (armed) {
        ::unlink(path.c_str());
      }
    }
  } guard{tmp};
  ::fchmod(fd.get(), 0600);

  sha256_hasher content;
  buffered_out out(fd.get(), tmp, &content);
  // The header goes in last, once everything it describes is known.
  const std::array<std::uint8_t, detail::bhs_header_size> placeholder{};
  write_all(fd.get(), placeholder.data(), placeholder.size(), tmp);
  out.set_offset(detail::bhs_header_size);

  summary s;
  s.added = m.md5.added + m.sha1.added + m.sha256.added;
  detail::bhs_header h;
  h.kind = m.kind;
  h.tables[0] = m.emit(m.md5, out);
  h.tables[1] = m.emit(m.sha1, out);
  h.tables[2] = m.emit(m.sha256, out);
  s.duplicates = m.md5.duplicates + m.sha1.duplicates + m.sha256.duplicates;
  h.names_count = m.names.count();
  const auto [offsets_at, blob_at, blob_size] = m.names.copy_to(out);
  h.names_offsets_offset = offsets_at;
  h.names_blob_offset = blob_at;
  h.names_blob_size = blob_size;
  out.flush();
  h.file_size = out.offset();
  h.content_sha256 = content.finish();
  h.set_name = m.set_name;
  h.source_format = m.opt.source_format;
  h.source_file = m.opt.source_file;
  const auto header = detail::encode_bhs_header(h);
  if (::pwrite(fd.get(), header.data(), header.size(), 0) != static_cast<ssize_t>(header.size())) {
    io_fail(tmp, "cannot write the header", errno);
  }
  if (::fsync(fd.get()) != 0) {
    io_fail(tmp, "cannot sync", errno);
  }
  if (::rename(tmp.c_str(), m.output.c_str()) != 0) {
    io_fail(m.output, "cannot move the new file into place", errno);
  }
  guard.armed = false;
  sync_directory(dir);

  s.info.name = h.set_name;
  s.info.kind = h.kind;
  s.info.md5 = h.tables[0].entries;
  s.info.sha1 = h.tables[1].entries;
  s.info.sha256 = h.tables[2].entries;
  s.info.names = h.names_count;
  s.info.file_size = h.file_size;
  s.info.content_sha256 = to_hex(h.content_sha256);
  s.info.source_format = h.source_format;
  s.info.source_file = h.source_file;
  return s;
}

}  // namespace borderscan::scanner
