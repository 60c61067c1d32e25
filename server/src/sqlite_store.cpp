#include "borderscan/server/sqlite_store.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <span>

#include <sstream>
#include <stdexcept>

#include "borderscan/scanner/atomic_file.hpp"
#include "borderscan/scanner/digest.hpp"
#include "borderscan/server/system.hpp"
#include "borderscan/server/upload.hpp"
#include "store_rules.hpp"

namespace borderscan::server {
namespace {

// Each entry moves the schema from version i to i + 1. Never edit a shipped
// entry: append a new one.
constexpr const char* migrations[] = {
    R"sql(
CREATE TABLE scans (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  status TEXT NOT NULL,
  station TEXT NOT NULL DEFAULT '',
  label TEXT NOT NULL DEFAULT '',
  case_ref TEXT NOT NULL DEFAULT '',
  filename TEXT NOT NULL DEFAULT '',
  image_sha256 TEXT NOT NULL,
  image_size INTEGER NOT NULL,
  spool_path TEXT NOT NULL,
  submitted_at INTEGER NOT NULL,
  started_at INTEGER,
  finished_at INTEGER,
  attempts INTEGER NOT NULL DEFAULT 0,
  error TEXT NOT NULL DEFAULT '',
  verdict TEXT,
  score INTEGER,
  ruleset_digest TEXT NOT NULL DEFAULT '',
  review_state TEXT NOT NULL DEFAULT 'unreviewed',
  files INTEGER NOT NULL DEFAULT 0,
  flagged_files INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX scans_by_status ON scans(status, seq);
CREATE INDEX scans_by_verdict ON scans(verdict, seq);
CREATE INDEX scans_by_station ON scans(station, seq);
CREATE INDEX scans_by_submitted ON scans(submitted_at);
CREATE TABLE reports (
  scan_seq INTEGER PRIMARY KEY REFERENCES scans(seq) ON DELETE CASCADE,
  json TEXT NOT NULL
);
CREATE TABLE report_files (
  scan_seq INTEGER NOT NULL REFERENCES scans(seq) ON DELETE CASCADE,
  idx INTEGER NOT NULL,
  path TEXT NOT NULL,
  deleted INTEGER NOT NULL,
  mime TEXT NOT NULL,
  flagged INTEGER NOT NULL,
  json TEXT NOT NULL,
  PRIMARY KEY (scan_seq, idx)
) WITHOUT ROWID;
CREATE INDEX report_files_by_flagged ON report_files(scan_seq, flagged, idx);
)sql",
    // 2: retention of spooled images after their scan, and the audit log.
    R"sql(
ALTER TABLE scans ADD COLUMN image_kept_until INTEGER;
CREATE INDEX scans_by_kept_until ON scans(image_kept_until) WHERE image_kept_until IS NOT NULL;
CREATE TABLE audit_log (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  event TEXT NOT NULL,
  scan_id TEXT NOT NULL,
  detail TEXT NOT NULL
);
CREATE INDEX audit_by_scan ON audit_log(scan_id, seq);
CREATE INDEX audit_by_event ON audit_log(event, seq);
)sql",
    // 3: bytes scanned, so a finished scan's progress still says how much was read.
    R"sql(
ALTER TABLE scans ADD COLUMN bytes_scanned INTEGER NOT NULL DEFAULT 0;
)sql",
    // 4: report documents live in files (written once by the worker, served
    // as streams); the database keeps where, how long and their SHA-256.
    // move_reports_to_files() moves the documents of version 3 out first.
    R"sql(
CREATE TABLE report_documents (
  scan_seq INTEGER PRIMARY KEY REFERENCES scans(seq) ON DELETE CASCADE,
  path TEXT NOT NULL,
  size INTEGER NOT NULL,
  sha256 TEXT NOT NULL
);
)sql",
    // 5: access control and a provable audit trail. Audit entries name who
    // acted and link to the entry before (seal_audit_chain() seals the rows
    // of version 4); tokens are stored as SHA-256 digests only.
    R"sql(
ALTER TABLE audit_log ADD COLUMN actor_name TEXT NOT NULL DEFAULT 'system';
ALTER TABLE audit_log ADD COLUMN actor_role TEXT NOT NULL DEFAULT 'system';
ALTER TABLE audit_log ADD COLUMN request_id TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_log ADD COLUMN client TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_log ADD COLUMN prev_sha256 TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_log ADD COLUMN sha256 TEXT NOT NULL DEFAULT '';
CREATE TABLE tokens (
  name TEXT PRIMARY KEY,
  role TEXT NOT NULL,
  digest BLOB NOT NULL UNIQUE,
  created_at INTEGER NOT NULL
);
)sql",
    // 6: inspectors' reviews of reports, oldest first; the case reference
    // is a filter of the review queue.
    R"sql(
CREATE TABLE reviews (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  scan_seq INTEGER NOT NULL REFERENCES scans(seq) ON DELETE CASCADE,
  at INTEGER NOT NULL,
  decision TEXT NOT NULL,
  note TEXT NOT NULL,
  reviewer TEXT NOT NULL,
  role TEXT NOT NULL
);
CREATE INDEX reviews_by_scan ON reviews(scan_seq, seq);
CREATE INDEX scans_by_case_ref ON scans(case_ref, seq);
)sql",
    // 7: the review workflow. Cancelled scans have their own status and say
    // who cancelled them; findings are stored per report (dispositions,
    // triage), reviewers mark them false positives, and the derived verdict
    // counts those marks; file hashes are indexed ("seen before?").
    R"sql(
ALTER TABLE scans ADD COLUMN cancelled_by TEXT;
UPDATE scans SET status = 'cancelled' WHERE status = 'failed' AND error = 'cancelled';
ALTER TABLE scans ADD COLUMN derived_verdict TEXT;
ALTER TABLE scans ADD COLUMN verdict_without_flags TEXT NOT NULL DEFAULT 'incomplete';
ALTER TABLE scans ADD COLUMN top_findings TEXT NOT NULL DEFAULT '[]';
UPDATE scans SET derived_verdict = verdict;
CREATE INDEX scans_by_derived_verdict ON scans(derived_verdict, seq);
CREATE TABLE report_findings (
  scan_seq INTEGER NOT NULL REFERENCES scans(seq) ON DELETE CASCADE,
  finding_id TEXT NOT NULL,
  path TEXT NOT NULL,
  source TEXT NOT NULL,
  rule TEXT NOT NULL,
  severity TEXT NOT NULL,
  flagging INTEGER NOT NULL,
  PRIMARY KEY (scan_seq, finding_id)
) WITHOUT ROWID;
CREATE TABLE dispositions (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  scan_seq INTEGER NOT NULL REFERENCES scans(seq) ON DELETE CASCADE,
  finding_id TEXT NOT NULL,
  at INTEGER NOT NULL,
  false_positive INTEGER NOT NULL,
  note TEXT NOT NULL,
  reviewer TEXT NOT NULL,
  role TEXT NOT NULL
);
CREATE INDEX dispositions_by_finding ON dispositions(scan_seq, finding_id, seq);
ALTER TABLE report_files ADD COLUMN md5 TEXT;
ALTER TABLE report_files ADD COLUMN sha1 TEXT;
ALTER TABLE report_files ADD COLUMN sha256 TEXT;
UPDATE report_files SET md5 = json_extract(json, '$.md5'), sha1 = json_extract(json, '$.sha1'),
  sha256 = json_extract(json, '$.sha256');
CREATE INDEX report_files_by_md5 ON report_files(md5) WHERE md5 IS NOT NULL;
CREATE INDEX report_files_by_sha1 ON report_files(sha1) WHERE sha1 IS NOT NULL;
CREATE INDEX report_files_by_sha256 ON report_files(sha256) WHERE sha256 IS NOT NULL;
)sql",
    // 8: copies of flagged files' content (evidence), kept for a while.
    R"sql(
