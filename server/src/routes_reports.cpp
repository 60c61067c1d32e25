// Reports: the list, one scan's report, and the pages of its files. The
// report and file-page handlers read the report store and nothing else, so
// that a new store interface changes only their bodies.
#include <algorithm>
#include <array>
#include <fstream>
#include <system_error>

#include <spdlog/spdlog.h>

#include "borderscan/evidence/report_signature.hpp"
#include "borderscan/scanner/digest.hpp"
#include "borderscan/scanner/text.hpp"
#include "borderscan/server/body_stream.hpp"
#include "handler_support.hpp"

namespace borderscan::server {

using namespace handlers;

namespace {

// File rows per store call while a page streams.
constexpr unsigned file_batch_rows = 100;

const name_set verdicts = {"clean", "flagged", "incomplete", "error", "cleared_false_positive"};
const name_set review_states = {"unreviewed", "cleared",  "confirmed",   "escalated",
                                "pending",    "reviewed", "not_required"};

json summary_json(const scan_record& s) {
  json j = scan_identity_json(s);
  j["review_state"] = s.review_state;  // the last decision, or unreviewed
  j["review"] = review_state_of(s);    // pending, reviewed, not_required
  j["derived_verdict"] = s.derived_verdict ? json(*s.derived_verdict) : j["verdict"];
  j["top_findings"] = json::parse(s.top_findings, nullptr, false);
  j["files"] = s.files;
  j["flagged_files"] = s.flagged_files;
  j["ruleset_digest"] = s.ruleset_digest;
  j["links"] = {{"report", "/api/v1/scans/" + s.id + "/report"},
                {"files", "/api/v1/reports/" + s.id + "/files"},
                {"reviews", "/api/v1/reports/" + s.id + "/reviews"}};
  return j;
}

// A stored file entry with each marked finding's disposition beside it.
std::string with_dispositions(const std::string& row, const json& marks) {
  json entry = json::parse(row, nullptr, false);
  if (!entry.is_object() || !entry.contains("findings")) {
    return row;
  }
  bool changed = false;
  for (auto& f : entry["findings"]) {
    if (f.contains("id") && marks.contains(f["id"].get<std::string>())) {
      f["disposition"] = marks[f["id"].get<std::string>()];
      changed = true;
    }
  }
  return changed ? entry.dump(-1, ' ', false, json::error_handler_t::replace) : row;
}

}  // namespace

response router::get_reports(const route_call& c) {
  query q(c.url, {"verdict", "review", "station", "case_ref", "since", "until", "limit", "cursor"});
  report_filter f;
  f.verdict = q.one_of("verdict", verdicts);
  f.review = q.one_of("review", review_states);
  f.station = q.text("station", 64);
  f.case_ref = q.text("case_ref", 256);
  if (c.who && c.who->role == role::station) {
    // A kiosk lists its own reports only.
    if (f.station && *f.station != c.who->name) {
      throw http_error(http::status::forbidden, "forbidden",
                       "station '" + c.who->name + "' may list only its own reports");
    }
    f.station = c.who->name;
  }
  read_range_and_page(q, f, 500, 50);
  const report_page page = store_.list_reports(f);
  json items = json::array();
  for (const auto& s : page.items) {
    items.push_back(summary_json(s));
  }
  return page_response(std::move(items), page.next_seq);
}

response router::get_scan_report(const route_call& c) {
  const scan_record scan = existing_scan(c, store_);
  if (scan.status != scan_status::done) {
    throw http_error(http::status::conflict, "not-done",
                     std::string("the scan is ") + to_string(scan.status) +
                         (scan.status == scan_status::failed      ? " (" + scan.error + ") and has no report"
                          : scan.status == scan_status::cancelled ? " and has no report"
                                                                  : "; the report is not ready yet"));
  }
  const auto stored = store_.find_report(scan.id);
  if (!stored) {
    throw std::runtime_error("scan " + scan.id + " is done but has no stored report");
  }
  response r;
  r.message = response_message{http::status::ok, 11};
  r.message.set(http::field::content_type, "application/json");
  // The stored bytes, as the worker wrote them and the audit log pins them
  // (RFC 9530), streamed from the file: never whole in memory.
  std::array<std::uint8_t, 32> digest{};
  if (scanner::from_hex(stored->sha256, digest)) {
    r.message.set("Repr-Digest", "sha-256=:" + scanner::base64_encode(digest) + ":");
  }
  try {
    r.stream = std::make_unique<file_body_stream>(stored->path);
  } catch (const std::system_error& e) {
    throw std::runtime_error("scan " + scan.id + ": its stored report cannot be read: " + e.what());
  }
  // Reports are personal data: every read is on the record, before a byte leaves.
  store_.record("report_read", scan.id, {{"report_sha256", stored->sha256}}, c.by, clock_.now_ms());
  return r;
}

response router::delete_report(const route_call& c) {
  const std::string& id = scan_id(c);
  query(c.url, {});
  const purge_result purged = store_.purge(id, c.by, clock_.now_ms());
  switch (purged.result) {
    case purge_result::outcome::not_found:
      not_found("scan");
    case purge_result::outcome::active:
      throw http_error(http::status::conflict, "not-finished",
                       "the scan is still queued or running; cancel it first, then purge it");
    case purge_result::outcome::purged:
      break;
  }
  // The rows are gone (committed); now the files. A file that cannot be
  // removed is logged: the audit entry already says it was purged.
  std::error_code ec;
  for (const std::string& path : {purged.report_path, purged.image_kept ? purged.spool_path : std::string()}) {
    if (!path.empty() && !std::filesystem::remove(path, ec) && ec) {
      spdlog::error("request={} purge of {}: cannot remove {}: {}", c.request_id, id, path, ec.message());
    }
  }
  if (!settings_.evidence_dir.empty()) {
    std::filesystem::remove_all(settings_.evidence_dir / id, ec);
    if (ec) {
      spdlog::error("request={} purge of {}: cannot remove its evidence: {}", c.request_id, id, ec.message());
    }
  }
  spdlog::info("request={} job={} purged by {} (report sha256 {})", c.request_id, id, c.by.name,
               purged.report_sha256.empty() ? "none" : purged.report_sha256);
  return json_response(http::status::ok,
                       {{"id", id},
                        {"purged", true},
                        {"report_sha256", purged.report_sha256.empty() ? json(nullptr) : json(purged.report_sha256)},
                        {"image_deleted", purged.image_kept}});
}

namespace {

// A done scan's stored report, or the problem that says why there is none.
stored_report report_of(const scan_record& scan, report_store& store) {
  if (scan.status != scan_status::done) {
    throw http_error(http::status::conflict, "not-done",
                     std::string("the scan is ") + to_string(scan.status) + " and has no report");
  }
  auto stored = store.find_report(scan.id);
  if (!stored) {
    throw std::runtime_error("scan " + scan.id + " is done but has no stored report");
  }
  return std::move(*stored);
}

// Findings the overview carries at most; the rest are counted. An image
// decides how many findings its report has (a million copies of one file).
constexpr std::size_t overview_max_findings = 1000;

int severity_rank(const json& finding) {
  const auto level = scanner::parse_severity(finding.value("severity", ""));
  return level ? static_cast<int>(*level) : -1;
}

// The report document without its `files` array and with its weightiest
// findings only: what a reader needs first, small whatever the device held.
// The parser drops file entries and findings as it reads them (a bounded
// selection keeps the weightiest), so memory stays flat for any report.
json report_overview(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    throw std::runtime_error("the stored report " + file.string() + " cannot be opened");
  }
  struct kept {
    int rank;
    std::size_t order;
    json finding;
  };
  // Ordered strongest first (higher severity, then earlier in the report), so
  // the heap's top is the weakest kept: the first to give way.
  const auto stronger = [](const kept& a, const kept& b) {
    return a.rank != b.rank ? a.rank > b.rank : a.order < b.order;
  };
  std::vector<kept> heap;
  std::size_t total = 0;
  std::string top;
  const json::parser_callback_t select = [&](int depth, json::parse_event_t event, json& parsed) {
    if (depth == 1 && event == json::parse_event_t::key) {
      top = parsed.get<std::string>();
      return top != "files";
    }
    if (depth == 2 && event == json::parse_event_t::object_end && top == "findings") {
      kept k{severity_rank(parsed), total++, std::move(parsed)};
      if (heap.size() < overview_max_findings) {
        heap.push_back(std::move(k));
        std::push_heap(heap.begin(), heap.end(), stronger);
      } else if (k.rank > heap.front().rank) {  // later in the report: only a higher severity wins
        std::pop_heap(heap.begin(), heap.end(), stronger);
        heap.back() = std::move(k);
        std::push_heap(heap.begin(), heap.end(), stronger);
      }
      return false;
    }
    return true;
  };
  json doc = json::parse(in, select, false);
  if (!doc.is_object()) {
    throw std::runtime_error("the stored report " + file.string() + " is not a JSON object");
  }
  std::sort(heap.begin(), heap.end(), stronger);  // weightiest first, the report's order among equals
  json findings = json::array();
  for (auto& k : heap) {
    findings.push_back(std::move(k.finding));
  }
  doc["findings"] = std::move(findings);
  if (total > heap.size()) {
    doc["findings_truncated"] = {{"shown", heap.size()}, {"total", total}};
  }
  return doc;
}

std::string sha256_of_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    throw std::runtime_error("the stored report " + file.string() + " cannot be opened");
  }
  scanner::sha256_hasher hasher;
  std::array<char, 1 << 16> block{};
  while (in.read(block.data(), block.size()) || in.gcount() > 0) {
    hasher.update(block.data(), static_cast<std::size_t>(in.gcount()));
  }
  return hasher.hex_digest();
}

}  // namespace

