#pragma once
// Persistence of scans (which double as the job queue) and their reports.
// One interface, so that the PostgreSQL backend of larger deployments is a
// second implementation. Implementations are thread-safe: the HTTP threads
// and the workers call them concurrently.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "borderscan/scanner/report.hpp"
#include "borderscan/server/access.hpp"

namespace borderscan::server {

enum class scan_status { queued, running, done, failed, cancelled };
const char* to_string(scan_status s) noexcept;
std::optional<scan_status> parse_scan_status(std::string_view text) noexcept;

struct scan_record {
  std::string id;
  std::int64_t seq = 0;  // insertion order, assigned by the store
  scan_status status = scan_status::queued;
  std::string station, label, case_ref, filename;
  std::string image_sha256;
  std::uint64_t image_size = 0;
  std::string spool_path;
  std::int64_t submitted_at = 0;  // Unix ms
  std::optional<std::int64_t> started_at, finished_at;
  unsigned attempts = 0;
  std::string error;  // last failure reason
  // Filled when done.
  std::optional<std::string> verdict;
  // The verdict once reviewers' false-positive marks count: the report's
  // verdict, or cleared_false_positive when every finding that flagged it is
  // marked a false positive (the report itself is never changed).
  std::optional<std::string> derived_verdict;
  std::optional<int> score;
  std::string top_findings = "[]";  // JSON: the weightiest findings, for triage
  std::string ruleset_digest;
  std::string review_state = "unreviewed";
  std::uint64_t files = 0, flagged_files = 0;
  std::uint64_t bytes_scanned = 0;  // content bytes read, archive members included (done scans)
  // Set while the spooled image is kept after the scan ended (retention);
  // the sweep deletes it at this time (Unix ms).
  std::optional<std::int64_t> image_kept_until;
  std::optional<actor> cancelled_by;  // status cancelled: who asked
  // Running: the last progress its node wrote (set_progress), as a JSON
  // object of files_done, files_found, bytes_done, bytes_total; "" before any.
  std::string progress;
};

// Who claims a scan, and for how long at a time: a running scan's lease is
// renewed by its node while it scans; once it lapses (the node died) any
// node queues the scan again.
struct node_lease {
  std::string node;
  std::int64_t length_ms = 30'000;
};

// One line of the audit log: what happened to a scan, its evidence or the
// service, and who did it. Written in the same transaction as the change it
// records. Each entry carries the SHA-256 of the one before (a hash chain),
// so an edited or deleted row shows (verify_audit).
struct audit_entry {
  std::int64_t seq = 0;
  std::int64_t at = 0;  // Unix ms
  // scan_submitted, scan_done, scan_failed, image_kept, image_deleted,
  // report_read, files_read, token_created, token_revoked
  std::string event;
  std::string scan_id;  // empty when the entry is about no scan
  nlohmann::json detail = nlohmann::json::object();
  actor by;
  std::string prev_sha256;  // the previous entry's sha256 ("" for the first)
  std::string sha256;       // of this entry's canonical form (audit_entry_digest)
};

// The canonical form an audit entry's sha256 covers: a JSON array of every
// field (the detail as its stored text) and the previous entry's digest.
std::string audit_entry_digest(const audit_entry& e, std::string_view detail_text);

// What verify_audit found: intact, or the first entry that is not what the
// chain says it was.
struct audit_check {
  std::int64_t entries = 0;
  std::optional<std::int64_t> first_bad_seq;
  std::string problem;
  bool intact() const noexcept { return !first_bad_seq; }
};

struct audit_filter {
  std::optional<std::string> scan_id, event;
  std::optional<std::int64_t> since, until;  // at, Unix ms, inclusive / exclusive
  std::optional<std::int64_t> before_seq;    // cursor
  // Set: entries after this seq, oldest first (a follower's cursor).
  std::optional<std::int64_t> after_seq;
  std::vector<std::string> events;  // any of these (with `event`, both must hold)
  unsigned limit = 100;
};

struct audit_page {
  std::vector<audit_entry> items;
  std::optional<std::int64_t> next_seq;
};

struct report_filter {
  // review: a decision (unreviewed, cleared, confirmed, escalated) or a
  // derived state (pending, reviewed, not_required; see review_state_of).
  // verdict: matched against the derived verdict (cleared_false_positive too).
  std::optional<std::string> verdict, review, station, case_ref;
  std::optional<std::int64_t> since, until;  // submitted_at, Unix ms, inclusive / exclusive
  std::optional<std::int64_t> before_seq;    // cursor: rows with seq below this
  unsigned limit = 50;
};

struct report_page {
  std::vector<scan_record> items;
  std::optional<std::int64_t> next_seq;  // set when more rows may follow
};

struct file_filter {
  std::optional<bool> flagged, deleted;
  std::optional<std::string> mime;
  std::optional<std::string> path_contains;  // case-insensitive (ASCII letters)
  std::optional<std::int64_t> after_index;   // cursor
  unsigned limit = 100;
};

// How many entries of a report have one content type, and their bytes.
struct file_type_count {
  std::string mime;  // empty: no content read (directories, unreadable entries)
  std::uint64_t files = 0, bytes = 0;
};

struct file_page {
  std::vector<std::string> items;     // each a file entry's JSON text, as stored
  std::vector<std::int64_t> indexes;  // the position of each in the report's files
  std::optional<std::int64_t> next_index;
};

// One file entry of a report, as stored for paging and filtering.
struct report_file_row {
  std::int64_t index = 0;  // position in the report's files
  std::string path;
  bool deleted = false;
  std::string mime;
  bool flagged = false;           // a finding at or above the flag threshold
  std::string json;               // the entry's JSON text
  std::string md5, sha1, sha256;  // empty when the content was not read whole
};

// One finding of a report, as stored for dispositions and triage.
struct report_finding_row {
  std::string id;  // scanner::finding_id
  std::string path, source, rule, severity;
  bool flagging = false;  // at or above the flag threshold: it made the report flagged
};

// A reviewer's mark on one finding; the last one of a finding counts.
struct disposition_record {
  std::int64_t seq = 0;
  std::int64_t at = 0;  // Unix ms
  std::string finding_id;
  bool false_positive = true;
  std::string note;
  std::string reviewer, role;
};

struct disposition_result {
  enum class outcome { recorded, no_scan, not_done, no_finding } result = outcome::no_scan;
  std::string derived_verdict;  // recorded: the report's verdict with the marks counted
};

// "Seen before?": where content with one hash appeared, newest first.
struct hash_query {
  std::string algorithm;  // md5, sha1, sha256
  std::string value;      // lower-case hex
  // Cursor: rows before this (scan seq, file index).
  std::optional<std::pair<std::int64_t, std::int64_t>> before;
  unsigned limit = 50;
};

struct hash_hit {
  scan_record scan;
  std::int64_t index = 0;  // the file's position in the report
  std::string path;
  bool deleted = false;
  bool flagged = false;
};

struct hash_page {
  std::vector<hash_hit> items;
  std::optional<std::pair<std::int64_t, std::int64_t>> next;
};

// A kept copy of a flagged file's content (evidence), by its SHA-256: the
// same content in one scan is kept once.
struct evidence_record {
  std::string sha256;
  std::uint64_t size = 0;
  std::string path;                        // the copy, under the evidence folder
  std::optional<std::int64_t> kept_until;  // Unix ms; none: until the report is purged
  std::string state = "kept";              // kept, expired (deleted by the sweep)
};

// A finished scan's report: where its document is, and the summary columns.
struct stored_report {
  std::string path;  // the report file, read only from here on
  std::uint64_t size = 0;
  std::string sha256;  // of the file: the audit log pins it
  std::string verdict;
  int score = 0;
  std::string ruleset_digest;
  std::uint64_t files = 0, flagged_files = 0, bytes = 0;
  // The verdict the report would have without its flagging findings (clean,
  // incomplete or error): what it becomes when all of them are false positives.
  std::string verdict_without_flags = "clean";
  std::string top_findings = "[]";  // JSON array of {id, rule, severity, path, source}
  // Copies of flagged files checked against the report and put in place
  // (report_ingest); recorded with add_evidence once the scan is done.
  std::vector<evidence_record> evidence;
};

// One inspector's decision on a report. Reports themselves are never edited
// (they stay signed as produced); reviews are kept beside them, in order.
struct review_record {
  std::int64_t seq = 0;
  std::int64_t at = 0;   // Unix ms
  std::string decision;  // cleared, confirmed, escalated
  std::string note;
  std::string reviewer;  // the token's name
  std::string role;
};

// The review state a report is in, from its verdict and its last decision:
// `reviewed` once any decision is recorded, else `pending` for a report that
// needs a look (flagged, incomplete, error) and `not_required` for a clean one.
std::string review_state_of(const scan_record& scan);

// The rule set every node of one store scans with (several nodes on one
// PostgreSQL database; a single node keeps it too): set by the node that
// loaded rules last (its start, a reload); the others follow it.
struct cluster_ruleset {
  std::string digest;  // "sha256:<hex>", as reports name it
  std::int64_t yara_rules = 0;
  std::string node;         // the node that set it
  std::int64_t set_at = 0;  // Unix ms
};

// What purge() removed (the files are the caller's to delete after it).
struct purge_result {
  enum class outcome { purged, not_found, active } result = outcome::not_found;
  std::string report_path;    // empty when the scan had no report
  std::string report_sha256;  // likewise
  std::string spool_path;     // the image, when it was still kept
  bool image_kept = false;
};

class report_store {
 public:
  virtual ~report_store() = default;

