#include "borderscan/server/logging.hpp"

#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

namespace borderscan::server {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// Makes the default logger write to a string in `format` for one test.
class captured_log {
 public:
  explicit captured_log(std::string_view format) : previous_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
    auto logger = std::make_shared<spdlog::logger>("captured", sink);
    logger->set_formatter(make_log_formatter(format));
    spdlog::set_default_logger(logger);
  }
  ~captured_log() { spdlog::set_default_logger(previous_); }
  captured_log(const captured_log&) = delete;
  captured_log& operator=(const captured_log&) = delete;

  std::vector<std::string> lines() const {
    std::vector<std::string> out;
    std::istringstream in(out_.str());
    for (std::string line; std::getline(in, line);) {
      out.push_back(line);
    }
    return out;
  }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::logger> previous_;
};

TEST(Logging, EscapesEverythingButPrintableAscii) {
  EXPECT_EQ(escape_for_log("GET /a?b=c"), "GET /a?b=c");
  EXPECT_EQ(escape_for_log(std::string("x\"y\\z\x01\n\xe9\xff\x7f", 10)), "x\\x22y\\x5cz\\x01\\x0a\\xe9\\xff\\x7f");
  EXPECT_EQ(escape_for_log(std::string("a\0b", 3)), "a\\x00b");
}

TEST(Logging, JsonLinesCarryTimeLevelAndMessage) {
  captured_log log("json");
  spdlog::warn("job={} state=failed reason={}", "abc", std::string("name \xff bad"));
  const auto lines = log.lines();
  ASSERT_EQ(lines.size(), 1U);
  const json j = json::parse(lines[0]);
  EXPECT_EQ(j.at("level"), "warning");
  EXPECT_EQ(j.at("time").get<std::string>().size(), std::string("2026-01-02T03:04:05.678Z").size());
  EXPECT_EQ(j.at("msg").get<std::string>().rfind("job=abc state=failed", 0), 0U);
}

TEST(Logging, AccessLinesPastTheLimitBecomeOneSummaryPerSecond) {
  for (const std::string format : {"text", "json"}) {
    captured_log log(format);
    access_log access({.format = format, .access_lines_per_second = 3});
    const auto t0 = access_log::clock::now();
    for (unsigned i = 0; i < 10; ++i) {
      access.write({"id" + std::to_string(i), "127.0.0.1:1", "GET /healthz", i < 8 ? 200U : 404U, 2, 0.5}, t0);
    }
    access.write({"server-error", "127.0.0.1:1", "GET /x", 500, 2, 0.5}, t0);  // always written
    access.refused(true, t0);
    access.refused(false, t0);
    EXPECT_EQ(log.lines().size(), 4U) << format;
    access.flush(t0 + 500ms);
    EXPECT_EQ(log.lines().size(), 4U) << "the second has not ended";
    access.flush(t0 + 1s);
    const auto lines = log.lines();
    ASSERT_EQ(lines.size(), 6U) << format;
    if (format == "json") {
      const json first = json::parse(lines[0]);
      EXPECT_EQ(first.at("request_id"), "id0");
      EXPECT_EQ(first.at("request"), "GET /healthz");
      EXPECT_EQ(first.at("status"), 200);
      EXPECT_EQ(json::parse(lines[3]).at("request_id"), "server-error");
      const json summary = json::parse(lines[4]);
      EXPECT_EQ(summary.at("not_logged"), 7);
      EXPECT_EQ(summary.at("by_status").at("2xx"), 5);
      EXPECT_EQ(summary.at("by_status").at("4xx"), 2);
      EXPECT_EQ(summary.at("limit"), 3);
      const json refused = json::parse(lines[5]);
      EXPECT_EQ(refused.at("max_connections"), 1);
      EXPECT_EQ(refused.at("max_connections_per_client"), 1);
    } else {
      EXPECT_NE(lines[0].find("request=id0 127.0.0.1:1 \"GET /healthz\" status=200 bytes=2 ms=0.5"), std::string::npos)
          << lines[0];
      EXPECT_NE(lines[4].find("7 requests not logged in the last second (2xx 5, 4xx 2)"), std::string::npos)
          << lines[4];
      EXPECT_NE(lines[5].find("refused 2 connections"), std::string::npos) << lines[5];
    }
    // A new second writes again.
    access.write({"later", "127.0.0.1:1", "GET /healthz", 200, 2, 0.5}, t0 + 1s);
    EXPECT_EQ(log.lines().size(), 7U);
  }
}

TEST(Logging, NoLimitWritesEveryLine) {
  captured_log log("text");
  access_log access({.access_lines_per_second = 0});
  const auto t0 = access_log::clock::now();
  for (int i = 0; i < 500; ++i) {
    access.write({"id", "p", "GET /", 200, 0, 0}, t0);
  }
  access.flush(t0 + 2s);
  EXPECT_EQ(log.lines().size(), 500U);
}

}  // namespace
}  // namespace borderscan::server