response router::get_report_overview(const route_call& c) {
  const scan_record scan = existing_scan(c, store_);
  const stored_report stored = report_of(scan, store_);
  json doc = report_overview(stored.path);
  store_.record("report_read", scan.id, {{"report_sha256", stored.sha256}, {"part", "overview"}}, c.by,
                clock_.now_ms());
  return json_response(http::status::ok, doc);
}

response router::get_report_verification(const route_call& c) {
  const scan_record scan = existing_scan(c, store_);
  const stored_report stored = report_of(scan, store_);
  // The file against the digest the store and the audit chain pin, then its
  // signature against this daemon's key: either failing means it was changed.
  const std::string actual = sha256_of_file(stored.path);
  json out = {{"report_sha256", stored.sha256},
              {"stored_digest_ok", actual == stored.sha256},
              {"signed", false},
              {"signature", nullptr},
              {"signature_valid", nullptr},
              {"key_is_current", false},
              {"detail", nullptr}};
  if (!settings_.signing_key_pem.empty()) {
    const auto key = evidence::public_key::from_pem(settings_.signing_key_pem);
    const auto outcome = evidence::verify_report_file(stored.path, key);
    if (outcome.result != evidence::verification::not_signed) {
      out["signed"] = true;
      out["signature"] = {{"alg", "Ed25519"}, {"key_id", outcome.key_id}};
      out["signature_valid"] = outcome.result == evidence::verification::valid;
      out["key_is_current"] = outcome.key_id == key.key_id();
    }
    if (!outcome.detail.empty()) {
      out["detail"] = outcome.detail;
    }
  }
  return json_response(http::status::ok, out);
}

