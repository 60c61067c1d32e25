#pragma once
// The daemon's configuration: one struct with in-class defaults, filled by a
// single strict loader (unknown keys and out-of-range values are errors), and
// printed back as TOML by `borderscand --print-config`.
// config/borderscand.toml documents every key; a test keeps both in step.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "borderscan/scanner/limits.hpp"

namespace borderscan::server {

// Thrown by the loader; what() names the file, the key and the reason.
class config_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct listen_address {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;  // 0 = an ephemeral port (tests)
};

// "HOST:PORT" or "[v6]:PORT"; throws config_error.
listen_address parse_listen_address(std::string_view text);
// True for 127.0.0.0/8, ::1 and "localhost": only this machine can connect.
bool is_loopback(const listen_address& address);

struct http_config {
  listen_address listen;
  unsigned io_threads = 2;
  unsigned max_connections = 256;
  // Connection fairness (http_server.cpp): one client address holds at most
  // this many connections (0: no cap); beyond max_connections a few more are
  // accepted that answer /healthz and /readyz only.
  unsigned max_connections_per_client = 64;
  unsigned reserved_health_connections = 4;
  std::uint32_t header_limit_bytes = 16 * 1024;
  std::uint64_t body_limit_bytes = 1 << 20;   // every request except uploads
  std::uint32_t header_timeout_seconds = 10;  // a request head must arrive whole in this time, however it trickles
  std::uint32_t read_timeout_seconds = 60;    // longest silence while a body is being received
  std::uint32_t idle_timeout_seconds = 60;    // keep-alive connection with no request
  std::uint32_t event_interval_ms = 250;      // SSE progress polling
  // An upload must bring at least this many bytes per second, measured over
  // each window (the first window is its grace period); 0: no minimum. A
  // body of known length must also be whole within window + length / rate.
  std::uint64_t min_upload_bytes_per_second = 64 * 1024;
  std::uint32_t upload_rate_window_seconds = 30;
  // TLS on the same listener when both are set (PEM files); plain HTTP when both are empty.
  std::filesystem::path tls_certificate;  // certificate chain, leaf first
  std::filesystem::path tls_private_key;
  bool tls_enabled() const { return !tls_certificate.empty(); }
  bool public_metrics = false;  // /metrics answers without a token
  // Plain HTTP on an address other than loopback sends tokens and reports in
  // clear: refused at start unless this is set (then warned on every start).
  bool allow_insecure_listen = false;
  // The review console at / (static files); web_dir empty: web/ beside the
  // executable, else the source tree's server/web.
  bool console = true;
  std::filesystem::path web_dir;

  std::chrono::seconds header_timeout() const { return std::chrono::seconds(header_timeout_seconds); }
  std::chrono::seconds read_timeout() const { return std::chrono::seconds(read_timeout_seconds); }
  std::chrono::seconds idle_timeout() const { return std::chrono::seconds(idle_timeout_seconds); }
  std::chrono::milliseconds event_interval() const { return std::chrono::milliseconds(event_interval_ms); }
  std::chrono::seconds upload_rate_window() const { return std::chrono::seconds(upload_rate_window_seconds); }
};

struct storage_config {
  std::filesystem::path data_dir = "var";
  std::filesystem::path database;   // empty: <data_dir>/borderscan.db
  std::filesystem::path spool_dir;  // empty: <data_dir>/spool
  // This node's name in scan leases (several nodes on one PostgreSQL store);
  // empty: one made at the first start and kept in <data_dir>/node-id.
  std::string node_id;
  std::uint64_t max_image_bytes = 64ULL << 30;
  std::uint64_t min_free_spool_bytes = 1ULL << 30;  // /readyz fails below this
  bool keep_images = false;                         // keep every spooled image after its scan ends, forever
  std::uint32_t keep_flagged_days = 0;              // keep images of flagged scans this long; 0 = delete at once
  std::uint32_t keep_failed_hours = 72;             // keep images of failed scans (not cancelled) this long
  std::uint32_t retention_sweep_seconds = 3600;     // how often expired images are deleted