CREATE TABLE evidence (
  scan_seq INTEGER NOT NULL REFERENCES scans(seq) ON DELETE CASCADE,
  sha256 TEXT NOT NULL,
  size INTEGER NOT NULL,
  path TEXT NOT NULL,
  kept_until INTEGER,
  state TEXT NOT NULL DEFAULT 'kept',
  PRIMARY KEY (scan_seq, sha256)
) WITHOUT ROWID;
CREATE INDEX evidence_by_kept_until ON evidence(kept_until) WHERE state = 'kept' AND kept_until IS NOT NULL;
)sql",
    // 9: leases of running scans (the same interface as the PostgreSQL store's
    // several nodes; here one node holds them all).
    R"sql(
ALTER TABLE scans ADD COLUMN lease_node TEXT NOT NULL DEFAULT '';
ALTER TABLE scans ADD COLUMN lease_until INTEGER;
ALTER TABLE scans ADD COLUMN progress TEXT NOT NULL DEFAULT '';
)sql",
    // 10: the rule set the nodes of this store scan with (one row).
    R"sql(
CREATE TABLE cluster_rules (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  digest TEXT NOT NULL,
  yara_rules INTEGER NOT NULL,
  node TEXT NOT NULL,
  set_at INTEGER NOT NULL
);
)sql",
};

[[noreturn]] void throw_sqlite(sqlite3* db, const std::string& what) {
  throw std::runtime_error("sqlite: " + what + ": " + (db != nullptr ? sqlite3_errmsg(db) : "out of memory"));
}

// A prepared statement, finalized on scope exit. Binding is 1-based.
class statement {
 public:
  statement(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK) {
      throw_sqlite(db, "prepare");
    }
  }
  ~statement() { sqlite3_finalize(stmt_); }
  statement(const statement&) = delete;
  statement& operator=(const statement&) = delete;

  statement& bind(int i, std::string_view v) {
    check(sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
    return *this;
  }
  statement& bind(int i, const char* v) { return bind(i, std::string_view(v)); }
  statement& bind(int i, const std::string& v) { return bind(i, std::string_view(v)); }
  statement& bind(int i, std::int64_t v) {
    check(sqlite3_bind_int64(stmt_, i, v));
    return *this;
  }
  statement& bind(int i, std::span<const std::uint8_t> blob) {
    check(sqlite3_bind_blob(stmt_, i, blob.data(), static_cast<int>(blob.size()), SQLITE_TRANSIENT));
    return *this;
  }
  statement& bind(int i, std::optional<std::int64_t> v) {
    check(v ? sqlite3_bind_int64(stmt_, i, *v) : sqlite3_bind_null(stmt_, i));
    return *this;
  }

  // True while rows come; false when done.
  bool step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) {
      return true;
    }
    if (rc == SQLITE_DONE) {
      return false;
    }
    throw_sqlite(db_, "step");
  }
  void run() {
    while (step()) {
    }
  }
  // Ready to bind and run again (batch inserts).
  void reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  std::int64_t integer(int col) const { return sqlite3_column_int64(stmt_, col); }
  bool is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  std::optional<std::int64_t> opt_integer(int col) const {
    return is_null(col) ? std::nullopt : std::optional(integer(col));
  }
  std::string text(int col) const {
    const auto* p = sqlite3_column_text(stmt_, col);
    return p != nullptr ? std::string(reinterpret_cast<const char*>(p),
                                      static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)))
                        : std::string();
  }

 private:
  void check(int rc) {
    if (rc != SQLITE_OK) {
      throw_sqlite(db_, "bind");
    }
  }
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

// Commits on commit(), rolls back otherwise (an exception on the way).
class transaction {
 public:
  explicit transaction(sqlite3* db) : db_(db) { exec("BEGIN IMMEDIATE"); }
  ~transaction() {
    if (!done_) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    }
  }
  void commit() {
    exec("COMMIT");
    done_ = true;
  }

 private:
  void exec(const char* sql) {
    if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
      throw_sqlite(db_, sql);
    }
  }
  sqlite3* db_;
  bool done_ = false;
};

constexpr const char* scan_columns =
    "seq, id, status, station, label, case_ref, filename, image_sha256, image_size, spool_path, submitted_at, "
    "started_at, finished_at, attempts, error, verdict, score, ruleset_digest, review_state, files, flagged_files, "
    "image_kept_until, bytes_scanned, derived_verdict, top_findings, cancelled_by, progress";
constexpr int scan_column_count = 27;  // read_scan reads columns 0 to 26

scan_record read_scan(const statement& s) {
  scan_record r;
  r.seq = s.integer(0);
  r.id = s.text(1);
  r.status = parse_scan_status(s.text(2)).value_or(scan_status::failed);
  r.station = s.text(3);
  r.label = s.text(4);
  r.case_ref = s.text(5);
  r.filename = s.text(6);
  r.image_sha256 = s.text(7);
  r.image_size = static_cast<std::uint64_t>(s.integer(8));
  r.spool_path = s.text(9);
  r.submitted_at = s.integer(10);
  r.started_at = s.opt_integer(11);
  r.finished_at = s.opt_integer(12);
  r.attempts = static_cast<unsigned>(s.integer(13));
  r.error = s.text(14);
  if (!s.is_null(15)) {
    r.verdict = s.text(15);
  }
  if (!s.is_null(16)) {
    r.score = static_cast<int>(s.integer(16));
  }
  r.ruleset_digest = s.text(17);
  r.review_state = s.text(18);
  r.files = static_cast<std::uint64_t>(s.integer(19));
  r.flagged_files = static_cast<std::uint64_t>(s.integer(20));
  r.image_kept_until = s.opt_integer(21);
  r.bytes_scanned = static_cast<std::uint64_t>(s.integer(22));
  if (!s.is_null(23)) {
    r.derived_verdict = s.text(23);
  }
  r.top_findings = s.text(24);
  if (!s.is_null(25)) {
    r.cancelled_by = store_rules::actor_from_text(s.text(25));
  }
  r.progress = s.text(26);
  return r;
}

// The rows of a scan's child table (reviews, dispositions) in order; nothing
// when there is no such scan. The query LEFT JOINs the child to the scan, so
// a scan without rows gives one row of NULLs.
template <class Row, class Read>
std::optional<std::vector<Row>> rows_of_scan(sqlite3* db, const char* sql, std::string_view id, Read read) {
  statement s(db, sql);
  s.bind(1, id);
  std::optional<std::vector<Row>> out;
  while (s.step()) {
    if (!out) {
      out.emplace();
    }
    if (!s.is_null(0)) {
      out->push_back(read(s));
    }
  }
  return out;
}

std::string select_scans(const char* where_and_order) {
  return std::string("SELECT ") + scan_columns + " FROM scans " + where_and_order;
}

}  // namespace

const char* to_string(scan_status s) noexcept {
  switch (s) {
    case scan_status::queued:
      return "queued";
    case scan_status::running:
      return "running";
    case scan_status::done:
      return "done";
    case scan_status::failed:
      return "failed";
    case scan_status::cancelled:
      return "cancelled";
  }
  return "failed";
}

std::optional<scan_status> parse_scan_status(std::string_view text) noexcept {
  for (auto s :
       {scan_status::queued, scan_status::running, scan_status::done, scan_status::failed, scan_status::cancelled}) {
    if (text == to_string(s)) {
      return s;
    }
  }
  return std::nullopt;
}

void sqlite_report_store::closer::operator()(sqlite3* db) const noexcept {
  sqlite3_close(db);
}

