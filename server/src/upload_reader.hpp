#pragma once
// The body of an upload (POST /api/v1/scans), streamed into its spool file as
// it arrives, so memory stays flat whatever the image size. A body of known
// length is plain bytes, read straight from the stream in 1 MiB pieces; a
// chunked one goes through Beast's parser. Part of a session
// (http_server.cpp): it reads through the session's stream and buffer, and
// ends by calling the session back once, with the upload:
//   on_upload_received   the whole body is in the file (finish it, answer);
//   on_upload_failed     too large, or the spool could not take it (answer
//                        413 / 507; the rest of the body is unread);
//   on_upload_abandoned  the client left or went silent mid-body.
// The spool writes stay on the I/O thread: they land in the page cache
// (write-back starts behind them), and the waits for the disk (fdatasync)
// and the store happen in finish_upload, on the blocking pool.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "borderscan/server/router.hpp"
#include "borderscan/server/upload.hpp"

namespace borderscan::server {

template <class Session>
class upload_reader {
 public:
  explicit upload_reader(Session& session) : session_(session) {}

  // Reads the body that follows the head in `head` into `up`'s spool file.
  void start(http::request_parser<http::empty_body>& head, std::unique_ptr<upload> up) {
    upload_ = std::move(up);
    const bool expects_continue = boost::beast::iequals(head.get()[http::field::expect], "100-continue");
    if (const auto length = head.content_length(); length && !head.chunked()) {
      // Beast's parser reads at most 64 KiB at a time with a handler and a
      // timer each, which costs a multi-GiB upload about a third of its speed.
      remaining_ = *length;
      raw_buffer_ = std::make_unique<char[]>(raw_read_bytes);
    } else {
      parser_.emplace(std::move(head));
      parser_->body_limit(session_.handler().max_image_bytes());
      parser_->get().body() = &upload_->file();
      // Beast reads max(512, free capacity) per read_some: without room, a
      // multi-GiB body arrives in 512-byte reads (0.06x the speed of cat).
      session_.buffer().reserve(session_.buffer().max_size());
    }
    if (!expects_continue) {
      return do_read();
    }
    // curl and kiosks wait for this before sending a large body.
    continue_ = "HTTP/1.1 100 Continue\r\n\r\n";
    session_.lowest().expires_after(session_.settings().read_timeout());
    boost::asio::async_write(session_.stream(), boost::asio::buffer(continue_),
                             [this, self = session_.shared_from_this()](boost::beast::error_code ec, std::size_t) {
                               if (ec) {
                                 return abandon(ec);
                               }
                               do_read();
                             });
  }

 private:
  void do_read() {
    if (raw_buffer_) {
      // Body bytes that arrived with the head go first.
      auto& buffer = session_.buffer();
      const auto early = std::min<std::uint64_t>(buffer.size(), remaining_);
      const bool written = write(static_cast<const char*>(buffer.data().data()), early);
      buffer.consume(early);
      if (written) {
        read_raw();
      }
      return;
    }
    // The deadline restarts with every read: a slow but steady client is
    // fine, a silent one is cut off after read_timeout.
    session_.lowest().expires_after(session_.settings().read_timeout());
    http::async_read_some(
        session_.stream(), session_.buffer(), *parser_,
        [this, self = session_.shared_from_this()](boost::beast::error_code ec, std::size_t) { on_read_chunked(ec); });
  }

  void read_raw() {
    if (remaining_ == 0) {
      return received();
    }
    session_.lowest().expires_after(session_.settings().read_timeout());
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(raw_read_bytes, remaining_));
    session_.stream().async_read_some(
        boost::asio::buffer(raw_buffer_.get(), want),
        [this, self = session_.shared_from_this()](boost::beast::error_code ec, std::size_t n) {
          if (!write(raw_buffer_.get(), n)) {
            return;
          }
          if (ec) {
            return abandon(ec);  // the client left mid-body
          }
          read_raw();
        });
  }

  // Appends to the spool file; on a write error hands the upload back as
  // failed (507) and returns false.
  bool write(const char* data, std::size_t size) {
    if (size == 0) {
      return true;
    }
    boost::beast::error_code ec;
    upload_->file().write(data, size, ec);
    remaining_ -= size;
    if (ec) {
      raw_buffer_.reset();
      session_.on_upload_failed(std::move(upload_), ec);
      return false;
    }
    return true;
  }

  void on_read_chunked(boost::beast::error_code ec) {
    if (ec == http::error::body_limit || ec.category() == boost::system::generic_category()) {
      parser_.reset();
      return session_.on_upload_failed(std::move(upload_), ec);
    }
    if (ec) {
      return abandon(ec);
    }
    if (!parser_->is_done()) {
      return do_read();
    }
    received();
  }

  void received() {
    raw_buffer_.reset();
    parser_.reset();
    session_.on_upload_received(std::move(upload_));
  }

  void abandon(boost::beast::error_code ec) {
    raw_buffer_.reset();
    parser_.reset();
    session_.on_upload_abandoned(std::move(upload_), ec);
  }

  // One read of a body of known length; held only while the body is read.
  static constexpr std::size_t raw_read_bytes = 1 << 20;

  Session& session_;
  std::unique_ptr<upload> upload_;
  std::optional<http::request_parser<spool_body>> parser_;  // set while a chunked body is read
  std::unique_ptr<char[]> raw_buffer_;                      // set while a body of known length is read
  std::uint64_t remaining_ = 0;
  std::string continue_;
};

}  // namespace borderscan::server
