#include "borderscan/scanner/evidence_pack.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <iterator>
#include <limits>
#include <stdexcept>
#include <system_error>
#include <utility>
#include <vector>

#include "borderscan/scanner/digest.hpp"

namespace borderscan::scanner {
namespace {

using digest = sha256_digest;

constexpr char magic_kept[] = "BSEVKEPT";
constexpr char magic_dropped[] = "BSEVDROP";
constexpr char magic_pending[] = "BSEVPEND";
constexpr std::size_t magic_bytes = 8;
constexpr std::uint64_t max_offset = static_cast<std::uint64_t>(std::numeric_limits<off_t>::max());

void put_u64(std::byte* at, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) {
    at[i] = static_cast<std::byte>(v >> (8 * i));
  }
}

std::uint64_t get_u64(const std::byte* at) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) {
    v = (v << 8) | static_cast<std::uint8_t>(at[i]);
  }
  return v;
}

[[noreturn]] void throw_errno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), "evidence pack: " + what);
}

// Reads exactly out.size() bytes at `at`, or returns false at the end of the file.
bool pread_all(int fd, std::uint64_t at, std::span<std::byte> out) {
  std::size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(at + done));
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      throw_errno("read at offset " + std::to_string(at + done));
    }
    if (n == 0) {
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  return true;
}

struct fd_closer {
  int fd;
  ~fd_closer() { ::close(fd); }
};

int open_for_reading(const std::filesystem::path& pack) {
  const int fd = ::open(pack.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    throw_errno(pack.string());
  }
  return fd;
}

}  // namespace

evidence_pack::reservation::reservation(reservation&& other) noexcept
    : pack_(std::exchange(other.pack_, nullptr)),
      header_(other.header_),
      capacity_(other.capacity_),
      written_(other.written_) {}

evidence_pack::reservation& evidence_pack::reservation::operator=(reservation&& other) noexcept {
  if (this != &other) {
    if (pack_ != nullptr) {
      pack_->release(*this);
    }
    pack_ = std::exchange(other.pack_, nullptr);
    header_ = other.header_;
    capacity_ = other.capacity_;
    written_ = other.written_;
  }
  return *this;
}

evidence_pack::reservation::~reservation() {
  if (pack_ != nullptr) {
    pack_->release(*this);
  }
}

std::size_t evidence_pack::digest_hash::operator()(const digest& d) const noexcept {
  std::size_t h = 0;
  std::memcpy(&h, d.data(), sizeof h);  // a cryptographic digest is already well mixed
  return h;
}

evidence_pack::evidence_pack(int fd, evidence_limits lim) : fd_(fd), limits_(lim) {
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    const int err = errno;
    ::close(fd_);
    throw std::system_error(err, std::generic_category(), "evidence pack: fstat");
  }
  end_ = static_cast<std::uint64_t>(st.st_size);
}

evidence_pack::~evidence_pack() {
  ::close(fd_);
}

bool evidence_pack::fits_budget(std::uint64_t bytes) const {
  std::lock_guard lock(mutex_);
  return bytes <= limits_.max_bytes_per_scan && kept_bytes_ <= limits_.max_bytes_per_scan - bytes;
}

bool evidence_pack::contains(const digest& sha256) const {
  std::lock_guard lock(mutex_);
  return kept_.contains(sha256);
}

evidence_pack::reservation evidence_pack::reserve(std::uint64_t bytes) {
  std::lock_guard lock(mutex_);
  const std::uint64_t at = end_;
  if (at > max_offset - evidence_header_bytes || bytes > max_offset - evidence_header_bytes - at) {
    throw std::length_error("evidence pack: a region of " + std::to_string(bytes) + " bytes does not fit the file");
  }
  const std::uint64_t new_end = at + evidence_header_bytes + bytes;
  // The file covers the whole region at once (a hole until written), so a
  // record whose content is shorter than its region never points past the end.
  if (::ftruncate(fd_, static_cast<off_t>(new_end)) != 0) {
    throw_errno("extend to " + std::to_string(new_end) + " bytes");
  }
  try {
    write_header(at, magic_pending, digest{}, 0, bytes);
  } catch (...) {
    [[maybe_unused]] const int rc = ::ftruncate(fd_, static_cast<off_t>(at));
    throw;
  }
  end_ = new_end;
  reservation r;
  r.pack_ = this;
  r.header_ = at;
  r.capacity_ = bytes;
  return r;
}