sqlite_report_store::sqlite_report_store(const std::filesystem::path& file, std::filesystem::path reports_dir)
    : reports_dir_(reports_dir.empty() ? file.parent_path() / "reports" : std::move(reports_dir)) {
  // The file holds travellers' personal data: owner only, whatever the
  // umask. SQLite gives its WAL and SHM files the database file's mode.
  if (const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600); fd >= 0) {
    ::fchmod(fd, 0600);
    ::close(fd);
  }
  sqlite3* raw = nullptr;
  const int rc =
      sqlite3_open_v2(file.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  handle_.reset(raw);  // closed on every path, also when opening failed
  if (rc != SQLITE_OK) {
    throw std::runtime_error("cannot open database " + file.string() + ": " +
                             (raw != nullptr ? sqlite3_errmsg(raw) : "out of memory"));
  }
  try {
    sqlite3_busy_timeout(db(), 5000);
    exec("PRAGMA journal_mode=WAL");
    // NORMAL is durable across process crashes in WAL mode; only a power
    // loss can drop the last transactions.
    exec("PRAGMA synchronous=NORMAL");
    exec("PRAGMA foreign_keys=ON");
    migrate();
  } catch (const std::exception& e) {
    throw std::runtime_error("database " + file.string() + ": " + e.what());
  }
}

sqlite_report_store::~sqlite_report_store() = default;

int sqlite_report_store::schema_version() noexcept {
  return static_cast<int>(std::size(migrations));
}

int sqlite_report_store::current_version() {
  std::lock_guard lock(mutex_);
  statement s(db(), "PRAGMA user_version");
  return s.step() ? static_cast<int>(s.integer(0)) : 0;
}

void sqlite_report_store::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db(), sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string why = err != nullptr ? err : "unknown error";
    sqlite3_free(err);
    throw std::runtime_error(why);
  }
}

void sqlite_report_store::migrate() {
  int version = 0;
  {
    statement s(db(), "PRAGMA user_version");
    version = s.step() ? static_cast<int>(s.integer(0)) : 0;
  }
  if (version > schema_version()) {
    throw std::runtime_error("schema version " + std::to_string(version) + " is newer than this build knows (" +
                             std::to_string(schema_version()) + "); refusing to touch it");
  }
  for (int v = version; v < schema_version(); ++v) {
    transaction tx(db());
    exec(migrations[v]);
    if (v + 1 == 4) {
      move_reports_to_files();
    }
    if (v + 1 == 5) {
      seal_audit_chain();
    }
    exec(("PRAGMA user_version=" + std::to_string(v + 1)).c_str());
    tx.commit();
  }
}

void sqlite_report_store::move_reports_to_files() {
  bool any = false;
  {
    statement s(db(), "SELECT r.scan_seq, s.id, r.json FROM reports r JOIN scans s ON s.seq = r.scan_seq");
    statement add(db(), "INSERT INTO report_documents (scan_seq, path, size, sha256) VALUES (?,?,?,?)");
    while (s.step()) {
      if (!any) {
        std::filesystem::create_directories(reports_dir_);
        any = true;
      }
      // The stored text, byte for byte: the audit log's report_sha256 names it.
      const std::string text = s.text(2);
      const auto path = reports_dir_ / (s.text(1) + ".json");
      scanner::write_file_atomically(path, text);
      add.bind(1, s.integer(0))
          .bind(2, path.string())
          .bind(3, static_cast<std::int64_t>(text.size()))
          .bind(4, scanner::sha256_hex(text))
          .run();
      add.reset();
    }
  }
  exec("DROP TABLE reports");
}

namespace {

constexpr const char* audit_columns =
    "seq, at, event, scan_id, detail, actor_name, actor_role, request_id, client, prev_sha256, sha256";

// The entry and its detail as stored text (the digest covers that text).
std::pair<audit_entry, std::string> read_audit(const statement& s) {
  audit_entry e;
  e.seq = s.integer(0);
  e.at = s.integer(1);
  e.event = s.text(2);
  e.scan_id = s.text(3);
  std::string detail = s.text(4);
  e.detail = nlohmann::json::parse(detail, nullptr, false);
  e.by = {s.text(5), s.text(6), s.text(7), s.text(8)};
  e.prev_sha256 = s.text(9);
  e.sha256 = s.text(10);
  return {std::move(e), std::move(detail)};
}

// The last entry's seq and digest; {0, ""} for an empty log.
std::pair<std::int64_t, std::string> audit_head(sqlite3* db) {
  statement s(db, "SELECT seq, sha256 FROM audit_log ORDER BY seq DESC LIMIT 1");
  if (!s.step()) {
    return {0, ""};
  }
  return {s.integer(0), s.text(1)};
}

}  // namespace

std::string audit_entry_digest(const audit_entry& e, std::string_view detail_text) {
  const nlohmann::json canonical = {e.seq,     e.at,      e.event,         e.scan_id,   detail_text,
                                    e.by.name, e.by.role, e.by.request_id, e.by.client, e.prev_sha256};
  return scanner::sha256_hex(canonical.dump());
}

void sqlite_report_store::audit(std::int64_t at, std::string_view event, std::string_view scan_id,
                                const nlohmann::json& detail, const actor& by) {
  // Callers hold a write transaction (BEGIN IMMEDIATE), so no other process
  // (the token CLI) appends between reading the head and inserting.
  const auto [last_seq, last_sha256] = audit_head(db());
  audit_entry e;
  e.seq = last_seq + 1;
  e.at = at;
  e.event = std::string(event);
  e.scan_id = std::string(scan_id);
  e.by = by;
  e.prev_sha256 = last_sha256;
  const std::string detail_text = detail.dump();
  statement s(db(),
              "INSERT INTO audit_log (seq, at, event, scan_id, detail, actor_name, actor_role, request_id, client, "
              "prev_sha256, sha256) VALUES (?,?,?,?,?,?,?,?,?,?,?)");
  s.bind(1, e.seq)
      .bind(2, at)
      .bind(3, event)
      .bind(4, scan_id)
      .bind(5, detail_text)
      .bind(6, by.name)
      .bind(7, by.role)
      .bind(8, by.request_id)
      .bind(9, by.client)
      .bind(10, e.prev_sha256)
      .bind(11, audit_entry_digest(e, detail_text))
      .run();
}

void sqlite_report_store::seal_audit_chain() {
  std::string prev;
  std::vector<std::pair<std::int64_t, std::string>> digests;
  {
    statement s(db(), (std::string("SELECT ") + audit_columns + " FROM audit_log ORDER BY seq").c_str());
    while (s.step()) {
      auto [e, detail] = read_audit(s);
      e.prev_sha256 = prev;
      prev = audit_entry_digest(e, detail);
      digests.emplace_back(e.seq, prev);
    }
  }
  statement u(db(), "UPDATE audit_log SET prev_sha256 = ?, sha256 = ? WHERE seq = ?");
  std::string before;
  for (const auto& [seq, digest] : digests) {
    u.bind(1, before).bind(2, digest).bind(3, seq).run();
    u.reset();
    before = digest;
  }
}

audit_check sqlite_report_store::verify_audit() {
  std::lock_guard lock(mutex_);
  store_rules::audit_chain_check check;
  statement s(db(), (std::string("SELECT ") + audit_columns + " FROM audit_log ORDER BY seq").c_str());
  while (s.step()) {
    const auto [e, detail] = read_audit(s);
    if (!check.add(e, detail)) {
      break;
    }
  }
  return check.result();
}

void sqlite_report_store::record(std::string_view event, std::string_view scan_id, const nlohmann::json& detail,
                                 const actor& by, std::int64_t now_ms) {
  std::lock_guard lock(mutex_);
  transaction tx(db());
  audit(now_ms, event, scan_id, detail, by);
  tx.commit();
}

std::string review_state_of(const scan_record& scan) {
  if (scan.review_state != "unreviewed") {
    return "reviewed";
  }
  return scan.verdict && *scan.verdict == "clean" ? "not_required" : "pending";
}

