#pragma once
// The HTTP API without sockets: requests in, responses out. The session
// (http_server.hpp) owns the transport; everything the API decides happens
// here, so tests call the router directly. One table lists every route with
// its handler (a member function), where the handler may run and what the
// session must do with its body; adding a route is one entry and one handler.
// Thread-safe: any thread may call it concurrently.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <boost/beast/http.hpp>

#include "borderscan/server/access.hpp"
#include "borderscan/server/job_queue.hpp"
#include "borderscan/server/metrics.hpp"
#include "borderscan/server/problem.hpp"
#include "borderscan/server/report_store.hpp"
#include "borderscan/server/store_health.hpp"
#include "borderscan/server/rules_service.hpp"
#include "borderscan/server/response.hpp"
#include "borderscan/server/web_files.hpp"
#include "borderscan/server/scan_runner.hpp"
#include "borderscan/server/system.hpp"
#include "borderscan/server/upload.hpp"

namespace borderscan::server {

// Where a route's handler runs. One that reads or writes the store or the
// disk runs on the blocking pool, so that I/O threads never wait for it.
enum class runs_on { io_thread, blocking_pool };

struct route_info {
  http::verb method;
  std::string pattern;  // "/api/v1/scans/{id}"
  runs_on where = runs_on::blocking_pool;
  // The session streams the body to the spool (begin_upload, finish_upload)
  // instead of reading it into memory for handle().
  bool streamed_upload = false;
  // The roles whose tokens may call the route; 0: no token needed. Checked
  // before the handler runs (401 without a valid token, 403 for another
  // role). Handlers of routes that name a scan also check that a station
  // asks only about its own scans.
  role_mask roles = 0;
  // Open without a token when the daemon is configured with public metrics.
  bool public_with_metrics = false;
};

// Who sent a request, as the session knows it: for logs and the audit trail.
struct request_context {
  request_context(std::string_view id = {}, std::string_view peer = {}) : request_id(id), client(peer) {}
  request_context(const char* id) : request_id(id) {}  // tests: handle(req, "rid")
  std::string_view request_id;
  std::string_view client;  // "ip:port"
};

struct router_settings {
  std::filesystem::path spool_dir;
  std::uint64_t max_image_bytes = 64ULL << 30;
  std::uint64_t min_free_spool_bytes = 0;
  unsigned retry_after_seconds = 30;
  bool public_metrics = false;         // /metrics without a token
  std::string signing_key_pem;         // the reports' public key; empty: reports are not signed
  std::filesystem::path evidence_dir;  // copies of flagged files, one folder per scan; empty: none kept
  // Compiles the rules from disk again (rules_service::reload); empty: no reloads.
  std::function<reload_result(const actor&)> reload_rules;
  // This node against the cluster's rule set, following it first
  // (rules_service::standing); empty: GET /api/v1/rules names no cluster.
  std::function<rules_standing()> cluster_rules;
  // The review console, served at every GET path outside the API; empty: none.
  std::shared_ptr<const web_files> web;
  // Reports that could not be stored make /readyz 503 until a write in
  // data_dir (the store's and the reports' folder) works again; null: not tracked.
  store_health* health = nullptr;
  std::filesystem::path data_dir;
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
  actor by_;
  std::optional<std::string> header_sha256_, content_digest_sha256_;
};

// What the transport asks of the API. The router is the implementation;
// tests may put another in front of it. None of these throws. Which thread
// may call what is the session's business: handle() only where the route's
// `where` allows, the upload calls on the blocking pool.
class request_handler {
 public:
  virtual ~request_handler() = default;
  // The route a request head names; nullptr when it names none (handle()
  // then answers 400, 404 or 405 without blocking).
  virtual const route_info* route_of(const request_header& head) const = 0;
  virtual response handle(const request& req, const request_context& ctx) = 0;
  // Checks an upload's head (the caller's token, room in the queue, declared
  // size, digests) and opens the spool file; an error response otherwise.
  virtual std::variant<response, std::unique_ptr<upload>> begin_upload(const request_header& head,
                                                                       std::optional<std::uint64_t> content_length,
                                                                       const request_context& ctx) = 0;
  // Makes the received image durable, verifies digests, queues the scan:
  // 202, or a problem and nothing kept. Blocks on the disk and the store.
  virtual response finish_upload(std::unique_ptr<upload> up, const request_context& ctx) = 0;
  // The body could not be received (too large, disk full): a problem
  // response; the partial file is removed.
  virtual response upload_failed(std::unique_ptr<upload> up, boost::beast::error_code ec,
                                 const request_context& ctx) = 0;
  virtual std::uint64_t max_image_bytes() const = 0;
};

struct route_call;  // a matched request as a handler sees it (handler_support.hpp)

class router final : public request_handler {
 public:
  router(report_store& store, job_queue& queue, metrics& stats, const rule_holder& rules, const clock& clk,
         id_generator& ids, router_settings settings);