void evidence_pack::write(reservation& r, std::uint64_t offset_in_content, std::span<const std::byte> data) {
  if (r.pack_ != this) {
    throw std::logic_error("evidence pack: write to a reservation that is not pending here");
  }
  if (offset_in_content > r.capacity_ || data.size() > r.capacity_ - offset_in_content) {
    throw std::out_of_range("evidence pack: write past the reserved region");
  }
  pwrite_all(r.header_ + evidence_header_bytes + offset_in_content, data);
  r.written_ = std::max(r.written_, offset_in_content + data.size());
}

evidence_outcome evidence_pack::keep(reservation& r, const digest& sha256, std::uint64_t length) {
  if (r.pack_ != this) {
    throw std::logic_error("evidence pack: keep of a reservation that is not pending here");
  }
  if (length > r.capacity_) {
    throw std::out_of_range("evidence pack: kept length past the reserved region");
  }
  evidence_outcome outcome = evidence_outcome::kept;
  {
    std::lock_guard lock(mutex_);
    if (kept_.contains(sha256)) {
      outcome = evidence_outcome::already_kept;
    } else if (length > limits_.max_bytes_per_scan || kept_bytes_ > limits_.max_bytes_per_scan - length) {
      outcome = evidence_outcome::over_scan_budget;
    } else {
      const std::uint64_t shorter_end = r.header_ + evidence_header_bytes + length;
      if (r.header_ + evidence_header_bytes + r.capacity_ == end_ && length < r.capacity_ &&
          ::ftruncate(fd_, static_cast<off_t>(shorter_end)) == 0) {
        // The last record: the slack of a region claimed for a stream of
        // unknown length goes back.
        r.capacity_ = length;
        end_ = shorter_end;
      }
      // Under the lock: a second copy of the same content waits and sees this one.
      write_header(r.header_, magic_kept, sha256, length, r.capacity_);
      // Dropped records before a kept one stay where they are for good.
      dropped_.erase(dropped_.begin(), dropped_.lower_bound(r.header_));
      kept_.insert(sha256);
      kept_bytes_ += length;
      ++kept_records_;
      r.pack_ = nullptr;
    }
  }
  if (outcome != evidence_outcome::kept) {
    drop(r);
  }
  return outcome;
}

void evidence_pack::drop(reservation& r) {
  if (r.pack_ != this) {
    throw std::logic_error("evidence pack: drop of a reservation that is not pending here");
  }
  r.pack_ = nullptr;
  // The header first: whatever happens to the data, the record is not kept.
  // The data goes even when the header could not be written: no copy of
  // content that was not kept stays behind.
  std::exception_ptr error;
  try {
    write_header(r.header_, magic_dropped, digest{}, 0, r.capacity_);
  } catch (...) {
    error = std::current_exception();
  }
  try {
    free_region(r);
  } catch (...) {
    error = error ? error : std::current_exception();
  }
  {
    std::lock_guard lock(mutex_);
    dropped_.emplace(r.header_, r.header_ + evidence_header_bytes + r.capacity_);
    trim_tail();
  }
  if (error) {
    std::rethrow_exception(error);
  }
}

void evidence_pack::trim_tail() {
  // Dropped records at the end of the pack are cut off, so that streams
  // copied and dropped one after another reuse the same bytes of the file.
  while (!dropped_.empty()) {
    const auto last = std::prev(dropped_.end());
    if (last->second != end_ || ::ftruncate(fd_, static_cast<off_t>(last->first)) != 0) {
      return;
    }
    end_ = last->first;
    dropped_.erase(last);
  }
}

void evidence_pack::free_region(const reservation& r) {
  if (r.capacity_ == 0) {
    return;
  }
  const auto data_at = static_cast<off_t>(r.header_ + evidence_header_bytes);
  if (::fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, data_at, static_cast<off_t>(r.capacity_)) == 0) {
    return;
  }
  if (errno != EOPNOTSUPP && errno != ENOSYS) {
    throw_errno("punch a hole at offset " + std::to_string(data_at));
  }
  // A file system without holes: overwrite what was written instead.
  const std::vector<std::byte> zeros(static_cast<std::size_t>(std::min<std::uint64_t>(r.written_, 1 << 20)));
  for (std::uint64_t done = 0; done < r.written_;) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(zeros.size(), r.written_ - done));
    pwrite_all(r.header_ + evidence_header_bytes + done, std::span(zeros).first(n));
    done += n;
  }
}

void evidence_pack::release(reservation& r) {
  try {
    drop(r);
  } catch (...) {
    // The record stays pending or dropped: readers skip it either way.
    r.pack_ = nullptr;
  }
}

