#include "borderscan/server/config.hpp"

#include <boost/asio/ip/address.hpp>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <toml++/toml.h>

namespace borderscan::server {
namespace {

std::string where(std::string_view origin, const toml::node& node) {
  std::ostringstream out;
  out << origin;
  if (node.source().begin.line > 0) {
    out << ":" << node.source().begin.line;
  }
  return out.str();
}

// Reads one table, remembering which keys were consumed so that anything left
// over (a typo, a key from a newer version) refuses start-up.
class table_reader {
 public:
  table_reader(const toml::table& table, std::string_view origin, std::string prefix)
      : table_(table), origin_(origin), prefix_(std::move(prefix)) {}

  template <class Int>
  void integer(std::string_view key, Int& out, std::int64_t min, std::int64_t max) {
    const toml::node* node = take(key);
    if (node == nullptr) {
      return;
    }
    const auto* value = node->as_integer();
    if (value == nullptr) {
      fail(*node, key, "must be an integer");
    }
    const std::int64_t v = value->get();
    if (v < min || v > max) {
      fail(*node, key,
           "must be between " + std::to_string(min) + " and " + std::to_string(max) + ", got " + std::to_string(v));
    }
    out = static_cast<Int>(v);
  }

  void boolean(std::string_view key, bool& out) {
    const toml::node* node = take(key);
    if (node == nullptr) {
      return;
    }
    const auto* value = node->as_boolean();
    if (value == nullptr) {
      fail(*node, key, "must be true or false");
    }
    out = value->get();
  }

  void string(std::string_view key, std::string& out) {
    const toml::node* node = take(key);
    if (node == nullptr) {
      return;
    }
    const auto* value = node->as_string();
    if (value == nullptr) {
      fail(*node, key, "must be a string");
    }
    out = value->get();
  }

  void path(std::string_view key, std::filesystem::path& out) {
    std::string s = out.string();
    string(key, s);
    out = s;
  }

  void paths(std::string_view key, std::vector<std::filesystem::path>& out) {
    const toml::node* node = take(key);
    if (node == nullptr) {
      return;
    }
    const auto* array = node->as_array();
    if (array == nullptr) {
      fail(*node, key, "must be an array of strings");
    }
    out.clear();
    for (const toml::node& item : *array) {
      const auto* s = item.as_string();
      if (s == nullptr || s->get().empty()) {
        fail(item, key, "must be an array of non-empty strings");
      }
      out.emplace_back(s->get());
    }
  }

  const toml::table* subtable(std::string_view key) {
    const toml::node* node = take(key);
    if (node == nullptr) {
      return nullptr;
    }
    const auto* t = node->as_table();
    if (t == nullptr) {
      fail(*node, key, "must be a table");
    }
    return t;
  }

  // Every key not consumed is an error; a key of an older release says what it is now.
  void finish() const {
    static const std::map<std::string, std::string, std::less<>> renamed = {
        {"limits.max_expanded_bytes", "limits.max_total_expanded_bytes"},
    };
    for (const auto& [key, node] : table_) {
      if (seen_.count(std::string(key.str())) == 0) {
        const std::string name = prefix_ + std::string(key.str());
        const auto now = renamed.find(name);
        throw config_error(where(origin_, node) + ": unknown key '" + name + "'" +
                           (now != renamed.end() ? "; it is now '" + now->second + "'" : std::string()));
      }
    }
  }

  [[noreturn]] void fail(const toml::node& node, std::string_view key, const std::string& why) const {
    throw config_error(where(origin_, node) + ": " + prefix_ + std::string(key) + " " + why);
  }

 private:
  const toml::node* take(std::string_view key) {
    seen_.emplace(key);
    return table_.get(key);
  }

