#include "borderscan/server/upload.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "borderscan/scanner/digest.hpp"
#include "borderscan/server/problem.hpp"

namespace borderscan::server {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

constexpr std::uint64_t write_behind_bytes = 8 << 20;

[[noreturn]] void bad_digest(const std::string& why) {
  throw http_error(http::status::bad_request, "malformed-digest", why);
}

}  // namespace

std::optional<std::string> content_digest_sha256(std::string_view field) {
  // RFC 9530 / RFC 8941 dictionary: `alg=:base64:` members separated by commas
  // (base64 never contains a comma). Parameters after `;` are ignored.
  std::optional<std::string> out;
  while (!field.empty()) {
    const auto comma = field.find(',');
    std::string_view member = trim(field.substr(0, comma));
    field = comma == std::string_view::npos ? std::string_view{} : field.substr(comma + 1);
    if (const auto semi = member.find(';'); semi != std::string_view::npos) {
      member = trim(member.substr(0, semi));
    }
    const auto eq = member.find('=');
    if (member.empty() || eq == std::string_view::npos) {
      bad_digest("Content-Digest must be a list of alg=:base64: members (RFC 9530)");
    }
    const std::string_view key = member.substr(0, eq);
    const std::string_view value = member.substr(eq + 1);
    if (value.size() < 2 || value.front() != ':' || value.back() != ':') {
      bad_digest("Content-Digest values are byte sequences written :base64: (RFC 9530)");
    }
    if (key != "sha-256") {
      continue;  // other algorithms may be ignored (RFC 9530 §2)
    }
    const auto bytes = scanner::base64_decode(value.substr(1, value.size() - 2));
    if (!bytes || bytes->size() != 32) {
      bad_digest("Content-Digest sha-256 must be the base64 of 32 bytes");
    }
    out = scanner::to_hex(*bytes);
  }
  return out;
}

std::string normalise_sha256_hex(std::string_view text) {
  text = trim(text);
  std::string out;
  if (text.size() != 64) {
    throw http_error(http::status::bad_request, "malformed-digest", "X-Image-SHA256 must be 64 hex digits");
  }
  for (char c : text) {
    if (c >= 'A' && c <= 'F') {
      c = static_cast<char>(c - 'A' + 'a');
    }
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      throw http_error(http::status::bad_request, "malformed-digest", "X-Image-SHA256 must be 64 hex digits");
    }
    out += c;
  }
  return out;
}

spool_file::spool_file(std::filesystem::path path) : path_(std::move(path)) {
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd_ < 0) {
    throw std::system_error(errno, std::generic_category(), "cannot create spool file " + path_.string());
  }
}

spool_file::~spool_file() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
  if (!committed_) {
    std::error_code ec;
    std::filesystem::remove(path_, ec);
  }
}

void spool_file::write(const void* data, std::size_t size, boost::beast::error_code& ec) {
  const char* p = static_cast<const char*>(data);
  try {
    hash_.update(p, size);
  } catch (const std::exception&) {
    // The hash queue could not grow: an error for this upload (500), never
    // an exception through an I/O thread.
    ec = boost::beast::error_code(ENOMEM, boost::system::generic_category());
    return;
  }
  while (size > 0) {
    const ssize_t n = ::write(fd_, p, size);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      ec = boost::beast::error_code(errno, boost::system::generic_category());
      return;
    }
    p += n;
    size -= static_cast<std::size_t>(n);
    size_ += static_cast<std::uint64_t>(n);
  }
  ec = {};
  // Start write-back as the data arrives rather than all of it at the
  // fdatasync before the 202, which would otherwise take as long again as a
  // large upload. Failures here surface at that fdatasync.
  if (size_ - flushed_ >= write_behind_bytes) {
    ::sync_file_range(fd_, static_cast<off_t>(flushed_), static_cast<off_t>(size_ - flushed_), SYNC_FILE_RANGE_WRITE);
    flushed_ = size_;
  }
}

std::string spool_file::finish(boost::beast::error_code& ec) {
  ec = {};
  // The 202 promises the image is kept: make it durable before answering.
  if (::fdatasync(fd_) != 0) {
    ec = boost::beast::error_code(errno, boost::system::generic_category());
  }
  return hash_.hex_digest();
}

void spool_file::commit(const std::filesystem::path& final_path) {
  std::filesystem::rename(path_, final_path);
  path_ = final_path;
  committed_ = true;
}

}  // namespace borderscan::server