  // A new scan in state queued; seq is assigned. Audited (scan_submitted).
  virtual void add_scan(scan_record& scan, const actor& by) = 0;
  virtual std::optional<scan_record> find_scan(std::string_view id) = 0;
  // Oldest queued scan becomes running (attempts + 1, started_at = now),
  // leased to lease.node until now + lease.length_ms.
  virtual std::optional<scan_record> claim_next(std::int64_t now_ms, const node_lease& lease) = 0;
  // Extends the leases of the node's running scans; returns the ids of those
  // it still holds (a scan missing from them was taken away: do not finish it).
  virtual std::vector<std::string> renew_leases(const node_lease& lease, std::int64_t now_ms) = 0;
  // Running scans whose lease lapsed before now (their node died or hangs):
  // queued again, or failed when they have used up max_attempts (audited,
  // scan_requeued / scan_failed). Returns how many were queued.
  virtual std::size_t requeue_expired(unsigned max_attempts, std::int64_t now_ms, std::int64_t keep_failed_ms) = 0;
  // Back to queued; the attempt is given back when it was not the job's fault.
  virtual void requeue(std::string_view id, std::string_view reason, bool count_attempt) = 0;
  // Start-up: scans this node (or a version without leases) left running are
  // queued again, or failed when they have used up max_attempts (audited;
  // their image kept for keep_failed_ms when that is not 0). Other nodes'
  // running scans are theirs (requeue_expired). Returns how many were queued.
  virtual std::size_t recover_running(std::string_view node, unsigned max_attempts, std::int64_t now_ms,
                                      std::int64_t keep_failed_ms) = 0;
  // A report is stored in steps, so that no lock is held while a large one is
  // read: begin_report clears rows an earlier attempt left; add_report_rows
  // adds file rows in batches as the report is read (invisible until done);
  // complete records where the document is and its summary, status done.
  // Audited (scan_done, with the document's SHA-256).
  virtual void begin_report(std::string_view id) = 0;
  virtual void add_report_rows(std::string_view id, const std::vector<report_file_row>& rows) = 0;
  virtual void add_report_findings(std::string_view id, const std::vector<report_finding_row>& rows) = 0;
  virtual void complete(std::string_view id, const stored_report& report, std::int64_t now_ms) = 0;
  // A running scan's progress (JSON text, see scan_record::progress), written
  // by its node now and then so that every node can show it. Not audited.
  virtual void set_progress(std::string_view id, std::string_view progress_json) = 0;
  // Status failed with the reason. Audited (scan_failed).
  virtual void fail(std::string_view id, std::string_view reason, std::int64_t now_ms) = 0;
  // queued -> cancelled atomically; false if the scan was not queued.
  // Audited (scan_cancelled, by whom).
  virtual bool cancel_queued(std::string_view id, std::int64_t now_ms, const actor& by) = 0;
  // A running scan whose worker stopped on a cancel -> cancelled, naming who
  // asked. Audited (scan_cancelled).
  virtual void mark_cancelled(std::string_view id, std::int64_t now_ms, const actor& by) = 0;