bool sqlite_report_store::add_review(std::string_view id, const review_record& review, const actor& by) {
  std::lock_guard lock(mutex_);
  transaction tx(db());
  const auto seq = done_seq_of(id);
  if (!seq) {
    return false;
  }
  statement add(db(), "INSERT INTO reviews (scan_seq, at, decision, note, reviewer, role) VALUES (?,?,?,?,?,?)");
  add.bind(1, *seq)
      .bind(2, review.at)
      .bind(3, review.decision)
      .bind(4, review.note)
      .bind(5, review.reviewer)
      .bind(6, review.role)
      .run();
  statement u(db(), "UPDATE scans SET review_state = ? WHERE seq = ?");
  u.bind(1, review.decision).bind(2, *seq).run();
  audit(review.at, "review_recorded", id, {{"decision", review.decision}, {"note", review.note}}, by);
  tx.commit();
  return true;
}

std::optional<std::vector<review_record>> sqlite_report_store::list_reviews(std::string_view id) {
  std::lock_guard lock(mutex_);
  return rows_of_scan<review_record>(db(),
                                     "SELECT r.seq, r.at, r.decision, r.note, r.reviewer, r.role FROM scans c LEFT "
                                     "JOIN reviews r ON r.scan_seq = c.seq WHERE c.id = ? ORDER BY r.seq",
                                     id, [](const statement& r) -> review_record {
                                       return {r.integer(0), r.integer(1), r.text(2), r.text(3), r.text(4), r.text(5)};
                                     });
}

disposition_result sqlite_report_store::add_disposition(std::string_view id, const disposition_record& mark,
                                                        const actor& by) {
  std::lock_guard lock(mutex_);
  transaction tx(db());
  disposition_result out;
  std::int64_t seq = 0;
  std::string verdict, without_flags;
  {
    statement s(db(), "SELECT seq, status, verdict, verdict_without_flags FROM scans WHERE id = ?");
    s.bind(1, id);
    if (!s.step()) {
      return out;
    }
    if (s.text(1) != "done") {
      out.result = disposition_result::outcome::not_done;
      return out;
    }
    seq = s.integer(0);
    verdict = s.text(2);
    without_flags = s.text(3);
  }
  std::string path, rule;
  {
    statement f(db(), "SELECT path, rule FROM report_findings WHERE scan_seq = ? AND finding_id = ?");
    f.bind(1, seq).bind(2, mark.finding_id);
    if (!f.step()) {
      out.result = disposition_result::outcome::no_finding;
      return out;
    }
    path = f.text(0);
    rule = f.text(1);
  }
  statement add(db(),
                "INSERT INTO dispositions (scan_seq, finding_id, at, false_positive, note, reviewer, role) VALUES "
                "(?,?,?,?,?,?,?)");
  add.bind(1, seq)
      .bind(2, mark.finding_id)
      .bind(3, mark.at)
      .bind(4, static_cast<std::int64_t>(mark.false_positive))
      .bind(5, mark.note)
      .bind(6, mark.reviewer)
      .bind(7, mark.role)
      .run();
  // Flagging findings whose last mark is not "false positive".
  statement left(db(),
                 "SELECT COUNT(*) FROM report_findings f WHERE f.scan_seq = ?1 AND f.flagging = 1 AND NOT COALESCE("
                 "(SELECT d.false_positive FROM dispositions d WHERE d.scan_seq = ?1 AND d.finding_id = f.finding_id "
                 "ORDER BY d.seq DESC LIMIT 1), 0)");
  left.bind(1, seq);
  const bool still_flagged = left.step() && left.integer(0) > 0;
  out.derived_verdict = store_rules::derived_verdict(verdict, without_flags, still_flagged);
  statement u(db(), "UPDATE scans SET derived_verdict = ? WHERE seq = ?");
  u.bind(1, out.derived_verdict).bind(2, seq).run();
  audit(mark.at, "disposition_recorded", id,
        {{"finding", mark.finding_id},
         {"path", path},
         {"rule", rule},
         {"false_positive", mark.false_positive},
         {"note", mark.note},
         {"derived_verdict", out.derived_verdict}},
        by);
  tx.commit();
  out.result = disposition_result::outcome::recorded;
  return out;
}

std::optional<std::vector<disposition_record>> sqlite_report_store::list_dispositions(std::string_view id) {
  std::lock_guard lock(mutex_);
  return rows_of_scan<disposition_record>(
      db(),
      "SELECT d.seq, d.at, d.finding_id, d.false_positive, d.note, d.reviewer, d.role FROM scans c LEFT JOIN "
      "dispositions d ON d.scan_seq = c.seq WHERE c.id = ? ORDER BY d.seq",
      id, [](const statement& d) -> disposition_record {
        return {d.integer(0), d.integer(1), d.text(2), d.integer(3) != 0, d.text(4), d.text(5), d.text(6)};
      });
}

hash_page sqlite_report_store::find_by_hash(const hash_query& q) {
  const char* column = q.algorithm == "md5" ? "md5" : q.algorithm == "sha1" ? "sha1" : "sha256";
  // The hash index gives (scan_seq, idx) in order (the table's key follows
  // the indexed column), so newest first is a backward walk of the index.
  // No column name of report_files is also one of scans.
  std::string sql = std::string("SELECT ") + scan_columns +
                    ", idx, path, deleted, flagged FROM report_files f JOIN scans s ON s.seq = f.scan_seq WHERE f." +
                    column + " = ? AND s.status = 'done'";
  if (q.before) {
    // A row value, so that the index seeks to the cursor instead of reading
    // every newer match to skip it (bench/hash-search.sh: 12 ms -> 0.08 ms
    // for a deep page of content seen in 900 reports).
    sql += " AND (f.scan_seq, f.idx) < (?, ?)";
  }
  sql += " ORDER BY f.scan_seq DESC, f.idx DESC LIMIT ?";
  std::lock_guard lock(mutex_);
  statement s(db(), sql.c_str());
  int i = 1;
  s.bind(i++, q.value);
  if (q.before) {
    s.bind(i, q.before->first).bind(i + 1, q.before->second);
    i += 2;
  }
  s.bind(i++, static_cast<std::int64_t>(q.limit) + 1);
  hash_page page;
  const int n = scan_column_count;
  while (s.step()) {
    if (page.items.size() == q.limit) {
      page.next = std::pair(page.items.back().scan.seq, page.items.back().index);
      break;
    }
    hash_hit hit;
    hit.scan = read_scan(s);
    hit.index = s.integer(n);
    hit.path = s.text(n + 1);
    hit.deleted = s.integer(n + 2) != 0;
    hit.flagged = s.integer(n + 3) != 0;
    page.items.push_back(std::move(hit));
  }
  return page;
}

purge_result sqlite_report_store::purge(std::string_view id, const actor& by, std::int64_t now_ms) {
  std::lock_guard lock(mutex_);
  transaction tx(db());
  purge_result out;
  std::int64_t seq = 0;
  std::string image_sha256;
  {
    statement s(db(), "SELECT seq, status, spool_path, image_kept_until, image_sha256 FROM scans WHERE id = ?");
    s.bind(1, id);
    if (!s.step()) {
      return out;
    }
    const auto status = parse_scan_status(s.text(1));
    if (status != scan_status::done && status != scan_status::failed && status != scan_status::cancelled) {
      out.result = purge_result::outcome::active;
      return out;
    }
    seq = s.integer(0);
    out.spool_path = s.text(2);
    out.image_kept = !s.is_null(3);
    image_sha256 = s.text(4);
  }
  {
    statement r(db(), "SELECT path, sha256 FROM report_documents WHERE scan_seq = ?");
    r.bind(1, seq);
    if (r.step()) {
      out.report_path = r.text(0);
      out.report_sha256 = r.text(1);
    }
  }
  for (const char* sql : {"DELETE FROM report_files WHERE scan_seq = ?",
                          "DELETE FROM report_findings WHERE scan_seq = ?", "DELETE FROM evidence WHERE scan_seq = ?",
                          "DELETE FROM dispositions WHERE scan_seq = ?", "DELETE FROM reviews WHERE scan_seq = ?",
                          "DELETE FROM report_documents WHERE scan_seq = ?", "DELETE FROM scans WHERE seq = ?"}) {
    statement d(db(), sql);
    d.bind(1, seq).run();
  }
  audit(now_ms, "report_purged", id,
        {{"report_sha256", out.report_sha256.empty() ? nlohmann::json(nullptr) : nlohmann::json(out.report_sha256)},
         {"image_sha256", image_sha256},
         {"image_deleted", out.image_kept}},
        by);
  tx.commit();
  out.result = purge_result::outcome::purged;
  return out;
}