std::uint64_t evidence_pack::bytes_kept() const {
  std::lock_guard lock(mutex_);
  return kept_bytes_;
}

std::uint64_t evidence_pack::records_kept() const {
  std::lock_guard lock(mutex_);
  return kept_records_;
}

std::uint64_t evidence_pack::end_offset() const {
  std::lock_guard lock(mutex_);
  return end_;
}

void evidence_pack::sync() {
  if (::fsync(fd_) != 0 && errno != EINVAL) {
    throw_errno("fsync");
  }
}

void evidence_pack::write_header(std::uint64_t at, const char* magic, const digest& sha256, std::uint64_t length,
                                 std::uint64_t reserved) {
  std::array<std::byte, evidence_header_bytes> h{};
  std::memcpy(h.data(), magic, magic_bytes);
  std::memcpy(h.data() + magic_bytes, sha256.data(), sha256.size());
  put_u64(h.data() + 40, length);
  put_u64(h.data() + 48, reserved);
  pwrite_all(at, h);
}

void evidence_pack::pwrite_all(std::uint64_t at, std::span<const std::byte> data) {
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::pwrite(fd_, data.data() + done, data.size() - done, static_cast<off_t>(at + done));
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      throw_errno("write at offset " + std::to_string(at + done));
    }
    done += static_cast<std::size_t>(n);
  }
}

void read_evidence_pack(const std::filesystem::path& pack, const std::function<void(const evidence_record&)>& each) {
  const fd_closer fd{open_for_reading(pack)};
  struct stat st {};
  if (::fstat(fd.fd, &st) != 0) {
    throw_errno("fstat " + pack.string());
  }
  if (!S_ISREG(st.st_mode)) {
    throw std::runtime_error("evidence pack " + pack.string() + ": not a regular file");
  }
  const auto size = static_cast<std::uint64_t>(st.st_size);
  const auto malformed = [&](std::uint64_t at, const std::string& why) {
    return std::runtime_error("evidence pack " + pack.string() + ": record at offset " + std::to_string(at) + ": " +
                              why);
  };
  std::uint64_t at = 0;
  while (at < size) {
    std::array<std::byte, evidence_header_bytes> h{};
    if (size - at < h.size() || !pread_all(fd.fd, at, h)) {
      throw malformed(at, "header cut short by the end of the file");
    }
    const auto is = [&](const char* magic) { return std::memcmp(h.data(), magic, magic_bytes) == 0; };
    const bool kept = is(magic_kept);
    if (!kept && !is(magic_dropped) && !is(magic_pending)) {
      throw malformed(at, "not a record header (bad magic)");
    }
    const std::uint64_t length = get_u64(h.data() + 40);
    const std::uint64_t reserved = get_u64(h.data() + 48);
    const std::uint64_t room = size - at - h.size();
    if (reserved > room) {
      throw malformed(at, "data region of " + std::to_string(reserved) + " bytes runs past the end of the file");
    }
    if (length > reserved) {
      throw malformed(at, "length " + std::to_string(length) + " exceeds its region of " + std::to_string(reserved));
    }
    if (kept) {
      const auto* sha = reinterpret_cast<const std::uint8_t*>(h.data() + magic_bytes);
      each(evidence_record{to_hex(std::span(sha, 32)), at + h.size(), length});
    }
    at += h.size() + reserved;
  }
}

void copy_evidence(const std::filesystem::path& pack, const evidence_record& record,
                   const std::function<void(std::span<const std::byte>)>& sink) {
  const fd_closer fd{open_for_reading(pack)};
  sha256_hasher hasher;
  std::vector<std::byte> buf(static_cast<std::size_t>(std::min<std::uint64_t>(record.length, 1 << 20)));
  for (std::uint64_t done = 0; done < record.length;) {
    const auto piece =
        std::span(buf).first(static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), record.length - done)));
    if (!pread_all(fd.fd, record.data_offset + done, piece)) {
      throw std::runtime_error("evidence pack " + pack.string() + ": content at offset " +
                               std::to_string(record.data_offset) + " cut short by the end of the file");
    }
    hasher.update(piece);
    sink(piece);
    done += piece.size();
  }
  if (hasher.hex_digest() != record.sha256) {
    throw std::runtime_error("evidence pack " + pack.string() + ": content at offset " +
                             std::to_string(record.data_offset) + " does not hash to " + record.sha256);
  }
}

}  // namespace borderscan::scanner
