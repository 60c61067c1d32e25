#pragma once
// Receiving an image: a spool file the server names, written as the body
// arrives and hashed (SHA-256) on the way, so memory stays flat whatever the
// size. The file is removed on destruction unless it was committed.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <cerrno>

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/optional.hpp>

namespace borderscan::server {

// SHA-256 of a stream, computed on a thread of its own once the stream passes
// one chunk, so hashing an upload overlaps receiving and writing it (SHA-256
// alone runs at about the speed of the disk). Memory is bounded: at most
// `max_queued` chunks wait, and update() blocks while they do.
class background_sha256 {
 public:
  explicit background_sha256(std::size_t chunk_bytes = 256 * 1024, std::size_t max_queued = 4);
  ~background_sha256();
  background_sha256(const background_sha256&) = delete;
  background_sha256& operator=(const background_sha256&) = delete;
  void update(const void* data, std::size_t size);
  std::string hex_digest();  // waits for the queue, finalises; call once

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// The sha-256 member of an RFC 9530 Content-Digest field, as lower-case hex;
// nullopt when the field names other algorithms only. Throws http_error 400
// when the field is malformed.
std::optional<std::string> content_digest_sha256(std::string_view field);
// X-Image-SHA256: 64 hex digits (either case) -> lower-case; throws 400.
std::string normalise_sha256_hex(std::string_view text);

class spool_file {
 public:
  // Creates `path` exclusively (0600). Throws std::system_error.
  explicit spool_file(std::filesystem::path path);
  ~spool_file();
  spool_file(const spool_file&) = delete;
  spool_file& operator=(const spool_file&) = delete;

  // ENOSPC and friends come back in ec; nothing throws on the I/O path.
  void write(const void* data, std::size_t size, boost::beast::error_code& ec);
  std::uint64_t size() const noexcept { return size_; }
  // Flushes to disk and returns the SHA-256 of everything written (hex).
  std::string finish(boost::beast::error_code& ec);
  // Renames into place; the file is then kept.
  void commit(const std::filesystem::path& final_path);
  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  bool committed_ = false;
  std::uint64_t size_ = 0;
  std::uint64_t flushed_ = 0;  // bytes handed to write-back so far
  background_sha256 hash_;
};

// A Beast body whose reader streams into a spool_file owned elsewhere.
struct spool_body {
  using value_type = spool_file*;

  class reader {
   public:
    template <bool IsRequest, class Fields>
    reader(boost::beast::http::header<IsRequest, Fields>&, value_type& body) : file_(body) {}
    void init(const boost::optional<std::uint64_t>&, boost::beast::error_code& ec) {
      ec = file_ != nullptr ? boost::beast::error_code{}
                            : boost::beast::error_code(EBADF, boost::system::generic_category());
    }
    template <class ConstBufferSequence>
    std::size_t put(const ConstBufferSequence& buffers, boost::beast::error_code& ec) {
      std::size_t n = 0;
      for (auto it = boost::asio::buffer_sequence_begin(buffers); it != boost::asio::buffer_sequence_end(buffers);
           ++it) {
        const boost::asio::const_buffer b = *it;
        file_->write(b.data(), b.size(), ec);
        if (ec) {
          return n;
        }
        n += b.size();
      }
      return n;
    }
    void finish(boost::beast::error_code& ec) { ec = {}; }

   private:
    value_type& file_;
  };
};

}  // namespace borderscan::server
