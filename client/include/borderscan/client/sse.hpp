#pragma once
// Server-Sent Events (the WHATWG "event stream" format) and a follower that
// keeps a stream going across dropped connections.

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "borderscan/client/http_client.hpp"

namespace borderscan::client {

struct sse_event {
  std::string type = "message";  // the `event:` field, "message" when none
  std::string data;              // the `data:` lines joined with '\n'
  std::string id;                // the last `id:` seen on the stream up to this event
};

// Incremental parser: bytes in any pieces, events out as each blank line ends
// one. Lines end in LF, CRLF or CR; comments (':') are skipped; an `id:`
// persists for later events, as the format says. Not thread-safe.
class sse_parser {
 public:
  using dispatch_fn = std::function<void(const sse_event&)>;

  // Throws client_error(kind::network) for a line longer than max_line_bytes
  // (a stream that never ends a line is not an event stream).
  void feed(std::string_view bytes, const dispatch_fn& dispatch);
  // The connection ended: a half-received event is dropped (the server sends
  // it again after a reconnect); the last id and retry stay.
  void reset_connection();

  // The id in force when the last event was completed (what a reconnection
  // sends as Last-Event-ID).
  const std::string& last_event_id() const noexcept { return last_id_; }
  // The server's `retry:` (reconnection delay), when it sent one.
  std::optional<std::chrono::milliseconds> retry() const noexcept { return retry_; }

  static constexpr std::size_t max_line_bytes = 4 << 20;
  // Nor one event's data past this, however it is split into lines.
  static constexpr std::size_t max_event_bytes = 16 << 20;

 private:
  void line(std::string_view text, const dispatch_fn& dispatch);

  std::string partial_;    // a line not yet ended
  bool after_cr_ = false;  // the last byte was CR: an LF next belongs to it
  bool at_start_ = true;   // a byte-order mark may come first
  std::string data_;
  std::string type_;
  std::string id_buffer_;  // the last `id:` field read
  std::string last_id_;    // the id of the last complete event
  std::optional<std::chrono::milliseconds> retry_;
};

struct follow_options {
  // Reconnection attempts in a row without an event before giving up: with
  // the delays below about 70 s, longer than a daemon restart takes (its
  // shutdown grace is 30 s by default), after which the scan goes on.
  unsigned max_retries = 12;
  // Wait before the first retry (or the server's `retry:`); doubles per
  // failed attempt up to max_delay.
  std::chrono::milliseconds first_delay = std::chrono::milliseconds(500);
  std::chrono::milliseconds max_delay = std::chrono::seconds(8);
  // Told before each wait: why the stream broke, the attempt number, the wait.
  std::function<void(const std::string& why, unsigned attempt, std::chrono::milliseconds delay)> on_retry;
};

// GETs the event stream at `target` and hands each event to `on_event` until
// it returns false. A connection that breaks or ends early (or a 502/503/504)
// is retried with `Last-Event-ID` set to the last id seen, so the server can
// skip what was delivered. Throws client_error for an HTTP refusal (wrong
// token, unknown scan) and when the retries are used up.
void follow_events(http_client& client, std::string_view target, const std::function<bool(const sse_event&)>& on_event,
                   const follow_options& options = {});

}  // namespace borderscan::client