  const route_info* route_of(const request_header& head) const override;
  // Every route; an upload's body is taken whole from the request (the path
  // tests take; the daemon streams it).
  response handle(const request& req, const request_context& ctx = {}) override;
  std::variant<response, std::unique_ptr<upload>> begin_upload(const request_header& head,
                                                               std::optional<std::uint64_t> content_length,
                                                               const request_context& ctx = {}) override;
  response finish_upload(std::unique_ptr<upload> up, const request_context& ctx = {}) override;
  response upload_failed(std::unique_ptr<upload> up, boost::beast::error_code ec,
                         const request_context& ctx = {}) override;
  std::uint64_t max_image_bytes() const noexcept override { return settings_.max_image_bytes; }

  // Every route served, in table order (the OpenAPI test compares them).
  static const std::vector<route_info>& routes();

 private:
  using handler = response (router::*)(const route_call&);
  struct route_entry {
    route_info info;
    handler handle;
  };
  struct match;
  static const std::vector<route_entry>& table();
  static match find(http::verb method, std::string_view target);
  response dispatch(const request& req, const request_context& ctx);
  std::optional<response_message> console_page(const request& req, std::string_view path) const;
  // The caller a route needs, from the Authorization header: nothing for an
  // open route; throws 401 or 403 otherwise.
  std::optional<principal> admit(const route_info& route, const request_header& head);

  // The handlers, one per route; each file routes_<resource>.cpp holds a resource's.
  response get_healthz(const route_call& c);
  response get_readyz(const route_call& c);
  response get_metrics(const route_call& c);
  response post_scan(const route_call& c);
  response get_scan(const route_call& c);
  response delete_scan(const route_call& c);
  response delete_scan_image(const route_call& c);
  response get_scan_events(const route_call& c);
  response get_events(const route_call& c);
  response get_active_scans(const route_call& c);
  response get_whoami(const route_call& c);
  response get_report_overview(const route_call& c);
  response get_report_verification(const route_call& c);
  response get_file_types(const route_call& c);
  response get_scan_report(const route_call& c);
  response get_reports(const route_call& c);
  response get_report_files(const route_call& c);
  response get_audit(const route_call& c);
  response post_token(const route_call& c);
  response get_tokens(const route_call& c);
  response delete_token(const route_call& c);
  response get_signing_key(const route_call& c);
  response get_rules(const route_call& c);
  response post_rules_reload(const route_call& c);
  response delete_report(const route_call& c);
  response post_review(const route_call& c);
  response get_reviews(const route_call& c);
  response get_file_content(const route_call& c);
  response post_disposition(const route_call& c);
  response get_dispositions(const route_call& c);
  response get_files_by_hash(const route_call& c);

  report_store& store_;
  job_queue& queue_;
  metrics& metrics_;
  const rule_holder& rules_;
  const clock& clock_;
  id_generator& ids_;
  router_settings settings_;
};

}  // namespace borderscan::server
