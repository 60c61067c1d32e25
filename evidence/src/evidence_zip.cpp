#include "borderscan/evidence/evidence_zip.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <stdexcept>
#include <system_error>
#include <vector>

#include "borderscan/scanner/text.hpp"

namespace borderscan::evidence {
namespace {

constexpr std::size_t chunk_size = 64 * 1024;
constexpr std::size_t max_name_bytes = 255;  // NAME_MAX on the reviewer's disk

class unique_fd {
 public:
  explicit unique_fd(int fd) : fd_(fd) {}
  ~unique_fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

struct archive_entry_deleter {
  void operator()(archive_entry* e) const noexcept { archive_entry_free(e); }
};
using archive_entry_ptr = std::unique_ptr<archive_entry, archive_entry_deleter>;

// A libarchive zip writer on a descriptor it does not own.
//
// Output goes through our own callback rather than archive_write_open_fd so
// that an abandoned archive can be freed without writing anything more:
// archive_write_free() closes the archive, which would end the member and
// append a central directory, making a cut-off member look like a complete
// zip. libarchive also only releases its deflate stream when the entry ends,
// so skipping the close (archive_write_fail) would leak it on every aborted
// download. Hence: after the first failed write, or once the archive is
// abandoned, the sink reports success and drops the bytes.
class zip_writer {
 public:
  explicit zip_writer(int out_fd) : sink_{out_fd}, a_(archive_write_new()) {
    if (a_ == nullptr) throw std::runtime_error("archive_write_new failed");
  }
  ~zip_writer() {
    sink_.discard = true;
    archive_write_free(a_);
  }
  zip_writer(const zip_writer&) = delete;
  zip_writer& operator=(const zip_writer&) = delete;

  archive* get() const { return a_; }

  void open() { check(archive_write_open2(a_, &sink_, nullptr, &write_cb, nullptr, nullptr), "zip output"); }

  // Throws for a libarchive failure or a failed write to the descriptor.
  void check(int rc, const char* what) const {
    if (sink_.error != 0) throw std::system_error(sink_.error, std::generic_category(), "cannot write the zip");
    if (rc != ARCHIVE_OK) {
      const char* msg = archive_error_string(a_);
      throw std::runtime_error(std::string(what) + ": " + (msg != nullptr ? msg : "unknown libarchive error"));
    }
  }

 private:
  struct sink {
    int fd;
    int error = 0;
    bool discard = false;
  };

  static la_ssize_t write_cb(archive*, void* client, const void* buf, std::size_t n) {
    auto& s = *static_cast<sink*>(client);
    const char* p = static_cast<const char*>(buf);
    for (std::size_t left = n; left > 0 && !s.discard;) {
      const ssize_t w = ::write(s.fd, p, left);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        s.error = w < 0 ? errno : EIO;
        s.discard = true;
        break;
      }
      p += w;
      left -= static_cast<std::size_t>(w);
    }
    return static_cast<la_ssize_t>(n);
  }

  sink sink_;
  archive* a_;
};

// C0, DEL, C1, and the controls that reorder text on screen (a name like
// "invoice<RLO>fdp.exe" shows as "invoiceexe.pdf").
bool unsafe_in_name(char32_t cp) {
  return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == 0x061C || cp == 0x200E || cp == 0x200F ||
         (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

}  // namespace

std::string safe_member_name(std::string_view path) {
  if (const auto cut = path.find_last_of("/\\!"); cut != std::string_view::npos) path.remove_prefix(cut + 1);
  std::string out;
  for (std::size_t i = 0; i < path.size();) {
    const scanner::utf8_char c = scanner::decode_utf8(path, i);
    const bool keep = c.valid && !unsafe_in_name(c.code_point);
    if (out.size() + (keep ? c.length : 1) > max_name_bytes) break;  // cut between code points, never inside one
    if (keep) {
      out.append(path.substr(i, c.length));
    } else {
      out += '_';
    }
    // An unsafe character becomes one '_'; so does each byte that is not UTF-8.
    i += c.valid ? c.length : 1;
  }
  if (out.empty() || out == "." || out == "..") return "content.bin";
  return out;
}

void write_encrypted_zip(int out_fd, std::string_view member_name, const std::filesystem::path& content,
                         std::string_view password, std::int64_t mtime_unix_seconds) {
  // libarchive takes a C string: a NUL inside would silently shorten the password.
  if (password.find('\0') != std::string_view::npos) throw std::runtime_error("zip password contains a NUL byte");

  // O_NONBLOCK: a FIFO planted at the path must not hang the caller in open().
  const unique_fd in(::open(content.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (in.get() < 0) throw std::system_error(errno, std::generic_category(), "cannot open " + content.string());
  struct stat st {};
  if (::fstat(in.get(), &st) != 0) {
    throw std::system_error(errno, std::generic_category(), "cannot stat " + content.string());
  }
  if (!S_ISREG(st.st_mode)) throw std::runtime_error(content.string() + " is not a regular file");

  zip_writer zip(out_fd);
  archive* a = zip.get();
  zip.check(archive_write_set_format_zip(a), "zip format");
  // Fails, rather than writing the member in the clear, when libarchive was
  // built without a crypto library.
  zip.check(archive_write_set_options(a, "zip:encryption=aes256"), "zip AES-256 encryption");
  // UTF-8 names with the zip's UTF-8 flag, whatever the process locale.
  zip.check(archive_write_set_options(a, "zip:hdrcharset=UTF-8"), "zip UTF-8 names");
  zip.check(archive_write_set_passphrase(a, std::string(password).c_str()), "zip password");
  // Otherwise libarchive pads the last 10 KiB block with zeros after the end of central directory.
  zip.check(archive_write_set_bytes_in_last_block(a, 1), "zip block size");
  zip.open();

  const archive_entry_ptr entry(archive_entry_new());
  if (!entry) throw std::runtime_error("archive_entry_new failed");
  archive_entry_set_pathname_utf8(entry.get(), safe_member_name(member_name).c_str());
  archive_entry_set_filetype(entry.get(), AE_IFREG);
  archive_entry_set_perm(entry.get(), 0644);  // not the scanned file's modes: no exec or setuid bit
  archive_entry_set_size(entry.get(), st.st_size);
  archive_entry_set_mtime(entry.get(), static_cast<time_t>(mtime_unix_seconds), 0);
  zip.check(archive_write_header(a, entry.get()), "zip member header");

  // libarchive cuts the member at the size declared in its header, so a file
  // that changes while it is read would give a silently different member.
  std::vector<char> buf(chunk_size);
  std::int64_t total = 0;
  for (;;) {
    const ssize_t n = ::read(in.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw std::system_error(errno, std::generic_category(), "cannot read " + content.string());
    if (n == 0) break;
    total += n;
    if (total > st.st_size) throw std::runtime_error(content.string() + " grew while it was zipped");
    const la_ssize_t written = archive_write_data(a, buf.data(), static_cast<std::size_t>(n));
    zip.check(written == n ? ARCHIVE_OK : ARCHIVE_FATAL, "zip member data");
  }
  if (total != st.st_size) throw std::runtime_error(content.string() + " shrank while it was zipped");
  zip.check(archive_write_close(a), "zip central directory");
}

}  // namespace borderscan::evidence
