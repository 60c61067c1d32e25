#pragma once
// What the API hands the transport: a whole response, or a head followed by
// a body written piece by piece (body_stream) or by Server-Sent Events
// (event_source). The session (http_server.cpp) writes it; the router and
// tests build it.

#include <memory>
#include <string>

#include <boost/beast/http.hpp>

#include "borderscan/server/body_stream.hpp"
#include "borderscan/server/problem.hpp"

namespace borderscan::server {

using request = http::request<http::string_body>;
using request_header = http::request_header<>;

// A Server-Sent Events stream, polled by the session on the blocking pool
// (a poll may read the store), never by two threads at once.
class event_source {
 public:
  virtual ~event_source() = default;
  // Event text to send now (may be empty); sets `done` after the last event.
  virtual std::string poll(bool& done) = 0;
};

struct response {
  // The head, and the body unless `stream` or `events` is set (then
  // message.body() is ignored; the session sets the framing).
  response_message message;
  std::string route = "unmatched";       // metrics label: the route pattern
  std::shared_ptr<event_source> events;  // set: stream events after the head
  std::unique_ptr<body_stream> stream;   // set: write this body piece by piece
};

}  // namespace borderscan::server