response router::get_file_types(const route_call& c) {
  const scan_record scan = existing_scan(c, store_);
  const auto types = store_.file_types(scan.id);
  if (!types) {
    throw http_error(http::status::conflict, "not-done", "the scan has no report yet");
  }
  json items = json::array();
  for (const auto& t : *types) {
    items.push_back({{"mime", t.mime}, {"files", t.files}, {"bytes", t.bytes}});
  }
  return json_response(http::status::ok, {{"items", std::move(items)}});
}

response router::get_signing_key(const route_call& c) {
  query(c.url, {});
  if (settings_.signing_key_pem.empty()) {
    not_found("signing key (this daemon does not sign reports)");
  }
  response r;
  r.message = response_message{http::status::ok, 11};
  r.message.set(http::field::content_type, "application/x-pem-file");
  r.message.body() = settings_.signing_key_pem;
  return r;
}

response router::get_report_files(const route_call& c) {
  const std::string& id = scan_id(c);
  query q(c.url, {"flagged", "deleted", "mime", "q", "limit", "cursor"});
  file_filter f;
  f.flagged = q.boolean("flagged");
  f.deleted = q.boolean("deleted");
  f.mime = q.text("mime", 256);
  f.path_contains = q.text("q", 1024);
  f.limit = static_cast<unsigned>(q.integer("limit", 1, 1000).value_or(100));
  f.after_index = q.cursor();
  // The rows stream in batches, each a short store call, so a page of a
  // thousand entries never sits whole in memory; the first batch is read
  // here, to answer 404 or 409 before the head.
  const unsigned page_limit = f.limit;
  f.limit = std::min(page_limit, file_batch_rows);
  const auto scan = store_.find_scan(id);
  if (!scan) {
    not_found("report");
  }
  check_may_see(c, *scan);
  auto batch = store_.list_files(id, f);
  if (!batch) {
    throw http_error(http::status::conflict, "not-done", "the scan has no report yet");
  }
  // Reviewers see their colleagues' false-positive marks beside each finding.
  json marks = json::object();
  if (c.who && c.who->role != role::station) {
    marks = current_dispositions(store_.list_dispositions(id).value_or(std::vector<disposition_record>{}));
  }
  store_.record(
      "files_read", id,
      {{"cursor", f.after_index ? json("c" + std::to_string(*f.after_index)) : json(nullptr)}, {"limit", page_limit}},
      c.by, clock_.now_ms());
  response r;
  r.message = response_message{http::status::ok, 11};
  r.message.set(http::field::content_type, "application/json");
  r.stream =
      std::make_unique<chunked_body_stream>([this, id, f, marks = std::move(marks), left = page_limit,
                                             batch = std::move(*batch), opened = false, ended = false]() mutable {
        if (ended) {
          return std::string();
        }
        std::string piece = opened ? "" : "{\"items\":[";
        for (std::size_t i = 0; i < batch.items.size(); ++i) {
          std::string& row = batch.items[i];
          if (!marks.empty()) {
            row = with_dispositions(row, marks);
          }
          // Each entry says where it is in the report: the content and hash-search routes name files by it.
          if (row.starts_with('{') && i < batch.indexes.size()) {
            row = "{\"index\":" + std::to_string(batch.indexes[i]) + "," + row.substr(1);
          }
          piece += (opened && piece.empty()) || piece.back() != '[' ? "," + row : row;
          --left;
        }
        opened = true;
        if (batch.next_index && left > 0) {
          f.after_index = batch.next_index;
          f.limit = std::min(left, file_batch_rows);
          batch = store_.list_files(id, f).value_or(file_page{});
        } else {
          // A page ends at its limit; when rows remain, the cursor continues after its last.
          piece += "],\"next_cursor\":" +
                   (batch.next_index ? "\"c" + std::to_string(*batch.next_index) + "\"" : std::string("null")) + "}";
          ended = true;
        }
        return piece;
      });
  return r;
}

}  // namespace borderscan::server
