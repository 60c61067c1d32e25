#pragma once
// The daemon's API without sockets, for the fuzz targets that drive it: a
// real SQLite store, job queue, report ingest with a real signing key, the
// shipped rules, the review console's files and the router, all in a scratch
// folder of their own. Tokens of each role are fixed strings (only their
// digests are stored, as in the daemon) so that inputs can carry them.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <tuple>

#include <spdlog/spdlog.h>

#include "borderscan/evidence/report_signature.hpp"
#include "borderscan/scanner/digest.hpp"
#include "borderscan/scanner/rule_set.hpp"
#include "borderscan/server/access.hpp"
#include "borderscan/server/job_queue.hpp"
#include "borderscan/server/metrics.hpp"
#include "borderscan/server/report_ingest.hpp"
#include "borderscan/server/router.hpp"
#include "borderscan/server/scan_runner.hpp"
#include "borderscan/server/sqlite_store.hpp"
#include "borderscan/server/system.hpp"
#include "borderscan/server/web_files.hpp"
#include "fuzz_check.hpp"
#include "support/server_seams.hpp"

namespace borderscan::fuzz {

// Bearer tokens the fuzz inputs (and the HTTP dictionary) use.
inline constexpr const char* admin_token = "bst_fuzz-admin";
inline constexpr const char* reviewer_token = "bst_fuzz-reviewer";
inline constexpr const char* station_token = "bst_fuzz-station";

using server::test_support::counting_ids;
using server::test_support::fixed_clock;

inline std::shared_ptr<const scanner::rule_set> shipped_rules() {
  static scanner::yara_library yara;
  static const auto rules = [] {
    scanner::rule_sources src;
    src.rule_paths.push_back(scanner::default_rules_dir());
    return scanner::rule_set::load(src);
  }();
  return rules;
}

inline std::shared_ptr<const server::web_files> console_files() {
  static const auto files = std::make_shared<const server::web_files>(server::web_files::load(BORDERSCAN_FUZZ_WEB_DIR));
  return files;
}

struct daemon_parts {
  daemon_parts()
      : store(dir / "borderscan.db"),
        signer(evidence::signing_key::load_or_create(dir / "keys" / "report-signing.pem")),
        ingest(store, {.reports_dir = dir / "reports", .signer = &signer, .evidence_dir = dir / "evidence"}),
        queue(store, clk, 4),
        rules(shipped_rules()),
        routes(store, queue, stats, rules, clk, ids, settings(dir, signer)) {
    std::filesystem::create_directories(dir / "spool");
    for (const auto& [name, role, token] : {std::tuple{"admin", server::role::admin, admin_token},
                                            std::tuple{"reviewer", server::role::reviewer, reviewer_token},
                                            std::tuple{"kiosk-1", server::role::station, station_token}}) {
      store.add_token({name, role, server::digest_of_token(token), clk.now_ms()}, {});
    }
  }

  // Stores `report_text` as the report of a new scan with that id, as the
  // worker pool does (claimed, ingested, completed); throws what ingest throws.
  server::stored_report store_report(const std::string& scan_id, const std::string& report_text,
                                     const std::string& image_sha256, const std::string& ruleset_digest) {
    server::scan_record scan;
    scan.id = scan_id;
    scan.station = "kiosk-1";
    scan.image_sha256 = image_sha256;
    scan.submitted_at = clk.now_ms();
    store.add_scan(scan, {});
    (void)store.claim_next(clk.now_ms(), {"fuzz", 60000});
    const auto file = dir / "spool" / (scan_id + ".report.json");
    write_bytes(file, {reinterpret_cast<const std::uint8_t*>(report_text.data()), report_text.size()});
    const server::report_file written{file, report_text.size(), scanner::sha256_hex(report_text), ruleset_digest, {}};
    const server::stored_report stored = ingest.ingest(scan, written, scanner::severity::medium);
    store.complete(scan_id, stored, clk.now_ms());
    return stored;
  }

  static server::router_settings settings(const scratch_folder& dir, const evidence::signing_key& signer) {
    server::router_settings s;
    s.spool_dir = dir / "spool";
    s.max_image_bytes = 1 << 20;
    s.evidence_dir = dir / "evidence";
    s.signing_key_pem = signer.public_part().pem();
    s.web = console_files();
    return s;
  }

  scratch_folder dir;  // first: everything else lives in it
  fixed_clock clk;
  counting_ids ids;
  server::sqlite_report_store store;
  evidence::signing_key signer;
  server::report_ingest ingest;
  server::job_queue queue;
  server::metrics stats;
  server::rule_holder rules;
  server::router routes;
};

// Problem logs are expected under fuzzing; only the checks speak.
inline void quiet_logs() {
  spdlog::set_level(spdlog::level::off);
}

}  // namespace borderscan::fuzz