  std::filesystem::path database_path() const { return database.empty() ? data_dir / "borderscan.db" : database; }
  std::filesystem::path spool_path() const { return spool_dir.empty() ? data_dir / "spool" : spool_dir; }
  // Report documents, one file per done scan, and compiled rule sets.
  std::filesystem::path reports_path() const { return data_dir / "reports"; }
  std::filesystem::path compiled_rules_path() const { return data_dir / "rules"; }
  std::filesystem::path signing_key_path() const { return data_dir / "keys" / "report-signing.pem"; }
  std::filesystem::path node_id_path() const { return data_dir / "node-id"; }
};

// Copies of flagged files' content, kept for reviewers (GET
// /api/v1/reports/{id}/files/{index}/content).
struct evidence_config {
  bool enabled = true;
  std::uint64_t max_file_bytes = 64ULL << 20;     // a larger flagged file is not copied (a limit hit)
  std::uint64_t max_bytes_per_scan = 1ULL << 30;  // copies of one scan, together
  std::uint32_t keep_days = 30;                   // then the sweep deletes them; 0 = until the report is purged

  std::filesystem::path root(const std::filesystem::path& data_dir) const { return data_dir / "evidence"; }
};

struct jobs_config {
  unsigned workers = 0;       // 0: number of cores
  unsigned scan_threads = 0;  // threads inside one scan; 0: cores / workers, at least 1
  unsigned queue_capacity = 64;
  unsigned max_attempts = 3;
  std::uint32_t shutdown_grace_seconds = 30;
  unsigned store_attempts = 4;                      // storing a report, in all (full disk, busy store)
  std::uint32_t store_retry_first_delay_ms = 1000;  // then ×4 each time
  // A running scan's lease: renewed every third of this while it runs; when
  // it lapses (its node died) another node queues the scan again.
  std::uint32_t lease_seconds = 30;

  unsigned effective_workers() const;
  unsigned effective_scan_threads() const;
};

struct rules_config {
  std::vector<std::filesystem::path> paths;  // empty: the shipped rules/
  std::vector<std::filesystem::path> known_bad;
  std::vector<std::filesystem::path> known_good;
};

// How scans are fenced from the daemon.
struct worker_config {
  std::string isolation = "process";              // process: `borderscan worker` per scan; none: in the daemon
  std::filesystem::path command;                  // empty: `borderscan` next to borderscand
  std::uint64_t memory_limit_bytes = 4ULL << 30;  // RLIMIT_AS of the worker; 0 = none
  std::uint64_t cpu_limit_seconds = 0;            // RLIMIT_CPU of the worker; 0 = none
  std::uint32_t timeout_seconds = 0;              // wall clock; 0 = limits.scan_timeout_seconds + 60
  std::uint64_t max_output_bytes = 512ULL << 20;  // largest report file, and most message bytes, of a worker

  // The wall-clock deadline of a worker under these scan limits.
  std::chrono::seconds deadline(const scanner::limits& lim) const {
    return std::chrono::seconds(timeout_seconds != 0 ? timeout_seconds : std::uint64_t{lim.scan_timeout_seconds} + 60);
  }
};

struct log_config {
  std::string level = "info";   // trace|debug|info|warn|error|critical|off
  std::string format = "text";  // text: one plain line per event; json: one JSON object per line
  // Access lines written per second at most (answers of 5xx always are); the
  // rest are counted in one summary line per second. 0: every line.
  unsigned access_lines_per_second = 100;
};

struct server_config {
  http_config http;
  storage_config storage;
  evidence_config evidence;
  jobs_config jobs;
  rules_config rules;
  scanner::limits limits = default_scan_limits();
  worker_config worker;
  log_config log;

  // The daemon bounds every scan by default; the scanner library does not.
  static scanner::limits default_scan_limits() {
    scanner::limits l;
    l.scan_timeout_seconds = 3600;
    return l;
  }
};

// Parses TOML text; `origin` names the source in messages. Throws config_error.
server_config parse_config(std::string_view toml_text, std::string_view origin = "config");
server_config load_config(const std::filesystem::path& file);
// The effective configuration as TOML that parse_config accepts again.
std::string to_toml(const server_config& config);

}  // namespace borderscan::server
