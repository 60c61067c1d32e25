#pragma once
// Storing a finished scan's report: the file the scan wrote is read once,
// front to back (never as one document in memory): its bytes are hashed and
// compared with what the writer claimed, its structure, summary and verdict
// checked (scanner::read_report), its file entries stored as rows in batches,
// it is signed (the signature appended in place) and moved into the report
// folder, from which it is served as it is.
// The store lock is taken per batch, never while the file is parsed.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "borderscan/evidence/report_signature.hpp"
#include "borderscan/server/report_store.hpp"
#include "borderscan/scanner/evidence_pack.hpp"
#include "borderscan/server/scan_runner.hpp"

namespace borderscan::server {

struct ingest_settings {
  std::filesystem::path reports_dir;
  std::uint64_t max_report_bytes = 512ULL << 20;
  std::size_t batch_rows = 1000;  // file rows per store transaction
  // Signs each accepted report (evidence/report_signature.hpp); unsigned
  // when null.
  const evidence::signing_key* signer = nullptr;
  // Where copies of flagged files go, one folder per scan; empty: evidence
  // packs are discarded.
  std::filesystem::path evidence_dir;
};

class report_ingest {
 public:
  report_ingest(report_store& store, ingest_settings settings);

  // Stores `file` as the report of `scan` and returns what complete() needs.
  // The report must name this scan, its image's SHA-256 and the rule set the
  // scan ran with (file.ruleset_digest; when expected_ruleset is not empty,
  // that one). Throws scan_failed when the report cannot be accepted (it will
  // not get better by retrying), std::runtime_error on I/O trouble.
  stored_report ingest(const scan_record& scan, const report_file& file, scanner::severity flag_threshold,
                       const std::string& expected_ruleset = {});

 private:
  // Moves the copies the report names out of the pack into evidence_dir/<scan
  // id>/<sha256>, each checked against its digest; deletes the pack.
  std::vector<evidence_record> take_evidence(const scan_record& scan, const std::filesystem::path& pack,
                                             const std::set<std::string>& named) const;
  evidence_record copy_out(const std::filesystem::path& pack, const scanner::evidence_record& r,
                           const std::filesystem::path& dir) const;

  report_store& store_;
  ingest_settings settings_;
};

}  // namespace borderscan::server