  // Retention of spooled images after their scan ended. keep_image records
  // until when (image_kept); expired_images lists those due at now;
  // image_deleted clears the mark once the file is gone (image_deleted).
  virtual void keep_image(std::string_view id, std::int64_t until_ms, std::int64_t now_ms) = 0;
  virtual std::vector<scan_record> expired_images(std::int64_t now_ms) = 0;
  virtual void image_deleted(std::string_view id, std::string_view reason, std::int64_t now_ms) = 0;
  virtual audit_page list_audit(const audit_filter& filter) = 0;
  // An audit entry for something that changes no other row: a report or
  // evidence read, for instance.
  virtual void record(std::string_view event, std::string_view scan_id, const nlohmann::json& detail, const actor& by,
                      std::int64_t now_ms) = 0;
  // Walks the whole chain: each entry's digest and its link to the one before.
  virtual audit_check verify_audit() = 0;

  // Appends a review to a done scan's report and makes its decision the
  // scan's review_state; audited (review_recorded). False when there is no
  // done scan with that id.
  virtual bool add_review(std::string_view id, const review_record& review, const actor& by) = 0;
  // Oldest first; nothing when the scan does not exist.
  virtual std::optional<std::vector<review_record>> list_reviews(std::string_view id) = 0;
  // Marks one finding of a done scan's report (false positive or not) and
  // recomputes the scan's derived verdict; audited (disposition_recorded).
  virtual disposition_result add_disposition(std::string_view id, const disposition_record& mark, const actor& by) = 0;
  // Oldest first; nothing when the scan does not exist.
  virtual std::optional<std::vector<disposition_record>> list_dispositions(std::string_view id) = 0;
  // Files of done reports with this hash, newest scan first.
  virtual hash_page find_by_hash(const hash_query& q) = 0;

