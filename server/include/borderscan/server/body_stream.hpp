#pragma once
// Response bodies produced piece by piece while they are written, so that a
// large body (a report file, the rows of a page) never sits whole in memory.
// The session writes the head first (Content-Length when size() is known,
// else Transfer-Encoding: chunked), then asks read() for pieces of up to
// 64 KiB, one at a time: the next piece is read only once the previous one
// was written, so a slow client holds at most one piece. read() runs on the
// blocking pool (it may wait for the disk or a store) and may throw; the head
// is sent by then, so the connection is closed and the client sees a short
// body. One thread at a time uses an object.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string>

namespace borderscan::server {

class body_stream {
 public:
  virtual ~body_stream() = default;
  // The length of the whole body when known before the first read.
  virtual std::optional<std::uint64_t> size() const = 0;
  // Copies the next bytes into `out` (out is never empty); 0 is the end.
  virtual std::size_t read(std::span<char> out) = 0;
};

// A file, opened here, when the response is built, so that a missing or
// unreadable file is an error response instead of a head with no body. The
// size at opening is the size sent; a file that shrinks while it is sent
// fails the read (and so the response), one that grows is cut at that size.
class file_body_stream final : public body_stream {
 public:
  // Throws std::system_error with the errno (ENOENT for a missing file).
  explicit file_body_stream(const std::filesystem::path& path);
  ~file_body_stream() override;
  file_body_stream(const file_body_stream&) = delete;
  file_body_stream& operator=(const file_body_stream&) = delete;

  std::optional<std::uint64_t> size() const override { return size_; }
  // Throws std::system_error on a read error or a file shorter than its size.
  std::size_t read(std::span<char> out) override;

 private:
  std::filesystem::path path_;  // for messages
  int fd_ = -1;
  std::uint64_t size_ = 0;
  std::uint64_t left_ = 0;
};

// A body of unknown length, sent chunked, made of the pieces `next` returns
// one call at a time (say the rows of a page, fetched from the store in
// batches); an empty piece is the end. Only the current piece is held.
class chunked_body_stream final : public body_stream {
 public:
  using generator = std::function<std::string()>;
  explicit chunked_body_stream(generator next) : next_(std::move(next)) {}

  std::optional<std::uint64_t> size() const override { return std::nullopt; }
  std::size_t read(std::span<char> out) override;

 private:
  generator next_;
  std::string piece_;
  std::size_t offset_ = 0;
  bool ended_ = false;
};

}  // namespace borderscan::server
