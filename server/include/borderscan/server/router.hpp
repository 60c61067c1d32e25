#pragma once
// The HTTP API without sockets: requests in, responses out. The session
// (http_server.hpp) owns the transport; everything the API decides happens
// here, so tests call the router directly. Thread-safe: any I/O thread may
// call it concurrently.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <boost/beast/http.hpp>

#include "borderscan/server/job_queue.hpp"
#include "borderscan/server/metrics.hpp"
#include "borderscan/server/problem.hpp"
#include "borderscan/server/report_store.hpp"
#include "borderscan/server/scan_runner.hpp"
#include "borderscan/server/system.hpp"
#include "borderscan/server/upload.hpp"

namespace borderscan::server {

using request = http::request<http::string_body>;
using request_header = http::request_header<>;

// A Server-Sent Events stream, polled by the session.
class event_source {
 public:
  virtual ~event_source() = default;
  // Event text to send now (may be empty); sets `done` after the last event.
  virtual std::string poll(bool& done) = 0;
};

struct response {
  response_message message;
  std::string route = "unmatched";       // metrics label: the route pattern
  std::shared_ptr<event_source> events;  // set: stream events after the head
};

struct route_info {
  http::verb method;
  std::string pattern;  // "/api/v1/scans/{id}"
};

struct router_settings {
  std::filesystem::path spool_dir;
  std::uint64_t max_image_bytes = 64ULL << 30;
  std::uint64_t min_free_spool_bytes = 0;
  unsigned retry_after_seconds = 30;
};

// An accepted upload head: a reserved queue slot and an open spool file.
// Destroying it before finish_upload removes the file and frees the slot.
class upload {
 public:
  spool_file& file() noexcept { return *file_; }

 private:
  friend class router;
  queue_slot slot_;
  std::unique_ptr<spool_file> file_;
  scan_record scan_;
  std::optional<std::string> header_sha256_, content_digest_sha256_;
};

class router {
 public:
  router(report_store& store, job_queue& queue, metrics& stats, const rule_holder& rules, const clock& clk,
         id_generator& ids, router_settings settings);

  // Every route but the streamed upload body. Never throws.
  response handle(const request& req, std::string_view request_id = {});

  // POST /api/v1/scans: the session streams the body instead of buffering it.
  bool is_upload(const request_header& head) const;
  // Checks the head (room in the queue, declared size, digests, station) and
  // opens the spool file; an error response otherwise. Never throws.
  std::variant<response, std::unique_ptr<upload>> begin_upload(const request_header& head,
                                                               std::optional<std::uint64_t> content_length,
                                                               std::string_view request_id = {});
  // Verifies digests, queues the scan: 202, or a problem and nothing kept.
  response finish_upload(std::unique_ptr<upload> up, std::string_view request_id = {});
  // The body could not be received (too large, disk full): a problem response.
  response upload_failed(std::unique_ptr<upload> up, boost::beast::error_code ec, std::string_view request_id = {});

  std::uint64_t max_image_bytes() const noexcept { return settings_.max_image_bytes; }
  static const std::vector<route_info>& routes();

 private:
  response dispatch(const request& req, std::string_view request_id);

  report_store& store_;
  job_queue& queue_;
  metrics& metrics_;
  const rule_holder& rules_;
  const clock& clock_;
  id_generator& ids_;
  router_settings settings_;
};

}  // namespace borderscan::server
