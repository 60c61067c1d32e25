// Fuzz target: bytes as what a client sends on one connection, taken as the
// daemon's session takes them (server/src/http_server.cpp, upload_reader.hpp)
// but without a socket: Beast's request parser with the daemon's limits reads
// a head; an upload's body streams into its spool file, any other body is
// read whole; the router answers. Up to four pipelined requests per input.
// Every answer must be well-formed: a status the API uses, never a 500 (an
// exception the API did not expect), problem+json for every error, JSON
// bodies that parse, header values that cannot split the response, and a
// message Beast can serialize. The daemon's state (a real SQLite store with
// one stored, signed report, tokens of each role, the console's files) is
// made afresh after any request that may have changed it, so that an input
// replays the same way alone and within a run.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <variant>

#include <boost/asio/buffer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "borderscan/scanner/report_file.hpp"
#include "borderscan/server/config.hpp"
#include "borderscan/server/upload.hpp"
#include "fuzz_daemon.hpp"

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace sv = borderscan::server;
using borderscan::fuzz::daemon_parts;

const sv::http_config daemon_http;  // the daemon's default limits

std::string read_text(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  BORDERSCAN_FUZZ_CHECK(in.good() || in.eof(), "reading " + file.string());
  return out.str();
}

// A fresh daemon with one done scan whose report the GET routes can serve.
std::unique_ptr<daemon_parts> fresh_daemon() {
  static const std::string report = read_text(BORDERSCAN_FUZZ_SEED_REPORT);
  static const borderscan::scanner::report head = [] {
    std::istringstream in(report);
    return borderscan::scanner::read_report(in, borderscan::scanner::severity::medium, [](auto&, auto&) {}).head;
  }();
  auto d = std::make_unique<daemon_parts>();
  d->store_report(head.scan_id, report, head.image.sha256, head.ruleset.digest);
  return d;
}

std::string show(const sv::response_message& m) {
  std::ostringstream out;
  out << m.base() << m.body().substr(0, 2000);
  return out.str();
}

void check_json_problem(const sv::response_message& m) {
  BORDERSCAN_FUZZ_CHECK(m[http::field::content_type] == "application/problem+json",
                        "an error is problem+json:\n" + show(m));
  const auto j = nlohmann::json::parse(m.body(), nullptr, false);
  BORDERSCAN_FUZZ_CHECK(j.is_object() && j.contains("type") && j.contains("title") && j.contains("detail"),
                        "a problem has type, title and detail:\n" + show(m));
  BORDERSCAN_FUZZ_CHECK(j.value("status", 0U) == m.result_int(), "a problem's status is the response's:\n" + show(m));
}

void check_response(sv::response& r) {
  auto& m = r.message;
  const unsigned status = m.result_int();
  BORDERSCAN_FUZZ_CHECK(status >= 200 && status <= 599, "a final status:\n" + show(m));
  BORDERSCAN_FUZZ_CHECK(status != 500, "no internal error:\n" + show(m));
  for (const auto& field : m.base()) {
    const std::string_view value = field.value();
    BORDERSCAN_FUZZ_CHECK(value.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos,
                          "a header value cannot split the response:\n" + show(m));
  }
  if (status >= 400) {
    check_json_problem(m);
  } else if (!r.stream && !r.events && m[http::field::content_type].starts_with("application/json")) {
    BORDERSCAN_FUZZ_CHECK(!nlohmann::json::parse(m.body(), nullptr, false).is_discarded(),
                          "a JSON body parses:\n" + show(m));
  }
  if (r.stream) {
    std::array<char, 64 * 1024> piece{};
    while (r.stream->read(piece) > 0) {
    }
  }
  if (r.events) {
    bool done = false;
    (void)r.events->poll(done);
  }
  if (!r.stream && !r.events) {
    m.prepare_payload();
    std::ostringstream wire;
    wire << m;
    BORDERSCAN_FUZZ_CHECK(wire.str().starts_with("HTTP/1."), "the response serializes:\n" + show(m));
  }
}

// What happened to one request on the connection.
enum class next { read_another, connection_ends };

struct connection {
  daemon_parts& d;
  std::string_view rest;  // bytes not yet read
  bool state_changed = false;

  // A problem the session itself sends (head or body unreadable).
  next session_problem(http::status status, std::string_view code, const std::string& detail) {
    sv::response r;
    r.message = sv::make_problem(status, code, detail, "fuzz");
    check_response(r);
    return next::connection_ends;
  }

  next answered(sv::response r, bool keep_alive, http::verb method, std::string_view target) {
    if (borderscan::fuzz::tracing()) {
      std::fprintf(stderr, "  %s %.*s -> %u\n", std::string(http::to_string(method)).c_str(),
                   static_cast<int>(target.size()), target.data(), r.message.result_int());
    }
    check_response(r);
    if (method != http::verb::get && method != http::verb::head && r.message.result_int() < 400) {
      state_changed = true;
    }
    return keep_alive && r.message.keep_alive() ? next::read_another : next::connection_ends;
  }

