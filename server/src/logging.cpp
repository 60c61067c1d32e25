#include "borderscan/server/logging.hpp"

#include <ctime>

#include <nlohmann/json.hpp>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace borderscan::server {
namespace {

using nlohmann::json;

// An access line in JSON form starts with this byte, then the line's fields
// as a JSON object, which the JSON formatter merges into the line. No other
// message starts with it: messages begin with fixed text, and client bytes
// pass through escape_for_log.
constexpr char fields_marker = '\x1e';

std::string utc_time(spdlog::log_clock::time_point t) {
  const auto since_epoch = t.time_since_epoch();
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch - seconds).count();
  const std::time_t tt = seconds.count();
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  char buf[40];
  const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return std::string(buf, n) + fmt::format(".{:03}Z", ms);
}

class json_formatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const std::string_view payload(msg.payload.data(), msg.payload.size());
    json line = {{"time", utc_time(msg.time)},
                 {"level", std::string_view(spdlog::level::to_string_view(msg.level).data(),
                                            spdlog::level::to_string_view(msg.level).size())}};
    json fields;
    if (payload.starts_with(fields_marker)) {
      fields = json::parse(payload.substr(1), nullptr, false);
    }
    if (fields.is_object()) {
      line.update(fields);
    } else {
      line["msg"] = std::string(payload);
    }
    // Messages may quote names from images: never fail on bad UTF-8.
    const std::string text = line.dump(-1, ' ', false, json::error_handler_t::replace);
    dest.append(text.data(), text.data() + text.size());
    dest.push_back('\n');
  }

  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<json_formatter>(); }
};

const char* status_class(std::size_t index) {
  static const char* names[] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
  return names[index];
}

}  // namespace

std::string escape_for_log(std::string_view raw) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(raw.size());
  for (const char ch : raw) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c > 0x7E || c == '"' || c == '\\') {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 0xF];
    } else {
      out += ch;
    }
  }
  return out;
}

std::unique_ptr<spdlog::formatter> make_log_formatter(std::string_view format) {
  if (format == "json") {
    return std::make_unique<json_formatter>();
  }
  return std::make_unique<spdlog::pattern_formatter>("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %v");
}

void configure_logging(const log_config& config) {
  auto logger = spdlog::stderr_color_mt("borderscand");
  logger->set_formatter(make_log_formatter(config.format));
  logger->set_level(spdlog::level::from_str(config.level));
  spdlog::set_default_logger(logger);
}

access_log::access_log(const log_config& config)
    : json_(config.format == "json"), limit_(config.access_lines_per_second) {}

void access_log::write(const access_record& r, clock::time_point now) {
  {
    std::lock_guard lock(mutex_);
    roll_locked(now);
    if (limit_ != 0 && r.status < 500) {
      if (written_ >= limit_) {
        ++dropped_[r.status < 600 ? r.status / 100 : 0];
        return;
      }
      ++written_;
    }
  }
  const std::string line = escape_for_log(r.request_line);
  if (json_) {
    const json fields = {{"msg", "request"},
                         {"request_id", r.request_id},
                         {"peer", r.peer},
                         {"request", line},
                         {"status", r.status},
                         {"bytes", r.bytes},
                         {"ms", static_cast<double>(static_cast<std::int64_t>(r.ms * 10)) / 10}};
    spdlog::info("{}{}", fields_marker, fields.dump());
  } else {
    spdlog::info("request={} {} \"{}\" status={} bytes={} ms={:.1f}", r.request_id, r.peer, line, r.status, r.bytes,
                 r.ms);
  }
}

void access_log::refused(bool per_client, clock::time_point now) {
  std::lock_guard lock(mutex_);
  roll_locked(now);
  ++(per_client ? refused_per_client_ : refused_total_);
}

void access_log::flush(clock::time_point now) {
  std::lock_guard lock(mutex_);
  roll_locked(now);
}

void access_log::roll_locked(clock::time_point now) {
  if (now - second_start_ < std::chrono::seconds(1)) {
    return;
  }
  std::uint64_t total = 0;
  std::string by_class;
  json classes = json::object();
  for (std::size_t i = 0; i < std::size(dropped_); ++i) {
    if (dropped_[i] != 0) {
      total += dropped_[i];
      by_class += fmt::format("{}{} {}", by_class.empty() ? "" : ", ", status_class(i), dropped_[i]);
      classes[status_class(i)] = dropped_[i];
    }
    dropped_[i] = 0;
  }
  if (total != 0) {
    // Said once the second is over, under the lock: a summary never overtakes its second's lines.
    if (json_) {
      spdlog::warn(
          "{}{}", fields_marker,
          json{{"msg", "requests not logged"}, {"not_logged", total}, {"by_status", classes}, {"limit", limit_}}
              .dump());
    } else {
      spdlog::warn("access log: {} requests not logged in the last second ({}); log.access_lines_per_second = {}",
                   total, by_class, limit_);
    }
  }
  if (refused_total_ + refused_per_client_ != 0) {
    if (json_) {
      spdlog::warn("{}{}", fields_marker,
                   json{{"msg", "connections refused"},
                        {"max_connections", refused_total_},
                        {"max_connections_per_client", refused_per_client_}}
                       .dump());
    } else {
      spdlog::warn(
          "refused {} connections in the last second: {} at http.max_connections, {} over "
          "http.max_connections_per_client",
          refused_total_ + refused_per_client_, refused_total_, refused_per_client_);
    }
    refused_total_ = refused_per_client_ = 0;
  }
  second_start_ = now;
  written_ = 0;
}

}  // namespace borderscan::server
