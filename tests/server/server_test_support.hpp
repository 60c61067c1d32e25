#pragma once
// Deterministic seams and a wired-up router for the server's unit tests.

#include <array>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <filesystem>
#include <map>
#include <string>

#include "borderscan/server/job_queue.hpp"
#include "borderscan/server/metrics.hpp"
#include "borderscan/server/report_ingest.hpp"
#include "borderscan/server/router.hpp"
#include "borderscan/server/scan_runner.hpp"
#include "borderscan/server/sqlite_store.hpp"
#include "borderscan/server/system.hpp"
#include "bearer.hpp"
#include "support/server_seams.hpp"
#include "support/test_support.hpp"

namespace borderscan::server::test_support {

inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

inline std::size_t count_files(const std::filesystem::path& dir) {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) {
    ++n;
  }
  return n;
}

// Store, queue and router over a scratch directory, with the shipped rules.
struct wired {
  explicit wired(std::size_t capacity = 8, std::uint64_t max_image_bytes = 16 << 20)
      : spool(make_spool(dir)),
        store(dir / "borderscan.db"),
        ingest(store, {.reports_dir = dir / "reports", .evidence_dir = dir / "evidence"}),
        queue(store, clk, capacity),
        rules(test::shipped_rules()),
        routes(store, queue, stats, rules, clk, ids, settings_for(spool, max_image_bytes, dir / "evidence")) {
    default_bearer_token() = token("admin", role::admin);
  }

  // A token in this store, made on first use; a station token names the station.
  const std::string& token(const std::string& name, role r = role::station) {
    auto it = tokens.find(name);
    if (it == tokens.end()) {
      const std::string t = generate_token();
      store.add_token({name, r, digest_of_token(t), clk.now}, {});
      it = tokens.emplace(name, t).first;
    }
    return it->second;
  }
  static router_settings settings_for(const std::filesystem::path& spool, std::uint64_t max_image_bytes,
                                      const std::filesystem::path& evidence_dir = {}) {
    router_settings s;
    s.spool_dir = spool;
    s.max_image_bytes = max_image_bytes;
    s.evidence_dir = evidence_dir;
    return s;
  }

  static std::filesystem::path make_spool(const test::scratch_dir& d) {
    std::filesystem::create_directories(d / "spool");
    return d / "spool";
  }

  test::scratch_dir dir;
  std::filesystem::path spool;
  fixed_clock clk;
  counting_ids ids;
  sqlite_report_store store;
  report_ingest ingest;
  job_queue queue;
  metrics stats;
  rule_holder rules;
  router routes;
  std::map<std::string, std::string> tokens;
};

// Runs the next queued scan in-process and stores its report, as the worker
// pool does.
inline void finish_next(wired& w) {
  const auto job = w.queue.next({});
  ASSERT_TRUE(job);
  std::atomic<bool> cancel{false};
  in_process_runner runner({}, w.rules, 1, scanner::evidence_limits{});
  const report_file file = runner.run({job->scan(), cancel, nullptr});
  const stored_report stored = w.ingest.ingest(job->scan(), file, runner.flag_threshold());
  w.store.complete(job->scan().id, stored, w.clk.now_ms());
  if (!stored.evidence.empty()) {
    w.store.add_evidence(job->scan().id, stored.evidence, w.clk.now_ms());
  }
  w.queue.finished(job);
}

// A response's whole body, drawn from its stream when it has one.
inline std::string body_of(response& res) {
  if (!res.stream) {
    return res.message.body();
  }
  std::string out;
  std::array<char, 65536> piece{};
  for (std::size_t n; (n = res.stream->read(piece)) > 0;) {
    out.append(piece.data(), n);
  }
  return out;
}

// The stored report document of a done scan.
inline nlohmann::json stored_report_json(report_store& store, const std::string& id) {
  const auto stored = store.find_report(id);
  EXPECT_TRUE(stored.has_value()) << id;
  return stored ? nlohmann::json::parse(read_file(stored->path)) : nlohmann::json();
}

}  // namespace borderscan::server::test_support
