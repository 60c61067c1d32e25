#include "borderscan/client/sse.hpp"

#include <algorithm>
#include <charconv>
#include <thread>

namespace borderscan::client {

void sse_parser::feed(std::string_view bytes, const dispatch_fn& dispatch) {
  if (at_start_ && !bytes.empty()) {
    // A UTF-8 byte-order mark may open the stream; it is not part of a field.
    // (Split across pieces it would be kept: servers send it whole or not at all.)
    if (bytes.starts_with("\xEF\xBB\xBF")) {
      bytes.remove_prefix(3);
    }
    at_start_ = false;
  }
  std::size_t begin = 0;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    const char c = bytes[i];
    if (c != '\n' && c != '\r') {
      continue;
    }
    if (c == '\n' && after_cr_ && i == begin && partial_.empty()) {
      // The LF of a CRLF whose CR ended the previous line.
      after_cr_ = false;
      begin = i + 1;
      continue;
    }
    after_cr_ = c == '\r';
    if (partial_.empty()) {
      line(bytes.substr(begin, i - begin), dispatch);
    } else {
      partial_.append(bytes.substr(begin, i - begin));
      const std::string whole = std::move(partial_);
      partial_.clear();
      line(whole, dispatch);
    }
    begin = i + 1;
  }
  if (begin < bytes.size()) {
    after_cr_ = false;
    if (partial_.size() + (bytes.size() - begin) > max_line_bytes) {
      throw client_error(client_error::kind::network,
                         "the event stream sent a line longer than " + std::to_string(max_line_bytes >> 20) + " MiB");
    }
    partial_.append(bytes.substr(begin));
  }
}

void sse_parser::line(std::string_view text, const dispatch_fn& dispatch) {
  if (text.empty()) {
    // The id counts from here, when its event is complete: a reconnection
    // after half an event must not tell the server it was received.
    last_id_ = id_buffer_;
    if (data_.empty()) {
      type_.clear();
      return;
    }
    sse_event event;
    event.type = type_.empty() ? "message" : type_;
    event.data = std::move(data_);
    event.data.pop_back();  // the '\n' after the last data line
    event.id = last_id_;
    data_.clear();
    type_.clear();
    dispatch(event);
    return;
  }
  if (text.front() == ':') {
    return;  // a comment (the server's keep-alive)
  }
  const auto colon = text.find(':');
  const std::string_view field = text.substr(0, colon);
  std::string_view value = colon == std::string_view::npos ? std::string_view() : text.substr(colon + 1);
  if (value.starts_with(' ')) {
    value.remove_prefix(1);
  }
  if (field == "event") {
    type_ = std::string(value);
  } else if (field == "data") {
    if (data_.size() + value.size() + 1 > max_event_bytes) {
      throw client_error(client_error::kind::network, "the event stream sent an event larger than " +
                                                          std::to_string(max_event_bytes >> 20) + " MiB");
    }
    data_.append(value);
    data_.push_back('\n');
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) {
      id_buffer_ = std::string(value);
    }
  } else if (field == "retry") {
    if (!value.empty() && std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      unsigned long long ms = 0;
      if (std::from_chars(value.data(), value.data() + value.size(), ms).ec == std::errc()) {
        retry_ = std::chrono::milliseconds(std::min<unsigned long long>(ms, 3'600'000));
      }
    }
  }
  // Other fields are ignored, as the format says.
}

void sse_parser::reset_connection() {
  partial_.clear();
  after_cr_ = false;
  at_start_ = true;
  data_.clear();
  type_.clear();
  id_buffer_ = last_id_;
}

void follow_events(http_client& client, std::string_view target, const std::function<bool(const sse_event&)>& on_event,
                   const follow_options& options) {
  sse_parser parser;
  bool finished = false;
  unsigned failures = 0;
  for (;;) {
    header_list headers = {{"Accept", "text/event-stream"}, {"Cache-Control", "no-cache"}};
    if (!parser.last_event_id().empty()) {
      headers.emplace_back("Last-Event-ID", parser.last_event_id());
    }
    bool got_event = false;
    std::string why;
    try {
      const body_sink sink = [&](std::string_view piece) {
        parser.feed(piece, [&](const sse_event& event) {
          if (finished) {
            return;
          }
          got_event = true;
          finished = !on_event(event);
        });
        return !finished;
      };
      const response res = client.fetch(boost::beast::http::verb::get, target, headers, sink);
      if (finished) {
        return;
      }
      if (res.status == 502 || res.status == 503 || res.status == 504) {
        why = http_failure(res.status, res.reason, res.header("Content-Type"), res.body).what();
      } else {
        expect_success(res);
        why = "the event stream ended early";
      }
    } catch (const client_error& e) {
      if (e.error_kind() != client_error::kind::network || finished) {
        throw;
      }
      why = e.what();
    }
    parser.reset_connection();
    if (got_event) {
      failures = 0;
    }
    ++failures;
    if (failures > options.max_retries) {
      throw client_error(client_error::kind::network,
                         why + " (gave up after " + std::to_string(options.max_retries) + " reconnections)");
    }
    auto delay = parser.retry().value_or(options.first_delay);
    for (unsigned i = 1; i < failures && delay < options.max_delay; ++i) {
      delay *= 2;
    }
    delay = std::min(delay, options.max_delay);
    if (options.on_retry) {
      options.on_retry(why, failures, delay);
    }
    std::this_thread::sleep_for(delay);
  }
}

}  // namespace borderscan::client
