#pragma once
// Responses whose body is written piece by piece after the head: a
// body_stream (Content-Length when its size is known, else chunked) or
// Server-Sent Events (chunked, one chunk per event). Part of a session
// (http_server.cpp). Each piece is fetched on the blocking pool (a read may
// wait for the disk or the store) and written on the session's strand; the
// next one is fetched only once that write completed, so a slow client holds
// at most one piece (64 KiB) in memory. It ends by calling the session back:
// on_write once the whole message is out, or do_close when the body cannot be
// finished (a failed read or write: the head is out, so the connection ends
// and the client sees a short body). A server stop ends a stream at a piece
// boundary, never mid-write: a cut TLS record would look like a truncated
// stream to the client.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <variant>

#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include "borderscan/server/response.hpp"

namespace borderscan::server::body_pieces {

// What follows the piece just fetched.
enum class after { more, wait, end };

// Where pieces come from. fetch() runs on the blocking pool, one call at a
// time; it replaces `out` with the next piece (possibly empty) and may throw.
class source {
 public:
  virtual ~source() = default;
  virtual after fetch(std::string& out) = 0;
};

class stream_source final : public source {
 public:
  explicit stream_source(std::unique_ptr<body_stream> stream) : stream_(std::move(stream)), left_(stream_->size()) {}

  after fetch(std::string& out) override {
    std::size_t want = piece_bytes;
    if (left_) {
      want = static_cast<std::size_t>(std::min<std::uint64_t>(want, *left_));
    }
    out.resize(want);
    const std::size_t n = want == 0 ? 0 : stream_->read(out);
    out.resize(n);
    if (!left_) {
      return n == 0 ? after::end : after::more;
    }
    if (n == 0 && *left_ > 0) {
      throw std::system_error(EIO, std::generic_category(),
                              "the body ended " + std::to_string(*left_) + " bytes short of its size");
    }
    *left_ -= n;
    return *left_ == 0 ? after::end : after::more;
  }

 private:
  static constexpr std::size_t piece_bytes = 64 * 1024;
  std::unique_ptr<body_stream> stream_;
  std::optional<std::uint64_t> left_;  // bytes still to send, when the size is known
};

class event_stream_source final : public source {
 public:
  explicit event_stream_source(std::shared_ptr<event_source> events) : events_(std::move(events)) {}

  after fetch(std::string& out) override {
    bool done = false;
    out = events_->poll(done);
    const auto now = std::chrono::steady_clock::now();
    if (out.empty() && now - last_event_ > std::chrono::seconds(15)) {
      out = ": keep-alive\n\n";  // lets proxies and clients see the stream is alive
    }
    if (!out.empty()) {
      last_event_ = now;
    }
    return done ? after::end : after::wait;
  }

 private:
  std::shared_ptr<event_source> events_;
  std::chrono::steady_clock::time_point last_event_ = std::chrono::steady_clock::now();
};

}  // namespace borderscan::server::body_pieces

namespace borderscan::server {

template <class Session>
class body_writer {
 public:
  explicit body_writer(Session& session) : session_(session) {}

  // A body is being written (the session does not cancel I/O mid-body).
  bool active() const noexcept { return source_ != nullptr; }

  // Writes the head of `res`, then its stream or events.
  void start(response res) {
    head_.emplace(res.message.result(), 11);
    for (const auto& field : res.message) {
      head_->set(field.name_string(), field.value());
    }
    session_.stamp(*head_);
    std::optional<std::uint64_t> size;
    if (res.stream) {
      size = res.stream->size();
      source_ = std::make_unique<body_pieces::stream_source>(std::move(res.stream));
    } else {
      source_ = std::make_unique<body_pieces::event_stream_source>(std::move(res.events));
    }
    if (size) {
      head_->content_length(*size);
    } else {
      head_->chunked(true);
    }
    serializer_.emplace(*head_);
    session_.log_request(head_->result_int(), size.value_or(0), res.route);
    session_.lowest().expires_after(session_.settings().read_timeout());
    http::async_write_header(session_.stream(), *serializer_,
                             [this, self = session_.shared_from_this()](boost::beast::error_code ec, std::size_t) {
                               if (ec) {
                                 return finish_with_error(ec);
                               }
                               fetch();
                             });
  }

 private:
  struct fetched {
    body_pieces::after next = body_pieces::after::end;
    std::string error;  // set: the source failed
  };

  void fetch() {
    if (session_.stopping()) {
      // close() cancelled nothing while a body was out: end here, after a
      // whole piece, with a close_notify on TLS.
      return finish_with_error({});
    }
    session_.off_io(
        [source = source_.get(), piece = &piece_] {
          fetched f;
          try {
            f.next = source->fetch(*piece);
          } catch (const std::exception& e) {
            f.error = e.what();
          } catch (...) {
            f.error = "unknown exception";
          }
          return f;
        },
        [this](fetched f) { on_fetched(std::move(f)); });
  }

  void on_fetched(fetched f) {
    if (!f.error.empty()) {
      spdlog::error("request={} the response body failed after {} bytes: {}", session_.request_id(), sent_, f.error);
      return finish_with_error({});
    }
    if (piece_.empty()) {
      return then(f.next);
    }
    sent_ += piece_.size();
    session_.lowest().expires_after(session_.settings().read_timeout());
    const auto on_written = [this, self = session_.shared_from_this(), next = f.next](boost::beast::error_code ec,
                                                                                      std::size_t) {
      if (ec) {
        return finish_with_error(ec);
      }
      then(next);
    };
    if (head_->chunked()) {
      boost::asio::async_write(session_.stream(), http::make_chunk(boost::asio::buffer(piece_)), on_written);
    } else {
      boost::asio::async_write(session_.stream(), boost::asio::buffer(piece_), on_written);
    }
  }

  void then(body_pieces::after next) {
    if (next == body_pieces::after::more) {
      return fetch();
    }
    if (next == body_pieces::after::end) {
      return finish();
    }
    if (session_.stopping()) {
      return finish_with_error({});
    }
    // close() cancels this timer.
    auto& timer = session_.timer();
    timer.expires_after(session_.settings().event_interval());
    timer.async_wait([this, self = session_.shared_from_this()](boost::beast::error_code ec) {
      if (!ec) {
        fetch();
      } else if (session_.stopping()) {
        finish_with_error(ec);
      }
    });
  }

  void finish() {
    if (!head_->chunked()) {
      return done({});
    }
    session_.lowest().expires_after(session_.settings().read_timeout());
    boost::asio::async_write(
        session_.stream(), http::make_chunk_last(),
        [this, self = session_.shared_from_this()](boost::beast::error_code ec, std::size_t) { done(ec); });
  }

  void release() {
    source_.reset();
    serializer_.reset();
    head_.reset();
    piece_ = std::string();
    sent_ = 0;
  }

  // The whole message is out (or its last write failed): the session goes on.
  void done(boost::beast::error_code ec) {
    release();
    session_.on_write(ec, 0);
  }

  // The message cannot be finished: the connection ends.
  void finish_with_error(boost::beast::error_code ec) {
    release();
    session_.do_close(ec);
  }

  Session& session_;
  std::unique_ptr<body_pieces::source> source_;
  std::optional<http::response<http::empty_body>> head_;
  std::optional<http::response_serializer<http::empty_body>> serializer_;
  std::string piece_;  // the piece being fetched or written
  std::uint64_t sent_ = 0;
};

}  // namespace borderscan::server