  template <class Parser>
  std::size_t put(Parser& parser, beast::error_code& ec) {
    const std::size_t used = parser.put(boost::asio::buffer(rest.data(), rest.size()), ec);
    rest.remove_prefix(used);
    return used;
  }

  next serve_one() {
    http::request_parser<http::empty_body> head;
    head.header_limit(daemon_http.header_limit_bytes);
    head.body_limit(boost::none);
    beast::error_code ec;
    put(head, ec);
    if (ec == http::error::need_more) {
      return next::connection_ends;  // the client left mid-head: nothing to answer
    }
    if (ec == http::error::header_limit) {
      return session_problem(http::status::request_header_fields_too_large, "header-too-large", "too large");
    }
    if (ec) {
      return session_problem(http::status::bad_request, "malformed-request", "malformed: " + ec.message());
    }
    const sv::route_info* route = d.routes.route_of(head.get());
    if (route != nullptr && route->streamed_upload) {
      return upload(head);
    }
    http::request_parser<http::string_body> body(std::move(head));
    body.body_limit(daemon_http.body_limit_bytes);
    while (!body.is_done()) {
      const std::size_t used = put(body, ec);
      if (ec == http::error::need_more && used > 0) {
        continue;
      }
      if (ec == http::error::need_more || (!ec && used == 0)) {
        // All the input is in: the client closed mid-body, as the session's read then sees it.
        body.put_eof(ec);
        if (!ec && !body.is_done()) {
          ec = http::error::partial_message;
        }
      }
      if (ec == http::error::body_limit) {
        return session_problem(http::status::payload_too_large, "too-large", "too large");
      }
      if (ec) {
        return session_problem(http::status::bad_request, "malformed-request", "malformed: " + ec.message());
      }
    }
    sv::request req = body.release();
    const bool keep_alive = req.keep_alive();
    const auto method = req.method();
    return answered(d.routes.handle(req, {"fuzz", "127.0.0.1:1"}), keep_alive, method, req.target());
  }

  // As upload_reader: a body of known length is copied straight into the
  // spool file, a chunked one goes through Beast's parser into it.
  next upload(http::request_parser<http::empty_body>& head) {
    const sv::request_context ctx{"fuzz", "127.0.0.1:1"};
    std::optional<std::uint64_t> length;
    if (const auto declared = head.content_length()) {
      length = *declared;
    }
    const std::string target(head.get().target());
    auto begun = d.routes.begin_upload(sv::request_header(head.get().base()), length, ctx);
    if (auto* refused = std::get_if<sv::response>(&begun)) {
      return answered(std::move(*refused), false, http::verb::post, target);
    }
    auto up = std::get<std::unique_ptr<sv::upload>>(std::move(begun));
    beast::error_code ec;
    if (length && !head.chunked()) {
      if (rest.size() < *length) {
        return next::connection_ends;  // abandoned mid-body: `up` goes, with its file and slot
      }
      up->file().write(rest.data(), static_cast<std::size_t>(*length), ec);
      rest.remove_prefix(static_cast<std::size_t>(*length));
    } else {
      http::request_parser<sv::spool_body> body(std::move(head));
      body.body_limit(d.routes.max_image_bytes());
      body.get().body() = &up->file();
      while (!body.is_done() && !ec) {
        const std::size_t used = put(body, ec);
        if (ec == http::error::need_more && used > 0) {
          ec = {};
        } else if (ec == http::error::need_more || (!ec && used == 0)) {
          return next::connection_ends;  // the input ends mid-body: abandoned
        }
      }
      if (ec && ec != http::error::body_limit && ec.category() != boost::system::generic_category()) {
        return next::connection_ends;  // a malformed chunk: the reader abandons the upload
      }
    }
    if (ec) {
      return answered(d.routes.upload_failed(std::move(up), ec, ctx), false, http::verb::post, target);
    }
    return answered(d.routes.finish_upload(std::move(up), ctx), true, http::verb::post, target);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static std::unique_ptr<daemon_parts> daemon;
  if (!daemon) {
    borderscan::fuzz::quiet_logs();
    daemon = fresh_daemon();
  }
  connection conn{*daemon, {reinterpret_cast<const char*>(data), size}};
  for (int requests = 0; requests < 4 && !conn.rest.empty(); ++requests) {
    if (conn.serve_one() == next::connection_ends) {
      break;
    }
  }
  if (conn.state_changed) {
    daemon.reset();  // the old folder goes before the new one is made
    daemon = fresh_daemon();
  }
  return 0;
}