  const toml::table& table_;
  std::string_view origin_;
  std::string prefix_;
  std::set<std::string, std::less<>> seen_;
};

constexpr std::int64_t max_i64 = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t max_u32 = std::numeric_limits<std::uint32_t>::max();

// Per-client caps, reserved health slots and the upload rate floor.
void read_http_fairness(table_reader& r, http_config& c) {
  r.integer("max_connections_per_client", c.max_connections_per_client, 0, 100'000);
  r.integer("reserved_health_connections", c.reserved_health_connections, 0, 1000);
  r.integer("min_upload_bytes_per_second", c.min_upload_bytes_per_second, 0, 1LL << 40);
  r.integer("upload_rate_window_seconds", c.upload_rate_window_seconds, 1, 3600);
}

void write_http_fairness(toml::table& t, const http_config& c) {
  t.insert("max_connections_per_client", static_cast<std::int64_t>(c.max_connections_per_client));
  t.insert("reserved_health_connections", static_cast<std::int64_t>(c.reserved_health_connections));
  t.insert("min_upload_bytes_per_second", static_cast<std::int64_t>(c.min_upload_bytes_per_second));
  t.insert("upload_rate_window_seconds", static_cast<std::int64_t>(c.upload_rate_window_seconds));
}

void read_http(table_reader& r, http_config& c) {
  std::string listen = c.listen.host.find(':') != std::string::npos
                           ? "[" + c.listen.host + "]:" + std::to_string(c.listen.port)
                           : c.listen.host + ":" + std::to_string(c.listen.port);
  r.string("listen", listen);
  try {
    c.listen = parse_listen_address(listen);
  } catch (const config_error& e) {
    throw config_error(std::string("http.listen: ") + e.what());
  }
  r.integer("io_threads", c.io_threads, 1, 64);
  r.integer("max_connections", c.max_connections, 1, 100'000);
  read_http_fairness(r, c);
  r.integer("header_limit_bytes", c.header_limit_bytes, 1024, 1 << 20);
  r.integer("body_limit_bytes", c.body_limit_bytes, 1024, 64 << 20);
  r.integer("header_timeout_seconds", c.header_timeout_seconds, 1, 3600);
  r.integer("read_timeout_seconds", c.read_timeout_seconds, 1, 3600);
  r.integer("idle_timeout_seconds", c.idle_timeout_seconds, 1, 3600);
  r.integer("event_interval_ms", c.event_interval_ms, 10, 10'000);
  r.path("tls_certificate", c.tls_certificate);
  r.path("tls_private_key", c.tls_private_key);
  r.boolean("public_metrics", c.public_metrics);
  r.boolean("allow_insecure_listen", c.allow_insecure_listen);
  r.boolean("console", c.console);
  r.path("web_dir", c.web_dir);
  if (c.tls_certificate.empty() != c.tls_private_key.empty()) {
    throw config_error("http.tls_certificate and http.tls_private_key must be set together (TLS) or both left empty");
  }
}

void read_storage(table_reader& r, storage_config& c) {
  r.path("data_dir", c.data_dir);
  if (c.data_dir.empty()) {
    throw config_error("storage.data_dir must not be empty");
  }
  r.path("database", c.database);
  r.path("spool_dir", c.spool_dir);
  r.string("node_id", c.node_id);
  r.integer("max_image_bytes", c.max_image_bytes, 1, max_i64);
  r.integer("min_free_spool_bytes", c.min_free_spool_bytes, 0, max_i64);
  r.boolean("keep_images", c.keep_images);
  r.integer("keep_flagged_days", c.keep_flagged_days, 0, 36'500);
  r.integer("keep_failed_hours", c.keep_failed_hours, 0, 876'000);
  r.integer("retention_sweep_seconds", c.retention_sweep_seconds, 1, 86'400);
}

void read_evidence(table_reader& r, evidence_config& c) {
  r.boolean("enabled", c.enabled);
  r.integer("max_file_bytes", c.max_file_bytes, 1, max_i64);
  r.integer("max_bytes_per_scan", c.max_bytes_per_scan, 1, max_i64);
  r.integer("keep_days", c.keep_days, 0, 36'500);
}

void read_jobs(table_reader& r, jobs_config& c) {
  r.integer("workers", c.workers, 0, 256);
  r.integer("scan_threads", c.scan_threads, 0, 256);
  r.integer("queue_capacity", c.queue_capacity, 1, 1'000'000);
  r.integer("max_attempts", c.max_attempts, 1, 100);
  r.integer("shutdown_grace_seconds", c.shutdown_grace_seconds, 0, 86'400);
  r.integer("store_attempts", c.store_attempts, 1, 10);
  r.integer("store_retry_first_delay_ms", c.store_retry_first_delay_ms, 1, 600'000);
  r.integer("lease_seconds", c.lease_seconds, 1, 86'400);
}

void read_rules(table_reader& r, rules_config& c) {
  r.paths("paths", c.paths);
  r.paths("known_bad", c.known_bad);
  r.paths("known_good", c.known_good);
}

void read_limits(table_reader& r, scanner::limits& l) {
  scanner::for_each_limit(l, [&](const scanner::limit_field& f, auto& value) {
    r.integer(f.name, value, static_cast<std::int64_t>(f.min),
              static_cast<std::int64_t>(std::min<std::uint64_t>(f.max, max_i64)));
  });
  std::string sev = scanner::to_string(l.flag_threshold);
  r.string(scanner::flag_severity_key, sev);
  const auto parsed = scanner::parse_severity(sev);
  if (!parsed) {
    throw config_error(std::string("limits.") + scanner::flag_severity_key +
                       " must be one of info, low, medium, high, critical; got '" + sev + "'");
  }
  l.flag_threshold = *parsed;
  r.boolean(scanner::skip_known_good_key, l.skip_yara_for_known_good);
}

void read_worker(table_reader& r, worker_config& c) {
  r.string("isolation", c.isolation);
  if (c.isolation != "process" && c.isolation != "none") {
    throw config_error("worker.isolation must be \"process\" or \"none\"; got '" + c.isolation + "'");
  }
  r.path("command", c.command);
  r.integer("memory_limit_bytes", c.memory_limit_bytes, 0, max_i64);
  r.integer("cpu_limit_seconds", c.cpu_limit_seconds, 0, max_u32);
  r.integer("timeout_seconds", c.timeout_seconds, 0, max_u32);
  r.integer("max_output_bytes", c.max_output_bytes, 4096, max_i64);
}

// How log lines are written and how many access lines per second.
void read_log_output(table_reader& r, log_config& c) {
  r.string("format", c.format);
  if (c.format != "text" && c.format != "json") {
    throw config_error("log.format must be text or json; got '" + c.format + "'");
  }
  r.integer("access_lines_per_second", c.access_lines_per_second, 0, 1'000'000);
}

void read_log(table_reader& r, log_config& c) {
  r.string("level", c.level);
  static constexpr std::string_view levels[] = {"trace", "debug", "info", "warn", "error", "critical", "off"};
  if (std::find(std::begin(levels), std::end(levels), c.level) == std::end(levels)) {
    throw config_error("log.level must be one of trace, debug, info, warn, error, critical, off; got '" + c.level +
                       "'");
  }
  read_log_output(r, c);
}

template <class Fn>
void section(table_reader& top, std::string_view name, std::string_view origin, Fn&& fn) {
  if (const toml::table* t = top.subtable(name)) {
    table_reader r(*t, origin, std::string(name) + ".");
    fn(r);
    r.finish();
  }
}

toml::array to_array(const std::vector<std::filesystem::path>& paths) {
  toml::array a;
  for (const auto& p : paths) {
    a.push_back(p.string());
  }
  return a;
}

}  // namespace

bool is_loopback(const listen_address& address) {
  if (address.host == "localhost") {
    return true;
  }
  boost::system::error_code ec;
  const auto ip = boost::asio::ip::make_address(address.host, ec);
  return !ec && ip.is_loopback();
}

listen_address parse_listen_address(std::string_view text) {
  listen_address out;
  std::string_view host, port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      throw config_error("listen address must be HOST:PORT or [IPv6]:PORT, got '" + std::string(text) + "'");
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      throw config_error("listen address must be HOST:PORT, got '" + std::string(text) + "'");
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (host.empty() || ec != std::errc{} || end != port.data() + port.size() || value > 65535) {
    throw config_error("listen address must be HOST:PORT with a port 0-65535, got '" + std::string(text) + "'");
  }
  // The listener binds this address as it is (no name lookup), so anything
  // but an IP address would only fail at start; and a host such as "=::1]"
  // did not print back (--print-config) as an address that loads again
  // (found by tests/fuzz/fuzz_config). IPv6 only in brackets, IPv4 without.
  boost::system::error_code not_ip;
  const auto ip = boost::asio::ip::make_address(std::string(host), not_ip);
  if (not_ip || ip.is_v6() != (text.front() == '[')) {
    throw config_error("listen address must be IPV4:PORT or [IPV6]:PORT, got '" + std::string(text) + "'");
  }
  out.host = std::string(host);
  out.port = static_cast<std::uint16_t>(value);
  return out;
}

unsigned jobs_config::effective_workers() const {
  if (workers != 0) {
    return workers;
  }
  return std::max(1U, std::thread::hardware_concurrency());
}

unsigned jobs_config::effective_scan_threads() const {
  if (scan_threads != 0) {
    return scan_threads;
  }
  return std::max(1U, std::thread::hardware_concurrency() / effective_workers());
}

server_config parse_config(std::string_view toml_text, std::string_view origin) {
  toml::table root;
  try {
    root = toml::parse(toml_text, origin);
  } catch (const toml::parse_error& e) {
    std::ostringstream out;
    out << origin << ":" << e.source().begin.line << ":" << e.source().begin.column << ": " << e.description();
    throw config_error(out.str());
  }
  server_config config;
  table_reader top(root, origin, "");
  section(top, "http", origin, [&](table_reader& r) { read_http(r, config.http); });
  section(top, "storage", origin, [&](table_reader& r) { read_storage(r, config.storage); });
  section(top, "evidence", origin, [&](table_reader& r) { read_evidence(r, config.evidence); });
  section(top, "jobs", origin, [&](table_reader& r) { read_jobs(r, config.jobs); });
  section(top, "rules", origin, [&](table_reader& r) { read_rules(r, config.rules); });
  section(top, "limits", origin, [&](table_reader& r) { read_limits(r, config.limits); });
  section(top, "worker", origin, [&](table_reader& r) { read_worker(r, config.worker); });
  section(top, "log", origin, [&](table_reader& r) { read_log(r, config.log); });
  top.finish();
  return config;
}

server_config load_config(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    throw config_error(file.string() + ": cannot open the configuration file");
  }
  std::ostringstream text;
  text << in.rdbuf();
  return parse_config(text.str(), file.string());
}

std::string to_toml(const server_config& c) {
  const auto i64 = [](auto v) { return static_cast<std::int64_t>(v); };
  const std::string listen = c.http.listen.host.find(':') != std::string::npos
                                 ? "[" + c.http.listen.host + "]:" + std::to_string(c.http.listen.port)
                                 : c.http.listen.host + ":" + std::to_string(c.http.listen.port);
  toml::table http{
      {"listen", listen},
      {"io_threads", i64(c.http.io_threads)},
      {"max_connections", i64(c.http.max_connections)},
      {"header_limit_bytes", i64(c.http.header_limit_bytes)},
      {"body_limit_bytes", i64(c.http.body_limit_bytes)},
      {"header_timeout_seconds", i64(c.http.header_timeout_seconds)},
      {"read_timeout_seconds", i64(c.http.read_timeout_seconds)},
      {"idle_timeout_seconds", i64(c.http.idle_timeout_seconds)},
      {"event_interval_ms", i64(c.http.event_interval_ms)},
      {"tls_certificate", c.http.tls_certificate.string()},
      {"tls_private_key", c.http.tls_private_key.string()},
      {"public_metrics", c.http.public_metrics},
      {"allow_insecure_listen", c.http.allow_insecure_listen},
      {"console", c.http.console},
      {"web_dir", c.http.web_dir.string()},
  };
  toml::table storage{
      {"data_dir", c.storage.data_dir.string()},
      {"database", c.storage.database.string()},
      {"spool_dir", c.storage.spool_dir.string()},
      {"node_id", c.storage.node_id},
      {"max_image_bytes", i64(c.storage.max_image_bytes)},
      {"min_free_spool_bytes", i64(c.storage.min_free_spool_bytes)},
      {"keep_images", c.storage.keep_images},
      {"keep_flagged_days", i64(c.storage.keep_flagged_days)},
      {"keep_failed_hours", i64(c.storage.keep_failed_hours)},
      {"retention_sweep_seconds", i64(c.storage.retention_sweep_seconds)},
  };
  toml::table evidence{
      {"enabled", c.evidence.enabled},
      {"max_file_bytes", i64(c.evidence.max_file_bytes)},
      {"max_bytes_per_scan", i64(c.evidence.max_bytes_per_scan)},
      {"keep_days", i64(c.evidence.keep_days)},
  };
  toml::table jobs{
      {"workers", i64(c.jobs.workers)},
      {"scan_threads", i64(c.jobs.scan_threads)},
      {"queue_capacity", i64(c.jobs.queue_capacity)},
      {"max_attempts", i64(c.jobs.max_attempts)},
      {"shutdown_grace_seconds", i64(c.jobs.shutdown_grace_seconds)},
      {"store_attempts", i64(c.jobs.store_attempts)},
      {"store_retry_first_delay_ms", i64(c.jobs.store_retry_first_delay_ms)},
      {"lease_seconds", i64(c.jobs.lease_seconds)},
  };
  toml::table rules{
      {"paths", to_array(c.rules.paths)},
      {"known_bad", to_array(c.rules.known_bad)},
      {"known_good", to_array(c.rules.known_good)},
  };
  toml::table limits;
  scanner::for_each_limit(c.limits,
                          [&](const scanner::limit_field& f, const auto& value) { limits.insert(f.name, i64(value)); });
  limits.insert(scanner::flag_severity_key, std::string(scanner::to_string(c.limits.flag_threshold)));
  limits.insert(scanner::skip_known_good_key, c.limits.skip_yara_for_known_good);
  toml::table worker{
      {"isolation", c.worker.isolation},
      {"command", c.worker.command.string()},
      {"memory_limit_bytes", i64(c.worker.memory_limit_bytes)},
      {"cpu_limit_seconds", i64(c.worker.cpu_limit_seconds)},
      {"timeout_seconds", i64(c.worker.timeout_seconds)},
      {"max_output_bytes", i64(c.worker.max_output_bytes)},
  };
  write_http_fairness(http, c.http);
  toml::table log{{"level", c.log.level},
                  {"format", c.log.format},
                  {"access_lines_per_second", static_cast<std::int64_t>(c.log.access_lines_per_second)}};
  toml::table root{
      {"http", std::move(http)},     {"storage", std::move(storage)}, {"evidence", std::move(evidence)},
      {"jobs", std::move(jobs)},     {"rules", std::move(rules)},     {"limits", std::move(limits)},
      {"worker", std::move(worker)}, {"log", std::move(log)},
  };
  std::ostringstream out;
  out << "# effective borderscand configuration (workers = 0 means " << c.jobs.effective_workers()
      << " here, scan_threads = 0 means " << c.jobs.effective_scan_threads() << ")\n";
  out << root << "\n";
  return out.str();
}

}  // namespace borderscan::server
