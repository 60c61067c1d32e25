#pragma once
// The body of an upload (POST /api/v1/scans), streamed into its spool file as
// it arrives, so memory stays flat whatever the image size. A body of known
// length is plain bytes, read straight from the stream in 1 MiB pieces; a
// chunked one goes through Beast's parser. Part of a session
// (http_server.cpp): it reads through the session's stream and buffer, and
// ends by calling the session back once, with the upload:
//   on_upload_received   the whole body is in the file (finish it, answer);
//   on_upload_failed     too large, a malformed chunked body, or the spool
//                        could not take it (answer 413 / 400 / 507; the rest
//                        of the body is unread);
//   on_upload_too_slow   under http.min_upload_bytes_per_second over a rate
//                        window, or past the upload's deadline (answer 408);
//   on_upload_abandoned  the client left or went silent mid-body.
// A trickling client would otherwise hold its queue slot as long as it keeps
// a byte coming before each read timeout: the rate is measured over windows
// of http.upload_rate_window_seconds (the first is the grace period), and a
// body of known length must be whole within window + length / rate.
// The spool writes stay on the I/O thread: they land in the page cache
// (write-back starts behind them), and the waits for the disk (fdatasync)
// and the store happen in finish_upload, on the blocking pool.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/fmt/fmt.h>

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
    window_start_ = {};
    past_deadline_ = false;
    length_ = head.content_length() ? std::optional<std::uint64_t>(*head.content_length()) : std::nullopt;
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
  using clock = std::chrono::steady_clock;

  // The body begins: the first rate window (the grace period) and the
  // deadline start now.
  void start_clock() {
    const auto& s = session_.settings();
    window_start_ = clock::now();
    window_bytes_ = 0;
    deadline_ = clock::time_point::max();
    if (s.min_upload_bytes_per_second != 0) {
      const std::uint64_t size = length_.value_or(session_.handler().max_image_bytes());
      // At most ten years: past that, no sum of time points may overflow.
      const auto allowed = std::chrono::seconds(
          std::min<std::uint64_t>(size / s.min_upload_bytes_per_second + 1, 10ULL * 365 * 24 * 3600));
      deadline_ = window_start_ + s.upload_rate_window() + allowed;
      // The stream's own expiry would close the socket, leaving no way to
      // answer: the session's timer cancels the read instead.
      session_.timer().expires_at(deadline_);
      session_.timer().async_wait([this, self = session_.shared_from_this()](boost::beast::error_code ec) {
        // A handler queued just before its upload ended finds none, or the next one's later deadline.
        if (!ec && upload_ && clock::now() >= deadline_) {
          past_deadline_ = true;
          session_.lowest().cancel();
        }
      });
    }
  }

  // Before each read: read_timeout of silence at most.
  void arm() { session_.lowest().expires_after(session_.settings().read_timeout()); }

  // After each read: whether the window that just closed (if one did)
  // brought the minimum rate; if not, the upload is refused (408).
  bool keeps_pace() {
    const auto& s = session_.settings();
    const auto now = clock::now();
    if (s.min_upload_bytes_per_second == 0 || now - window_start_ < s.upload_rate_window()) {
      return true;
    }
    const std::uint64_t got = upload_->file().size() - window_bytes_;
    const double seconds = std::chrono::duration<double>(now - window_start_).count();
    if (static_cast<double>(got) < static_cast<double>(s.min_upload_bytes_per_second) * seconds) {
      too_slow(
          fmt::format("the upload brought {} bytes in the last {:.1f} s, under the minimum of {} bytes per "
                      "second (http.min_upload_bytes_per_second); nothing was kept",
                      got, seconds, s.min_upload_bytes_per_second));
      return false;
    }
    window_start_ = now;
    window_bytes_ = upload_->file().size();
    return true;
  }

  // A read that failed: cancelled at the deadline it is too slow (408), else
  // the client left or went silent for read_timeout (abandoned).
  void on_read_error(boost::beast::error_code ec) {
    if (!past_deadline_ || ec != boost::asio::error::operation_aborted || session_.stopping()) {
      return abandon(ec);
    }
    const auto& s = session_.settings();
    too_slow(
        fmt::format("the upload was not whole within its deadline of {} s ({} s of grace plus the size at {} "
                    "bytes per second, http.min_upload_bytes_per_second); {} bytes arrived; nothing was kept",
                    std::chrono::duration_cast<std::chrono::seconds>(deadline_ - window_start_).count(),
                    s.upload_rate_window_seconds, s.min_upload_bytes_per_second, upload_->file().size()));
  }

  void do_read() {
    if (window_start_ == clock::time_point{}) {
      start_clock();
    }
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
    // The silence deadline restarts with every read; the rate is checked
    // after it.
    arm();
    http::async_read_some(
        session_.stream(), session_.buffer(), *parser_,
        [this, self = session_.shared_from_this()](boost::beast::error_code ec, std::size_t) { on_read_chunked(ec); });
  }

  void read_raw() {
    if (remaining_ == 0) {
      return received();
    }
    arm();
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(raw_read_bytes, remaining_));
    session_.stream().async_read_some(
        boost::asio::buffer(raw_buffer_.get(), want),
        [this, self = session_.shared_from_this()](boost::beast::error_code ec, std::size_t n) {
          if (!write(raw_buffer_.get(), n)) {
            return;
          }
          if (ec) {
            return on_read_error(ec);
          }
          if (remaining_ == 0 || keeps_pace()) {
            read_raw();
          }
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
      fail(ec);
      return false;
    }
    return true;
  }

  void on_read_chunked(boost::beast::error_code ec) {
    // A bad chunk size or chunk framing is the client's error, answered 400;
    // a body cut short (the client left) is not.
    const bool malformed = ec.category() == http::make_error_code(http::error::bad_chunk).category() &&
                           ec != http::error::end_of_stream && ec != http::error::partial_message;
    if (ec == http::error::body_limit || ec.category() == boost::system::generic_category() || malformed) {
      return fail(ec);
    }
    if (ec) {
      return on_read_error(ec);
    }
    if (!parser_->is_done()) {
      if (keeps_pace()) {
        do_read();
      }
      return;
    }
    received();
  }

  void fail(boost::beast::error_code ec) {
    session_.timer().cancel();
    raw_buffer_.reset();
    parser_.reset();
    session_.on_upload_failed(std::move(upload_), ec);
  }

  void too_slow(const std::string& detail) {
    session_.timer().cancel();
    raw_buffer_.reset();
    parser_.reset();
    session_.on_upload_too_slow(std::move(upload_), detail);
  }

  void received() {
    session_.timer().cancel();
    raw_buffer_.reset();
    parser_.reset();
    session_.on_upload_received(std::move(upload_));
  }

  void abandon(boost::beast::error_code ec) {
    session_.timer().cancel();
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
  std::optional<std::uint64_t> length_;  // Content-Length, when declared
  clock::time_point window_start_{};     // of the current rate window; unset until the body begins
  std::uint64_t window_bytes_ = 0;       // file size when the window began
  clock::time_point deadline_{};
  bool past_deadline_ = false;  // the deadline cancelled the read
};

}  // namespace borderscan::server