bool sqlite_report_store::add_token(const token_record& token, const actor& by) {
  std::lock_guard lock(mutex_);
  transaction tx(db());
  statement s(db(), "INSERT INTO tokens (name, role, digest, created_at) VALUES (?,?,?,?) ON CONFLICT DO NOTHING");
  s.bind(1, token.name).bind(2, to_string(token.role)).bind(3, token.digest).bind(4, token.created_at).run();
  if (sqlite3_changes(db()) == 0) {
    return false;
  }
  audit(token.created_at, "token_created", "", {{"name", token.name}, {"role", to_string(token.role)}}, by);
  tx.commit();
  return true;
}

std::vector<token_record> sqlite_report_store::list_tokens() {
  std::lock_guard lock(mutex_);
  statement s(db(), "SELECT name, role, digest, created_at FROM tokens ORDER BY name");
  std::vector<token_record> out;
  while (s.step()) {
    token_record t;
    t.name = s.text(0);
    t.role = parse_role(s.text(1)).value_or(role::station);
    const std::string digest = s.text(2);
    std::copy_n(digest.begin(), std::min(digest.size(), t.digest.size()), t.digest.begin());
    t.created_at = s.integer(3);
    out.push_back(std::move(t));
  }
  return out;
}

bool sqlite_report_store::revoke_token(std::string_view name, const actor& by, std::int64_t now_ms) {
  std::lock_guard lock(mutex_);
  transaction tx(db());
  std::string role_name;
  {
    statement s(db(), "SELECT role FROM tokens WHERE name = ?");
    s.bind(1, name);
    if (!s.step()) {
      return false;
    }
    role_name = s.text(0);
  }
  statement d(db(), "DELETE FROM tokens WHERE name = ?");
  d.bind(1, name).run();
  audit(now_ms, "token_revoked", "", {{"name", name}, {"role", role_name}}, by);
  tx.commit();
  return true;
}

void sqlite_report_store::add_scan(scan_record& scan, const actor& by) {
  std::lock_guard lock(mutex_);
  transaction tx(db());
  statement s(db(),
              "INSERT INTO scans (id, status, station, label, case_ref, filename, image_sha256, image_size, "
              "spool_path, submitted_at) VALUES (?,?,?,?,?,?,?,?,?,?)");
  s.bind(1, scan.id)
      .bind(2, to_string(scan_status::queued))
      .bind(3, scan.station)
      .bind(4, scan.label)
      .bind(5, scan.case_ref)
      .bind(6, scan.filename)
      .bind(7, scan.image_sha256)
      .bind(8, static_cast<std::int64_t>(scan.image_size))
      .bind(9, scan.spool_path)
      .bind(10, scan.submitted_at);
  s.run();
  const std::int64_t seq = sqlite3_last_insert_rowid(db());
  audit(scan.submitted_at, "scan_submitted", scan.id,
        {{"station", scan.station},
         {"image_sha256", scan.image_sha256},
         {"size", scan.image_size},
         {"label", scan.label},
         {"case_ref", scan.case_ref},
         {"filename", scan.filename}},
        by);
  tx.commit();
  scan.seq = seq;
  scan.status = scan_status::queued;
}

std::optional<scan_record> sqlite_report_store::find_scan(std::string_view id) {
  std::lock_guard lock(mutex_);
  statement s(db(), select_scans("WHERE id = ?").c_str());
  s.bind(1, id);
  if (!s.step()) {
    return std::nullopt;
  }
  return read_scan(s);
}

std::optional<scan_record> sqlite_report_store::claim_next(std::int64_t now_ms, const node_lease& lease) {
  std::lock_guard lock(mutex_);
  transaction tx(db());
  std::optional<scan_record> out;
  {
    statement s(db(), select_scans("WHERE status = 'queued' ORDER BY seq LIMIT 1").c_str());
    if (!s.step()) {
      return std::nullopt;
    }
    out = read_scan(s);
  }
  statement u(db(),
              "UPDATE scans SET status = 'running', attempts = attempts + 1, started_at = ?, lease_node = ?, "
              "lease_until = ? WHERE seq = ?");
  u.bind(1, now_ms).bind(2, lease.node).bind(3, now_ms + lease.length_ms).bind(4, out->seq).run();
  tx.commit();
  out->status = scan_status::running;
  out->attempts += 1;
  out->started_at = now_ms;
  return out;
}

std::vector<std::string> sqlite_report_store::renew_leases(const node_lease& lease, std::int64_t now_ms) {
  std::lock_guard lock(mutex_);
  statement s(db(), "UPDATE scans SET lease_until = ? WHERE status = 'running' AND lease_node = ? RETURNING id");
  s.bind(1, now_ms + lease.length_ms).bind(2, lease.node);
  std::vector<std::string> held;
  while (s.step()) {
    held.push_back(s.text(0));
  }
  return held;
}

void sqlite_report_store::requeue(std::string_view id, std::string_view reason, bool count_attempt) {
  std::lock_guard lock(mutex_);
  statement s(db(), count_attempt ? "UPDATE scans SET status = 'queued', error = ? WHERE id = ?"
                                  : "UPDATE scans SET status = 'queued', error = ?, attempts = MAX(attempts - 1, 0) "
                                    "WHERE id = ?");
  s.bind(1, reason).bind(2, id).run();
}

template <typename Arg>
void sqlite_report_store::requeue_running(const char* select, Arg arg, store_rules::running_settlement& how) {
  struct found_scan {
    std::string id, node;
    std::int64_t attempts = 0;
  };
  std::vector<found_scan> found;
  {
    statement s(db(), select);
    s.bind(1, arg);
    while (s.step()) {
      found.push_back({s.text(0), s.text(2), s.integer(1)});
    }
  }
  for (const auto& scan : found) {
    const store_rules::running_outcome next = store_rules::settle_running(scan.attempts, how);
    if (next.failed) {
      statement f(db(),
                  "UPDATE scans SET status = 'failed', finished_at = ?, error = ?, image_kept_until = ?, "
                  "lease_node = '', lease_until = NULL WHERE id = ?");
      f.bind(1, how.now_ms).bind(2, next.reason).bind(3, next.image_kept_until).bind(4, scan.id).run();
      audit(how.now_ms, "scan_failed", scan.id, {{"reason", next.reason}});
      if (next.image_kept_until) {
        audit(how.now_ms, "image_kept", scan.id, {{"until", format_time(*next.image_kept_until)}});
      }
      continue;
    }
    statement q(db(),
                "UPDATE scans SET status = 'queued', error = ?, lease_node = '', lease_until = NULL WHERE id = ?");
    q.bind(1, how.requeue_reason).bind(2, scan.id).run();
    if (how.audited_requeue) {
      audit(how.now_ms, "scan_requeued", scan.id, {{"reason", how.requeue_reason}, {"node", scan.node}});
    }
    ++how.requeued;
  }
}