  // Removes a finished (done or failed) scan: its row, report document row
  // and file rows, in one transaction, audited (report_purged, with the
  // report's SHA-256). `active` for a queued or running scan (nothing done).
  virtual purge_result purge(std::string_view id, const actor& by, std::int64_t now_ms) = 0;

  // API tokens. add_token is false when the name is taken; revoke_token false
  // when there is no such token. Both audited (token_created, token_revoked).
  virtual bool add_token(const token_record& token, const actor& by) = 0;
  virtual std::vector<token_record> list_tokens() = 0;
  virtual bool revoke_token(std::string_view name, const actor& by, std::int64_t now_ms) = 0;

  // Evidence copies of a done scan, recorded once they are in place;
  // audited (evidence_kept, with how many and how large).
  virtual void add_evidence(std::string_view id, const std::vector<evidence_record>& kept, std::int64_t now_ms) = 0;
  virtual std::optional<evidence_record> find_evidence(std::string_view id, std::string_view sha256) = 0;
  // Copies whose time has come (scan id and record), and marking one deleted (evidence_purged).
  virtual std::vector<std::pair<std::string, evidence_record>> expired_evidence(std::int64_t now_ms) = 0;
  virtual void evidence_expired(std::string_view id, std::string_view sha256, std::int64_t now_ms) = 0;
  // One file entry of a done scan's report (its JSON text), by position.
  virtual std::optional<std::string> find_file(std::string_view id, std::int64_t index) = 0;

  // The report of a done scan.
  virtual std::optional<stored_report> find_report(std::string_view id) = 0;
  virtual report_page list_reports(const report_filter& filter) = 0;
  virtual std::optional<file_page> list_files(std::string_view id, const file_filter& filter) = 0;
  // The report's entries by content type, most entries first; nothing when
  // the scan has no report.
  virtual std::optional<std::vector<file_type_count>> file_types(std::string_view id) = 0;

  virtual std::size_t count(scan_status status) = 0;
  // Scans queued or running, in queue order (at most the queue's capacity).
  virtual std::vector<scan_record> active_scans() = 0;
  // Every spool path still needed: queued or running scans, and images kept
  // for retention.
  virtual std::vector<std::string> live_spool_paths() = 0;
  // The cluster's rule set; none before any node has set one.
  virtual std::optional<cluster_ruleset> cluster_rules() = 0;
  // Makes `rules` the cluster's rule set; returns the one it replaced. Not
  // audited here: the caller records the reload it belongs to.
  virtual std::optional<cluster_ruleset> set_cluster_rules(const cluster_ruleset& rules) = 0;

  // A cheap write probe for /readyz.
  virtual bool writable() = 0;
};

}  // namespace borderscan::server