std::size_t sqlite_report_store::recover_running(std::string_view node, unsigned max_attempts, std::int64_t now_ms,
                                                 std::int64_t keep_failed_ms) {
  std::lock_guard lock(mutex_);
  transaction tx(db());
  store_rules::running_settlement how{.max_attempts = max_attempts,
                                      .now_ms = now_ms,
                                      .keep_failed_ms = keep_failed_ms,
                                      .requeue_reason = "the daemon stopped during the scan",
                                      .audited_requeue = false};
  // '': scans claimed before leases existed.
  requeue_running(
      "SELECT id, attempts, lease_node FROM scans WHERE status = 'running' AND lease_node IN (?, '') ORDER BY seq",
      node, how);
  tx.commit();
  return how.requeued;
}

std::size_t sqlite_report_store::requeue_expired(unsigned max_attempts, std::int64_t now_ms,
                                                 std::int64_t keep_failed_ms) {
  std::lock_guard lock(mutex_);
  transaction tx(db());
  store_rules::running_settlement how{.max_attempts = max_attempts,
                                      .now_ms = now_ms,
                                      .keep_failed_ms = keep_failed_ms,
                                      .requeue_reason = "its node stopped renewing the lease",
                                      .audited_requeue = true};
  requeue_running(
      "SELECT id, attempts, lease_node FROM scans WHERE status = 'running' AND lease_until < ? ORDER BY seq", now_ms,
      how);
  tx.commit();
  return how.requeued;
}

std::int64_t sqlite_report_store::seq_of(std::string_view id) {
  statement s(db(), "SELECT seq FROM scans WHERE id = ?");
  s.bind(1, id);
  if (!s.step()) {
    throw std::runtime_error("unknown scan " + std::string(id));
  }
  return s.integer(0);
}

std::optional<std::int64_t> sqlite_report_store::done_seq_of(std::string_view id) {
  statement s(db(), "SELECT seq FROM scans WHERE id = ? AND status = 'done'");
  s.bind(1, id);
  if (!s.step()) {
    return std::nullopt;
  }
  return s.integer(0);
}

void sqlite_report_store::begin_report(std::string_view id) {
  std::lock_guard lock(mutex_);
  const std::int64_t seq = seq_of(id);
  for (const char* sql :
       {"DELETE FROM report_files WHERE scan_seq = ?", "DELETE FROM report_findings WHERE scan_seq = ?"}) {
    statement d(db(), sql);
    d.bind(1, seq).run();
  }
}

void sqlite_report_store::add_report_rows(std::string_view id, const std::vector<report_file_row>& rows) {
  std::lock_guard lock(mutex_);
  transaction tx(db());
  const std::int64_t seq = seq_of(id);
  statement f(db(),
              "INSERT INTO report_files (scan_seq, idx, path, deleted, mime, flagged, json, md5, sha1, sha256) VALUES "
              "(?,?,?,?,?,?,?,?,?,?)");
  for (const auto& row : rows) {
    f.bind(1, seq)
        .bind(2, row.index)
        .bind(3, row.path)
        .bind(4, static_cast<std::int64_t>(row.deleted))
        .bind(5, row.mime)
        .bind(6, static_cast<std::int64_t>(row.flagged))
        .bind(7, row.json);
    int col = 8;
    for (const std::string* hash : {&row.md5, &row.sha1, &row.sha256}) {
      // NULL, not "": the partial indexes leave unread content out.
      if (hash->empty()) {
        f.bind(col++, std::optional<std::int64_t>());
      } else {
        f.bind(col++, *hash);
      }
    }
    f.run();
    f.reset();
  }
  tx.commit();
}

void sqlite_report_store::add_report_findings(std::string_view id, const std::vector<report_finding_row>& rows) {
  std::lock_guard lock(mutex_);
  transaction tx(db());
  const std::int64_t seq = seq_of(id);
  // The same finding twice (a rule and a hash set naming one file the same
  // way cannot, but an image-level finding may repeat) is one row.
  statement f(db(),
              "INSERT OR IGNORE INTO report_findings (scan_seq, finding_id, path, source, rule, severity, flagging) "
              "VALUES (?,?,?,?,?,?,?)");
  for (const auto& row : rows) {
    f.bind(1, seq)
        .bind(2, row.id)
        .bind(3, row.path)
        .bind(4, row.source)
        .bind(5, row.rule)
        .bind(6, row.severity)
        .bind(7, static_cast<std::int64_t>(row.flagging));
    f.run();
    f.reset();
  }
  tx.commit();
}

void sqlite_report_store::complete(std::string_view id, const stored_report& report, std::int64_t now_ms) {
  std::lock_guard lock(mutex_);
  transaction tx(db());
  const std::int64_t seq = seq_of(id);
  statement u(db(),
              "UPDATE scans SET status = 'done', finished_at = ?, error = '', verdict = ?, score = ?, "
              "ruleset_digest = ?, files = ?, flagged_files = ?, bytes_scanned = ?, derived_verdict = ?, "
              "verdict_without_flags = ?, top_findings = ? WHERE seq = ?");
  u.bind(1, now_ms)
      .bind(2, report.verdict)
      .bind(3, static_cast<std::int64_t>(report.score))
      .bind(4, report.ruleset_digest)
      .bind(5, static_cast<std::int64_t>(report.files))
      .bind(6, static_cast<std::int64_t>(report.flagged_files))
      .bind(7, static_cast<std::int64_t>(report.bytes))
      .bind(8, report.verdict)
      .bind(9, report.verdict_without_flags)
      .bind(10, report.top_findings)
      .bind(11, seq)
      .run();
  statement r(db(), "INSERT OR REPLACE INTO report_documents (scan_seq, path, size, sha256) VALUES (?, ?, ?, ?)");
  r.bind(1, seq).bind(2, report.path).bind(3, static_cast<std::int64_t>(report.size)).bind(4, report.sha256).run();
  audit(now_ms, "scan_done", id,
        {{"verdict", report.verdict},
         {"score", report.score},
         {"ruleset_digest", report.ruleset_digest},
         {"report_sha256", report.sha256}});
  tx.commit();
}

void sqlite_report_store::set_progress(std::string_view id, std::string_view progress_json) {
  std::lock_guard lock(mutex_);
  statement s(db(), "UPDATE scans SET progress = ? WHERE id = ? AND status = 'running'");
  s.bind(1, progress_json).bind(2, id).run();
}

void sqlite_report_store::fail(std::string_view id, std::string_view reason, std::int64_t now_ms) {
  std::lock_guard lock(mutex_);
  transaction tx(db());
  statement s(db(), "UPDATE scans SET status = 'failed', error = ?, finished_at = ? WHERE id = ?");
  s.bind(1, reason).bind(2, now_ms).bind(3, id).run();
  if (sqlite3_changes(db()) > 0) {
    audit(now_ms, "scan_failed", id, {{"reason", reason}});
  }
  tx.commit();
}

bool sqlite_report_store::cancel_queued(std::string_view id, std::int64_t now_ms, const actor& by) {
  std::lock_guard lock(mutex_);
  transaction tx(db());
  statement s(db(),
              "UPDATE scans SET status = 'cancelled', error = '', finished_at = ?, cancelled_by = ? WHERE id = ? AND "
              "status = 'queued'");
  s.bind(1, now_ms).bind(2, store_rules::actor_text(by)).bind(3, id).run();
  const bool cancelled = sqlite3_changes(db()) > 0;
  if (cancelled) {
    audit(now_ms, "scan_cancelled", id, {{"was", "queued"}}, by);
  }
  tx.commit();
  return cancelled;
}

void sqlite_report_store::mark_cancelled(std::string_view id, std::int64_t now_ms, const actor& by) {
  std::lock_guard lock(mutex_);
  transaction tx(db());
  statement s(db(),
              "UPDATE scans SET status = 'cancelled', error = '', finished_at = ?, cancelled_by = ? WHERE id = ? AND "
              "status = 'running'");
  s.bind(1, now_ms).bind(2, store_rules::actor_text(by)).bind(3, id).run();
  if (sqlite3_changes(db()) > 0) {
    audit(now_ms, "scan_cancelled", id, {{"was", "running"}}, by);
  }
  tx.commit();
}

void sqlite_report_store::keep_image(std::string_view id, std::int64_t until_ms, std::int64_t now_ms) {
  std::lock_guard lock(mutex_);
  transaction tx(db());
  statement s(db(), "UPDATE scans SET image_kept_until = ? WHERE id = ?");
  s.bind(1, until_ms).bind(2, id).run();
  if (sqlite3_changes(db()) > 0) {
    audit(now_ms, "image_kept", id, {{"until", format_time(until_ms)}});
  }
  tx.commit();
}

std::vector<scan_record> sqlite_report_store::expired_images(std::int64_t now_ms) {
  std::lock_guard lock(mutex_);
  statement s(db(), select_scans("WHERE image_kept_until IS NOT NULL AND image_kept_until <= ? ORDER BY seq").c_str());
  s.bind(1, now_ms);
  std::vector<scan_record> out;
  while (s.step()) {
    out.push_back(read_scan(s));
  }
  return out;
}

void sqlite_report_store::image_deleted(std::string_view id, std::string_view reason, std::int64_t now_ms) {
  std::lock_guard lock(mutex_);
  transaction tx(db());
  statement s(db(), "UPDATE scans SET image_kept_until = NULL WHERE id = ?");
  s.bind(1, id).run();
  audit(now_ms, "image_deleted", id, {{"reason", reason}});
  tx.commit();
}

audit_page sqlite_report_store::list_audit(const audit_filter& filter) {
  std::string sql = std::string("SELECT ") + audit_columns + " FROM audit_log WHERE 1 = 1";
  if (filter.scan_id) {
    sql += " AND scan_id = ?";
  }
  if (filter.event) {
    sql += " AND event = ?";
  }
  if (filter.since) {
    sql += " AND at >= ?";
  }
  if (filter.until) {
    sql += " AND at < ?";
  }
  if (filter.before_seq) {
    sql += " AND seq < ?";
  }
  if (filter.after_seq) {
    sql += " AND seq > ?";
  }
  if (!filter.events.empty()) {
    sql += " AND event IN (?";
    for (std::size_t n = 1; n < filter.events.size(); ++n) {
      sql += ", ?";
    }
    sql += ")";
  }
  sql += filter.after_seq ? " ORDER BY seq ASC LIMIT ?" : " ORDER BY seq DESC LIMIT ?";
  std::lock_guard lock(mutex_);
  statement s(db(), sql.c_str());
  int i = 1;
  for (const auto* text : {&filter.scan_id, &filter.event}) {
    if (*text) {
      s.bind(i++, **text);
    }
  }
  for (const auto* number : {&filter.since, &filter.until, &filter.before_seq, &filter.after_seq}) {
    if (*number) {
      s.bind(i++, **number);
    }
  }
  for (const auto& event : filter.events) {
    s.bind(i++, event);
  }
  s.bind(i++, static_cast<std::int64_t>(filter.limit) + 1);
  audit_page page;
  while (s.step()) {
    page.items.push_back(read_audit(s).first);
  }
  if (page.items.size() > filter.limit) {
    page.items.pop_back();
    page.next_seq = page.items.back().seq;
  }
  return page;
}

void sqlite_report_store::add_evidence(std::string_view id, const std::vector<evidence_record>& kept,
                                       std::int64_t now_ms) {
  std::lock_guard lock(mutex_);
  transaction tx(db());
  const std::int64_t seq = seq_of(id);
  statement add(db(),
                "INSERT OR REPLACE INTO evidence (scan_seq, sha256, size, path, kept_until, state) VALUES "
                "(?,?,?,?,?,'kept')");
  std::uint64_t bytes = 0;
  for (const auto& e : kept) {
    add.bind(1, seq)
        .bind(2, e.sha256)
        .bind(3, static_cast<std::int64_t>(e.size))
        .bind(4, e.path)
        .bind(5, e.kept_until)
        .run();
    add.reset();
    bytes += e.size;
  }
  nlohmann::json until = nullptr;
  if (!kept.empty() && kept.front().kept_until) {
    until = format_time(*kept.front().kept_until);
  }
  audit(now_ms, "evidence_kept", id, {{"copies", kept.size()}, {"bytes", bytes}, {"until", until}});
  tx.commit();
}

std::optional<evidence_record> sqlite_report_store::find_evidence(std::string_view id, std::string_view sha256) {
  std::lock_guard lock(mutex_);
  statement s(db(),
              "SELECT e.sha256, e.size, e.path, e.kept_until, e.state FROM evidence e JOIN scans s ON s.seq = "
              "e.scan_seq WHERE s.id = ? AND e.sha256 = ?");
  s.bind(1, id).bind(2, sha256);
  if (!s.step()) {
    return std::nullopt;
  }
  return evidence_record{s.text(0), static_cast<std::uint64_t>(s.integer(1)), s.text(2), s.opt_integer(3), s.text(4)};
}

std::vector<std::pair<std::string, evidence_record>> sqlite_report_store::expired_evidence(std::int64_t now_ms) {
  std::lock_guard lock(mutex_);
  statement s(db(),
              "SELECT s.id, e.sha256, e.size, e.path, e.kept_until, e.state FROM evidence e JOIN scans s ON s.seq = "
              "e.scan_seq WHERE e.state = 'kept' AND e.kept_until IS NOT NULL AND e.kept_until <= ?");
  s.bind(1, now_ms);
  std::vector<std::pair<std::string, evidence_record>> out;
  while (s.step()) {
    out.emplace_back(s.text(0), evidence_record{s.text(1), static_cast<std::uint64_t>(s.integer(2)), s.text(3),
                                                s.opt_integer(4), s.text(5)});
  }
  return out;
}

void sqlite_report_store::evidence_expired(std::string_view id, std::string_view sha256, std::int64_t now_ms) {
  std::lock_guard lock(mutex_);
  transaction tx(db());
  statement u(db(), "UPDATE evidence SET state = 'expired' WHERE scan_seq = ? AND sha256 = ?");
  u.bind(1, seq_of(id)).bind(2, sha256).run();
  audit(now_ms, "evidence_purged", id, {{"sha256", sha256}, {"reason", "kept_days passed"}});
  tx.commit();
}

std::optional<std::vector<file_type_count>> sqlite_report_store::file_types(std::string_view id) {
  std::lock_guard lock(mutex_);
  const auto seq = done_seq_of(id);
  if (!seq) {
    return std::nullopt;
  }
  // The size is read out of each entry's JSON: one pass over the scan's rows.
  statement counts(db(),
                   "SELECT mime, count(*), sum(coalesce(json_extract(json, '$.size'), 0)) FROM report_files "
                   "WHERE scan_seq = ? GROUP BY mime ORDER BY count(*) DESC, mime");
  counts.bind(1, *seq);
  std::vector<file_type_count> out;
  while (counts.step()) {
    out.push_back(
        {counts.text(0), static_cast<std::uint64_t>(counts.integer(1)), static_cast<std::uint64_t>(counts.integer(2))});
  }
  return out;
}

std::optional<std::string> sqlite_report_store::find_file(std::string_view id, std::int64_t index) {
  std::lock_guard lock(mutex_);
  statement s(db(),
              "SELECT f.json FROM report_files f JOIN scans s ON s.seq = f.scan_seq WHERE s.id = ? AND s.status = "
              "'done' AND f.idx = ?");
  s.bind(1, id).bind(2, index);
  if (!s.step()) {
    return std::nullopt;
  }
  return s.text(0);
}

std::optional<stored_report> sqlite_report_store::find_report(std::string_view id) {
  std::lock_guard lock(mutex_);
  statement s(db(),
              "SELECT d.path, d.size, d.sha256, s.verdict, s.score, s.ruleset_digest, s.files, s.flagged_files, "
              "s.bytes_scanned FROM report_documents d JOIN scans s ON s.seq = d.scan_seq "
              "WHERE s.id = ? AND s.status = 'done'");
  s.bind(1, id);
  if (!s.step()) {
    return std::nullopt;
  }
  stored_report r;
  r.path = s.text(0);
  r.size = static_cast<std::uint64_t>(s.integer(1));
  r.sha256 = s.text(2);
  r.verdict = s.text(3);
  r.score = static_cast<int>(s.integer(4));
  r.ruleset_digest = s.text(5);
  r.files = static_cast<std::uint64_t>(s.integer(6));
  r.flagged_files = static_cast<std::uint64_t>(s.integer(7));
  r.bytes = static_cast<std::uint64_t>(s.integer(8));
  return r;
}

report_page sqlite_report_store::list_reports(const report_filter& filter) {
  std::string where = "WHERE status = 'done'";
  if (filter.verdict) {
    where += " AND derived_verdict = ?";
  }
  // The derived review states are conditions on the verdict and the last decision.
  const bool derived_review = filter.review && (*filter.review == "pending" || *filter.review == "reviewed" ||
                                                *filter.review == "not_required");
  if (derived_review && *filter.review == "pending") {
    where += " AND review_state = 'unreviewed' AND verdict IN ('flagged', 'incomplete', 'error')";
  } else if (derived_review && *filter.review == "reviewed") {
    where += " AND review_state <> 'unreviewed'";
  } else if (derived_review) {
    where += " AND review_state = 'unreviewed' AND verdict = 'clean'";
  } else if (filter.review) {
    where += " AND review_state = ?";
  }
  if (filter.station) {
    where += " AND station = ?";
  }
  if (filter.case_ref) {
    where += " AND case_ref = ?";
  }
  if (filter.since) {
    where += " AND submitted_at >= ?";
  }
  if (filter.until) {
    where += " AND submitted_at < ?";
  }
  if (filter.before_seq) {
    where += " AND seq < ?";
  }
  // One row more than asked tells whether another page follows.
  where += " ORDER BY seq DESC LIMIT ?";
  std::lock_guard lock(mutex_);
  statement s(db(), select_scans(where.c_str()).c_str());
  int i = 1;
  if (filter.verdict) {
    s.bind(i++, *filter.verdict);
  }
  if (filter.review && !derived_review) {
    s.bind(i++, *filter.review);
  }
  if (filter.station) {
    s.bind(i++, *filter.station);
  }
  if (filter.case_ref) {
    s.bind(i++, *filter.case_ref);
  }
  if (filter.since) {
    s.bind(i++, *filter.since);
  }
  if (filter.until) {
    s.bind(i++, *filter.until);
  }
  if (filter.before_seq) {
    s.bind(i++, *filter.before_seq);
  }
  s.bind(i++, static_cast<std::int64_t>(filter.limit) + 1);
  report_page page;
  while (s.step()) {
    page.items.push_back(read_scan(s));
  }
  if (page.items.size() > filter.limit) {
    page.items.pop_back();
    page.next_seq = page.items.back().seq;
  }
  return page;
}

std::optional<file_page> sqlite_report_store::list_files(std::string_view id, const file_filter& filter) {
  std::lock_guard lock(mutex_);
  const auto seq = done_seq_of(id);
  if (!seq) {
    return std::nullopt;
  }
  std::string sql = "SELECT idx, json FROM report_files WHERE scan_seq = ?";
  if (filter.flagged) {
    sql += " AND flagged = ?";
  }
  if (filter.deleted) {
    sql += " AND deleted = ?";
  }
  if (filter.mime) {
    sql += " AND mime = ?";
  }
  if (filter.path_contains) {
    // instr, not LIKE: % and _ in what the inspector types are plain text.
    sql += " AND instr(lower(path), lower(?)) > 0";
  }
  if (filter.after_index) {
    sql += " AND idx > ?";
  }
  sql += " ORDER BY idx LIMIT ?";
  statement s(db(), sql.c_str());
  int i = 1;
  s.bind(i++, *seq);
  if (filter.flagged) {
    s.bind(i++, static_cast<std::int64_t>(*filter.flagged));
  }
  if (filter.deleted) {
    s.bind(i++, static_cast<std::int64_t>(*filter.deleted));
  }
  if (filter.mime) {
    s.bind(i++, *filter.mime);
  }
  if (filter.path_contains) {
    s.bind(i++, *filter.path_contains);
  }
  if (filter.after_index) {
    s.bind(i++, *filter.after_index);
  }
  s.bind(i++, static_cast<std::int64_t>(filter.limit) + 1);
  file_page page;
  std::int64_t last = -1;
  while (s.step()) {
    if (page.items.size() == filter.limit) {
      page.next_index = last;
      break;
    }
    last = s.integer(0);
    page.items.push_back(s.text(1));
    page.indexes.push_back(last);
  }
  return page;
}

std::size_t sqlite_report_store::count(scan_status status) {
  std::lock_guard lock(mutex_);
  statement s(db(), "SELECT COUNT(*) FROM scans WHERE status = ?");
  s.bind(1, to_string(status));
  return s.step() ? static_cast<std::size_t>(s.integer(0)) : 0;
}

std::vector<scan_record> sqlite_report_store::active_scans() {
  std::lock_guard lock(mutex_);
  statement s(db(), select_scans("WHERE status IN ('queued', 'running') ORDER BY seq").c_str());
  std::vector<scan_record> out;
  while (s.step()) {
    out.push_back(read_scan(s));
  }
  return out;
}

std::vector<std::string> sqlite_report_store::live_spool_paths() {
  std::lock_guard lock(mutex_);
  statement s(db(),
              "SELECT spool_path FROM scans WHERE status IN ('queued', 'running') OR image_kept_until IS NOT NULL");
  std::vector<std::string> out;
  while (s.step()) {
    out.push_back(s.text(0));
  }
  return out;
}

namespace {

std::optional<cluster_ruleset> read_cluster_rules(sqlite3* db) {
  statement s(db, "SELECT digest, yara_rules, node, set_at FROM cluster_rules WHERE id = 1");
  if (!s.step()) {
    return std::nullopt;
  }
  return cluster_ruleset{s.text(0), s.integer(1), s.text(2), s.integer(3)};
}

}  // namespace

std::optional<cluster_ruleset> sqlite_report_store::cluster_rules() {
  std::lock_guard lock(mutex_);
  return read_cluster_rules(db());
}

std::optional<cluster_ruleset> sqlite_report_store::set_cluster_rules(const cluster_ruleset& rules) {
  std::lock_guard lock(mutex_);
  transaction tx(db());
  auto before = read_cluster_rules(db());
  statement s(db(),
              "INSERT INTO cluster_rules (id, digest, yara_rules, node, set_at) VALUES (1,?,?,?,?) ON CONFLICT (id) "
              "DO UPDATE SET digest = excluded.digest, yara_rules = excluded.yara_rules, node = excluded.node, "
              "set_at = excluded.set_at");
  s.bind(1, rules.digest).bind(2, rules.yara_rules).bind(3, rules.node).bind(4, rules.set_at).run();
  tx.commit();
  return before;
}

bool sqlite_report_store::writable() {
  std::lock_guard lock(mutex_);
  // BEGIN IMMEDIATE takes the write lock without changing anything.
  if (sqlite3_exec(db(), "BEGIN IMMEDIATE; ROLLBACK;", nullptr, nullptr, nullptr) != SQLITE_OK) {
    sqlite3_exec(db(), "ROLLBACK", nullptr, nullptr, nullptr);
    return false;
  }
  return true;
}

}  // namespace borderscan::server
