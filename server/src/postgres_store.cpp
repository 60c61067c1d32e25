#include "borderscan/server/postgres_store.hpp"

#include <libpq-fe.h>

#include <algorithm>
#include <memory>
#include <stdexcept>

#include "borderscan/scanner/digest.hpp"
#include "borderscan/server/system.hpp"
#include "store_rules.hpp"

namespace borderscan::server {
namespace {

// Each entry moves the schema from version i to i + 1. Never edit a shipped
// entry: append a new one. Version 1 is the SQLite store's schema 8 in
// PostgreSQL's types (no older PostgreSQL data exists to carry over).
constexpr const char* migrations[] = {
    R"sql(
CREATE TABLE scans (
  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  status TEXT NOT NULL,
  station TEXT NOT NULL DEFAULT '',
  label TEXT NOT NULL DEFAULT '',
  case_ref TEXT NOT NULL DEFAULT '',
  filename TEXT NOT NULL DEFAULT '',
  image_sha256 TEXT NOT NULL,
  image_size BIGINT NOT NULL,
  spool_path TEXT NOT NULL,
  submitted_at BIGINT NOT NULL,
  started_at BIGINT,
  finished_at BIGINT,
  attempts INTEGER NOT NULL DEFAULT 0,
  error TEXT NOT NULL DEFAULT '',
  verdict TEXT,
  score INTEGER,
  ruleset_digest TEXT NOT NULL DEFAULT '',
  review_state TEXT NOT NULL DEFAULT 'unreviewed',
  files BIGINT NOT NULL DEFAULT 0,
  flagged_files BIGINT NOT NULL DEFAULT 0,
  image_kept_until BIGINT,
  bytes_scanned BIGINT NOT NULL DEFAULT 0,
  derived_verdict TEXT,
  verdict_without_flags TEXT NOT NULL DEFAULT 'incomplete',
  top_findings TEXT NOT NULL DEFAULT '[]',
  cancelled_by TEXT
);
CREATE INDEX scans_by_status ON scans(status, seq);
CREATE INDEX scans_by_verdict ON scans(verdict, seq);
CREATE INDEX scans_by_derived_verdict ON scans(derived_verdict, seq);
CREATE INDEX scans_by_station ON scans(station, seq);
CREATE INDEX scans_by_case_ref ON scans(case_ref, seq);
CREATE INDEX scans_by_submitted ON scans(submitted_at);
CREATE INDEX scans_by_kept_until ON scans(image_kept_until) WHERE image_kept_until IS NOT NULL;
CREATE TABLE report_documents (
  scan_seq BIGINT PRIMARY KEY REFERENCES scans(seq) ON DELETE CASCADE,
  path TEXT NOT NULL,
  size BIGINT NOT NULL,
  sha256 TEXT NOT NULL
);
CREATE TABLE report_files (
  scan_seq BIGINT NOT NULL REFERENCES scans(seq) ON DELETE CASCADE,
  idx BIGINT NOT NULL,
  path TEXT NOT NULL,
  deleted BOOLEAN NOT NULL,
  mime TEXT NOT NULL,
  flagged BOOLEAN NOT NULL,
  json TEXT NOT NULL,
  md5 TEXT,
  sha1 TEXT,
  sha256 TEXT,
  PRIMARY KEY (scan_seq, idx)
);
CREATE INDEX report_files_by_flagged ON report_files(scan_seq, flagged, idx);
CREATE INDEX report_files_by_md5 ON report_files(md5, scan_seq, idx) WHERE md5 IS NOT NULL;
CREATE INDEX report_files_by_sha1 ON report_files(sha1, scan_seq, idx) WHERE sha1 IS NOT NULL;
CREATE INDEX report_files_by_sha256 ON report_files(sha256, scan_seq, idx) WHERE sha256 IS NOT NULL;
CREATE TABLE audit_log (
  seq BIGINT PRIMARY KEY,
  at BIGINT NOT NULL,
  event TEXT NOT NULL,
  scan_id TEXT NOT NULL,
  detail TEXT NOT NULL,
  actor_name TEXT NOT NULL,
  actor_role TEXT NOT NULL,
  request_id TEXT NOT NULL,
  client TEXT NOT NULL,
  prev_sha256 TEXT NOT NULL,
  sha256 TEXT NOT NULL
);
CREATE INDEX audit_by_scan ON audit_log(scan_id, seq);
CREATE INDEX audit_by_event ON audit_log(event, seq);
CREATE TABLE tokens (
  name TEXT PRIMARY KEY,
  role TEXT NOT NULL,
  digest TEXT NOT NULL UNIQUE,
  created_at BIGINT NOT NULL
);
CREATE TABLE reviews (
  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  scan_seq BIGINT NOT NULL REFERENCES scans(seq) ON DELETE CASCADE,
  at BIGINT NOT NULL,
  decision TEXT NOT NULL,
  note TEXT NOT NULL,
  reviewer TEXT NOT NULL,
  role TEXT NOT NULL
);
CREATE INDEX reviews_by_scan ON reviews(scan_seq, seq);
CREATE TABLE report_findings (
  scan_seq BIGINT NOT NULL REFERENCES scans(seq) ON DELETE CASCADE,
  finding_id TEXT NOT NULL,
  path TEXT NOT NULL,
  source TEXT NOT NULL,
  rule TEXT NOT NULL,
  severity TEXT NOT NULL,
  flagging BOOLEAN NOT NULL,
  PRIMARY KEY (scan_seq, finding_id)
);
CREATE TABLE dispositions (
  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  scan_seq BIGINT NOT NULL REFERENCES scans(seq) ON DELETE CASCADE,
  finding_id TEXT NOT NULL,
  at BIGINT NOT NULL,
  false_positive BOOLEAN NOT NULL,
  note TEXT NOT NULL,
  reviewer TEXT NOT NULL,
  role TEXT NOT NULL
);
CREATE INDEX dispositions_by_finding ON dispositions(scan_seq, finding_id, seq);
CREATE TABLE evidence (
  scan_seq BIGINT NOT NULL REFERENCES scans(seq) ON DELETE CASCADE,
  sha256 TEXT NOT NULL,
  size BIGINT NOT NULL,
  path TEXT NOT NULL,
  kept_until BIGINT,
  state TEXT NOT NULL DEFAULT 'kept',
  PRIMARY KEY (scan_seq, sha256)
);
CREATE INDEX evidence_by_kept_until ON evidence(kept_until) WHERE state = 'kept' AND kept_until IS NOT NULL;
)sql",
    // 2: leases of running scans, so that several nodes share the queue.
    R"sql(
ALTER TABLE scans ADD COLUMN lease_node TEXT NOT NULL DEFAULT '';
ALTER TABLE scans ADD COLUMN lease_until BIGINT;
CREATE INDEX scans_by_lease ON scans(lease_until) WHERE status = 'running';
ALTER TABLE scans ADD COLUMN progress TEXT NOT NULL DEFAULT '';
)sql",
    // 3: the rule set every node scans with (one row): a reload on one node
    // is seen by all.
    R"sql(
CREATE TABLE cluster_rules (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  digest TEXT NOT NULL,
  yara_rules BIGINT NOT NULL,
  node TEXT NOT NULL,
  set_at BIGINT NOT NULL
);
)sql",
};

// Advisory lock keys (any two distinct numbers): one serialises migrations
// of nodes starting together, one the appends to the audit chain.
constexpr const char* migration_lock = "SELECT pg_advisory_xact_lock(7305162001)";
constexpr const char* audit_lock = "SELECT pg_advisory_xact_lock(7305162002)";

// One query parameter as text (libpq's text format), or NULL.
class param {
 public:
  param(std::nullptr_t) {}
  param(std::string_view v) : value_(std::string(v)) {}
  param(const std::string& v) : value_(v) {}
  param(const char* v) : value_(std::string(v)) {}
  param(std::int64_t v) : value_(std::to_string(v)) {}
  param(int v) : value_(std::to_string(v)) {}
  param(std::optional<std::int64_t> v) {
    if (v) {
      value_ = std::to_string(*v);
    }
  }
  static param flag(bool v) { return param(v ? "t" : "f"); }
  static param text_or_null(const std::string& v) { return v.empty() ? param(nullptr) : param(v); }
  const char* c_str() const noexcept { return value_ ? value_->c_str() : nullptr; }

 private:
  std::optional<std::string> value_;
};

std::int64_t to_i64(std::uint64_t v) {
  return static_cast<std::int64_t>(v);
}

struct result_clear {
  void operator()(PGresult* r) const noexcept { PQclear(r); }
};

// A query's rows, read by (row, column). Text format throughout.
class result {
 public:
  explicit result(PGresult* r) : r_(r) {}
  int rows() const { return PQntuples(r_.get()); }
  bool empty() const { return rows() == 0; }
  bool is_null(int row, int col) const { return PQgetisnull(r_.get(), row, col) != 0; }
  std::string text(int row, int col) const {
    return std::string(PQgetvalue(r_.get(), row, col), static_cast<std::size_t>(PQgetlength(r_.get(), row, col)));
  }
  std::int64_t integer(int row, int col) const { return std::stoll(PQgetvalue(r_.get(), row, col)); }
  std::optional<std::int64_t> opt_integer(int row, int col) const {
    return is_null(row, col) ? std::nullopt : std::optional(integer(row, col));
  }
  bool boolean(int row, int col) const { return PQgetvalue(r_.get(), row, col)[0] == 't'; }
  // Rows an INSERT, UPDATE or DELETE changed.
  std::size_t affected() const {
    const char* n = PQcmdTuples(r_.get());
    return n[0] == '\0' ? 0 : static_cast<std::size_t>(std::stoull(n));
  }

 private:
  std::unique_ptr<PGresult, result_clear> r_;
};

[[noreturn]] void throw_pg(PGconn* c, const std::string& what) {
  std::string message = c != nullptr ? PQerrorMessage(c) : "out of memory";
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
    message.pop_back();
  }
  throw std::runtime_error("postgresql: " + what + ": " + message);
}

result run(PGconn* c, const std::string& sql, const std::vector<param>& params = {}) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) {
    values.push_back(p.c_str());
  }
  PGresult* raw =
      PQexecParams(c, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr, nullptr, 0);
  const auto status = raw != nullptr ? PQresultStatus(raw) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    std::string message = raw != nullptr ? PQresultErrorMessage(raw) : PQerrorMessage(c);
    PQclear(raw);
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
      message.pop_back();
    }
    throw std::runtime_error("postgresql: " + message);
  }
  return result(raw);
}

// Several statements without parameters (a migration): the simple protocol.
void run_script(PGconn* c, const char* sql) {
  PGresult* raw = PQexec(c, sql);
  const auto status = raw != nullptr ? PQresultStatus(raw) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    std::string message = raw != nullptr ? PQresultErrorMessage(raw) : PQerrorMessage(c);
    PQclear(raw);
    throw std::runtime_error("postgresql: migration: " + message);
  }
  PQclear(raw);
}

// Commits on commit(), rolls back otherwise (an exception on the way).
// Audited: takes the audit chain's lock first, so that every writer takes
// its locks in one order (the chain's, then rows) and appends one at a time.
class transaction {
 public:
  enum class kind { plain, audited };
  explicit transaction(PGconn* c, kind k = kind::plain) : c_(c) {
    run(c_, "BEGIN");
    if (k == kind::audited) {
      run(c_, audit_lock);
    }
  }
  ~transaction() {
    if (!done_) {
      PQclear(PQexec(c_, "ROLLBACK"));
    }
  }
  transaction(const transaction&) = delete;
  transaction& operator=(const transaction&) = delete;
  void commit() {
    run(c_, "COMMIT");
    done_ = true;
  }

 private:
  PGconn* c_;
  bool done_ = false;
};

// A statement with numbered parameters, built clause by clause.
struct query {
  std::string sql;
  std::vector<param> params;
  // Adds a parameter; returns its placeholder ($n).
  std::string bind(param p) {
    params.push_back(std::move(p));
    return "$" + std::to_string(params.size());
  }
};

constexpr const char* scan_columns =
    "seq, id, status, station, label, case_ref, filename, image_sha256, image_size, spool_path, submitted_at, "
    "started_at, finished_at, attempts, error, verdict, score, ruleset_digest, review_state, files, flagged_files, "
    "image_kept_until, bytes_scanned, derived_verdict, top_findings, cancelled_by, progress";
constexpr int scan_column_count = 27;

std::string select_scans(const std::string& where_and_order) {
  return std::string("SELECT ") + scan_columns + " FROM scans " + where_and_order;
}

scan_record read_scan(const result& s, int row) {
  scan_record r;
  r.seq = s.integer(row, 0);
  r.id = s.text(row, 1);
  r.status = parse_scan_status(s.text(row, 2)).value_or(scan_status::failed);
  r.station = s.text(row, 3);
  r.label = s.text(row, 4);
  r.case_ref = s.text(row, 5);
  r.filename = s.text(row, 6);
  r.image_sha256 = s.text(row, 7);
  r.image_size = static_cast<std::uint64_t>(s.integer(row, 8));
  r.spool_path = s.text(row, 9);
  r.submitted_at = s.integer(row, 10);
  r.started_at = s.opt_integer(row, 11);
  r.finished_at = s.opt_integer(row, 12);
  r.attempts = static_cast<unsigned>(s.integer(row, 13));
  r.error = s.text(row, 14);
  if (!s.is_null(row, 15)) {
    r.verdict = s.text(row, 15);
  }
  if (!s.is_null(row, 16)) {
    r.score = static_cast<int>(s.integer(row, 16));
  }
  r.ruleset_digest = s.text(row, 17);
  r.review_state = s.text(row, 18);
  r.files = static_cast<std::uint64_t>(s.integer(row, 19));
  r.flagged_files = static_cast<std::uint64_t>(s.integer(row, 20));
  r.image_kept_until = s.opt_integer(row, 21);
  r.bytes_scanned = static_cast<std::uint64_t>(s.integer(row, 22));
  if (!s.is_null(row, 23)) {
    r.derived_verdict = s.text(row, 23);
  }
  r.top_findings = s.text(row, 24);
  if (!s.is_null(row, 25)) {
    r.cancelled_by = store_rules::actor_from_text(s.text(row, 25));
  }
  r.progress = s.text(row, 26);
  return r;
}

std::vector<scan_record> read_scans(const result& s) {
  std::vector<scan_record> out;
  for (int i = 0; i < s.rows(); ++i) {
    out.push_back(read_scan(s, i));
  }
  return out;
}

constexpr const char* audit_columns =
    "seq, at, event, scan_id, detail, actor_name, actor_role, request_id, client, prev_sha256, sha256";

std::pair<audit_entry, std::string> read_audit(const result& s, int row) {
  audit_entry e;
  e.seq = s.integer(row, 0);
  e.at = s.integer(row, 1);
  e.event = s.text(row, 2);
  e.scan_id = s.text(row, 3);
  std::string detail = s.text(row, 4);
  e.detail = nlohmann::json::parse(detail, nullptr, false);
  e.by = {s.text(row, 5), s.text(row, 6), s.text(row, 7), s.text(row, 8)};
  e.prev_sha256 = s.text(row, 9);
  e.sha256 = s.text(row, 10);
  return {std::move(e), std::move(detail)};
}

// Appends one entry to the chain. The caller's transaction is audited (holds
// the chain's lock), so the head read here is the head it appends to.
void audit(PGconn* c, std::int64_t at, std::string_view event, std::string_view scan_id, const nlohmann::json& detail,
           const actor& by = {}) {
  const result head = run(c, "SELECT seq, sha256 FROM audit_log ORDER BY seq DESC LIMIT 1");
  audit_entry e;
  e.seq = head.empty() ? 1 : head.integer(0, 0) + 1;
  e.at = at;
  e.event = std::string(event);
  e.scan_id = std::string(scan_id);
  e.by = by;
  e.prev_sha256 = head.empty() ? "" : head.text(0, 1);
  const std::string detail_text = detail.dump();
  run(c,
      "INSERT INTO audit_log (seq, at, event, scan_id, detail, actor_name, actor_role, request_id, client, "
      "prev_sha256, sha256) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)",
      {e.seq, at, event, scan_id, detail_text, by.name, by.role, by.request_id, by.client, e.prev_sha256,
       audit_entry_digest(e, detail_text)});
}

// Running scans matching condition: queued again, or failed once they have
// used up their attempts (see store_rules::settle_running).
void requeue_running(PGconn* c, const std::string& condition, const std::vector<param>& params,
                     store_rules::running_settlement& how) {
  // FOR UPDATE: a node finishing one of these scans meanwhile waits, then finds it no longer its own.
  const result found = run(c,
                           "SELECT id, attempts, lease_node FROM scans WHERE status = 'running' AND " + condition +
                               " ORDER BY seq FOR UPDATE",
                           params);
  for (int i = 0; i < found.rows(); ++i) {
    const std::string id = found.text(i, 0);
    const store_rules::running_outcome next = store_rules::settle_running(found.integer(i, 1), how);
    if (next.failed) {
      run(c,
          "UPDATE scans SET status = 'failed', finished_at = $1, error = $2, image_kept_until = $3, "
          "lease_node = '', lease_until = NULL WHERE id = $4",
          {how.now_ms, next.reason, next.image_kept_until, id});
      audit(c, how.now_ms, "scan_failed", id, {{"reason", next.reason}});
      if (next.image_kept_until) {
        audit(c, how.now_ms, "image_kept", id, {{"until", format_time(*next.image_kept_until)}});
      }
      continue;
    }
    run(c, "UPDATE scans SET status = 'queued', error = $1, lease_node = '', lease_until = NULL WHERE id = $2",
        {how.requeue_reason, id});
    if (how.audited_requeue) {
      audit(c, how.now_ms, "scan_requeued", id, {{"reason", how.requeue_reason}, {"node", found.text(i, 2)}});
    }
    ++how.requeued;
  }
}

// Throws std::runtime_error for an unknown id.
std::int64_t seq_of(PGconn* c, std::string_view id) {
  const result s = run(c, "SELECT seq FROM scans WHERE id = $1", {id});
  if (s.empty()) {
    throw std::runtime_error("unknown scan " + std::string(id));
  }
  return s.integer(0, 0);
}

std::optional<std::int64_t> done_seq_of(PGconn* c, std::string_view id) {
  const result s = run(c, "SELECT seq FROM scans WHERE id = $1 AND status = 'done'", {id});
  return s.empty() ? std::nullopt : std::optional(s.integer(0, 0));
}

// The rows of a scan's child table (reviews, dispositions) in order; nothing
// when there is no such scan (the query LEFT JOINs the child to the scan).
template <class Row, class Read>
std::optional<std::vector<Row>> rows_of_scan(PGconn* c, const char* sql, std::string_view id, Read read) {
  const result s = run(c, sql, {id});
  if (s.empty()) {
    return std::nullopt;
  }
  std::vector<Row> out;
  for (int i = 0; i < s.rows(); ++i) {
    if (!s.is_null(i, 0)) {
      out.push_back(read(s, i));
    }
  }
  return out;
}

token_digest digest_from_hex(const std::string& hex) {
  token_digest d{};
  for (std::size_t i = 0; i < d.size() && 2 * i + 1 < hex.size(); ++i) {
    d[i] = static_cast<std::uint8_t>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  }
  return d;
}

// Page results fetch one row more than asked: its presence says another page follows.
std::string limit_plus_one(query& q, unsigned limit) {
  return " LIMIT " + q.bind(static_cast<std::int64_t>(limit) + 1);
}

}  // namespace

postgres_report_store::connection::~connection() {
  if (conn_ != nullptr) {
    store_->release(conn_);
  }
}

postgres_report_store::postgres_report_store(std::string url, unsigned max_connections)
    : url_(std::move(url)), max_connections_(std::max(1U, max_connections)) {
  try {
    migrate();
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string("database (PostgreSQL): ") + e.what());
  }
}

postgres_report_store::~postgres_report_store() {
  for (auto* c : idle_) {
    PQfinish(c);
  }
}

postgres_report_store::connection postgres_report_store::acquire() {
  std::unique_lock lock(mutex_);
  idle_changed_.wait(lock, [&] { return !idle_.empty() || open_ < max_connections_; });
  if (!idle_.empty()) {
    PGconn* c = idle_.back();
    idle_.pop_back();
    lock.unlock();
    connection out(*this, c);
    // The server restarted or the network dropped since: one new attempt.
    if (PQstatus(c) != CONNECTION_OK) {
      PQreset(c);
      if (PQstatus(c) != CONNECTION_OK) {
        throw_pg(c, "reconnecting");
      }
    }
    return out;
  }
  ++open_;
  lock.unlock();
  PGconn* c = PQconnectdb(url_.c_str());
  if (c == nullptr || PQstatus(c) != CONNECTION_OK) {
    std::string message = c != nullptr ? PQerrorMessage(c) : "out of memory";
    PQfinish(c);
    {
      std::lock_guard relock(mutex_);
      --open_;
    }
    idle_changed_.notify_one();
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
      message.pop_back();
    }
    throw std::runtime_error("cannot connect to PostgreSQL: " + message);
  }
  // Server notices (an index exists already, ...) are not ours to print.
  PQsetNoticeProcessor(
      c, [](void*, const char*) {}, nullptr);
  return connection(*this, c);
}

void postgres_report_store::release(pg_conn* c) noexcept {
  // A connection left inside a transaction (an exception between BEGIN and
  // the transaction guard) is rolled back before anyone else gets it.
  if (PQtransactionStatus(c) != PQTRANS_IDLE && PQstatus(c) == CONNECTION_OK) {
    PQclear(PQexec(c, "ROLLBACK"));
  }
  {
    std::lock_guard lock(mutex_);
    idle_.push_back(c);
  }
  idle_changed_.notify_one();
}

int postgres_report_store::schema_version() noexcept {
  return static_cast<int>(std::size(migrations));
}

int postgres_report_store::current_version() {
  auto c = acquire();
  const result s = run(c.get(), "SELECT max(version) FROM borderscan_schema");
  return s.is_null(0, 0) ? 0 : static_cast<int>(s.integer(0, 0));
}

void postgres_report_store::migrate() {
  auto c = acquire();
  transaction tx(c.get());
  run(c.get(), migration_lock);
  run(c.get(), "CREATE TABLE IF NOT EXISTS borderscan_schema (version INTEGER NOT NULL)");
  const result s = run(c.get(), "SELECT max(version) FROM borderscan_schema");
  const int version = s.is_null(0, 0) ? 0 : static_cast<int>(s.integer(0, 0));
  if (version > schema_version()) {
    throw std::runtime_error("schema version " + std::to_string(version) + " is newer than this build knows (" +
                             std::to_string(schema_version()) + "); refusing to touch it");
  }
  for (int v = version; v < schema_version(); ++v) {
    run_script(c.get(), migrations[v]);
  }
  if (version < schema_version()) {
    run(c.get(), "DELETE FROM borderscan_schema");
    run(c.get(), "INSERT INTO borderscan_schema (version) VALUES ($1)", {schema_version()});
  }
  tx.commit();
}

void postgres_report_store::add_scan(scan_record& scan, const actor& by) {
  auto c = acquire();
  transaction tx(c.get(), transaction::kind::audited);
  const result s = run(c.get(),
                       "INSERT INTO scans (id, status, station, label, case_ref, filename, image_sha256, image_size, "
                       "spool_path, submitted_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10) RETURNING seq",
                       {scan.id, to_string(scan_status::queued), scan.station, scan.label, scan.case_ref, scan.filename,
                        scan.image_sha256, to_i64(scan.image_size), scan.spool_path, scan.submitted_at});
  audit(c.get(), scan.submitted_at, "scan_submitted", scan.id,
        {{"station", scan.station},
         {"image_sha256", scan.image_sha256},
         {"size", scan.image_size},
         {"label", scan.label},
         {"case_ref", scan.case_ref},
         {"filename", scan.filename}},
        by);
  tx.commit();
  scan.seq = s.integer(0, 0);
  scan.status = scan_status::queued;
}

std::optional<scan_record> postgres_report_store::find_scan(std::string_view id) {
  auto c = acquire();
  const result s = run(c.get(), select_scans("WHERE id = $1"), {id});
  return s.empty() ? std::nullopt : std::optional(read_scan(s, 0));
}

std::optional<scan_record> postgres_report_store::claim_next(std::int64_t now_ms, const node_lease& lease) {
  auto c = acquire();
  // SKIP LOCKED: nodes claiming at once each get a different scan, none waits.
  const result s = run(c.get(),
                       std::string("UPDATE scans SET status = 'running', attempts = attempts + 1, started_at = $1, "
                                   "lease_node = $2, lease_until = $3 "
                                   "WHERE seq = (SELECT seq FROM scans WHERE status = 'queued' ORDER BY seq LIMIT 1 "
                                   "FOR UPDATE SKIP LOCKED) RETURNING ") +
                           scan_columns,
                       {now_ms, lease.node, now_ms + lease.length_ms});
  return s.empty() ? std::nullopt : std::optional(read_scan(s, 0));
}

std::vector<std::string> postgres_report_store::renew_leases(const node_lease& lease, std::int64_t now_ms) {
  auto c = acquire();
  const result s =
      run(c.get(), "UPDATE scans SET lease_until = $1 WHERE status = 'running' AND lease_node = $2 RETURNING id",
          {now_ms + lease.length_ms, lease.node});
  std::vector<std::string> held;
  for (int i = 0; i < s.rows(); ++i) {
    held.push_back(s.text(i, 0));
  }
  return held;
}

void postgres_report_store::requeue(std::string_view id, std::string_view reason, bool count_attempt) {
  auto c = acquire();
  run(c.get(),
      count_attempt ? "UPDATE scans SET status = 'queued', error = $1 WHERE id = $2"
                    : "UPDATE scans SET status = 'queued', error = $1, attempts = GREATEST(attempts - 1, 0) WHERE id "
                      "= $2",
      {reason, id});
}

std::size_t postgres_report_store::recover_running(std::string_view node, unsigned max_attempts, std::int64_t now_ms,
                                                   std::int64_t keep_failed_ms) {
  auto c = acquire();
  transaction tx(c.get(), transaction::kind::audited);
  store_rules::running_settlement how{.max_attempts = max_attempts,
                                      .now_ms = now_ms,
                                      .keep_failed_ms = keep_failed_ms,
                                      .requeue_reason = "the daemon stopped during the scan",
                                      .audited_requeue = false};
  // '' : scans claimed before leases existed, or by a store used without a node id.
  requeue_running(c.get(), "lease_node IN ($1, '')", {param(node)}, how);
  tx.commit();
  return how.requeued;
}

std::size_t postgres_report_store::requeue_expired(unsigned max_attempts, std::int64_t now_ms,
                                                   std::int64_t keep_failed_ms) {
  auto c = acquire();
  // Cheap check first: every node polls this, and the audited transaction serialises writers.
  if (run(c.get(), "SELECT 1 FROM scans WHERE status = 'running' AND lease_until < $1 LIMIT 1", {now_ms}).empty()) {
    return 0;
  }
  transaction tx(c.get(), transaction::kind::audited);
  store_rules::running_settlement how{.max_attempts = max_attempts,
                                      .now_ms = now_ms,
                                      .keep_failed_ms = keep_failed_ms,
                                      .requeue_reason = "its node stopped renewing the lease",
                                      .audited_requeue = true};
  requeue_running(c.get(), "lease_until < $1", {param(now_ms)}, how);
  tx.commit();
  return how.requeued;
}

void postgres_report_store::begin_report(std::string_view id) {
  auto c = acquire();
  transaction tx(c.get());
  const std::int64_t seq = seq_of(c.get(), id);
  run(c.get(), "DELETE FROM report_files WHERE scan_seq = $1", {seq});
  run(c.get(), "DELETE FROM report_findings WHERE scan_seq = $1", {seq});
  tx.commit();
}

void postgres_report_store::add_report_rows(std::string_view id, const std::vector<report_file_row>& rows) {
  auto c = acquire();
  transaction tx(c.get());
  const std::int64_t seq = seq_of(c.get(), id);
  // Many rows a statement: one round trip per row would dominate a large report.
  constexpr std::size_t rows_per_statement = 200;
  for (std::size_t first = 0; first < rows.size(); first += rows_per_statement) {
    query q;
    q.sql = "INSERT INTO report_files (scan_seq, idx, path, deleted, mime, flagged, json, md5, sha1, sha256) VALUES ";
    const std::size_t end = std::min(rows.size(), first + rows_per_statement);
    for (std::size_t n = first; n < end; ++n) {
      const auto& row = rows[n];
      q.sql += n == first ? "(" : ", (";
      // NULL, not "": the partial hash indexes leave unread content out.
      for (param p : {param(seq), param(row.index), param(row.path), param::flag(row.deleted), param(row.mime),
                      param::flag(row.flagged), param(row.json), param::text_or_null(row.md5),
                      param::text_or_null(row.sha1), param::text_or_null(row.sha256)}) {
        q.sql += (q.params.empty() || q.sql.back() == '(' ? "" : ",") + q.bind(std::move(p));
      }
      q.sql += ")";
    }
    run(c.get(), q.sql, q.params);
  }
  tx.commit();
}

void postgres_report_store::add_report_findings(std::string_view id, const std::vector<report_finding_row>& rows) {
  auto c = acquire();
  transaction tx(c.get());
  const std::int64_t seq = seq_of(c.get(), id);
  // The same finding twice (an image-level finding may repeat) is one row.
  for (const auto& row : rows) {
    run(c.get(),
        "INSERT INTO report_findings (scan_seq, finding_id, path, source, rule, severity, flagging) VALUES "
        "($1,$2,$3,$4,$5,$6,$7) ON CONFLICT DO NOTHING",
        {seq, row.id, row.path, row.source, row.rule, row.severity, param::flag(row.flagging)});
  }
  tx.commit();
}

void postgres_report_store::complete(std::string_view id, const stored_report& report, std::int64_t now_ms) {
  auto c = acquire();
  transaction tx(c.get(), transaction::kind::audited);
  const std::int64_t seq = seq_of(c.get(), id);
  run(c.get(),
      "UPDATE scans SET status = 'done', finished_at = $1, error = '', verdict = $2, score = $3, ruleset_digest = $4, "
      "files = $5, flagged_files = $6, bytes_scanned = $7, derived_verdict = $2, verdict_without_flags = $8, "
      "top_findings = $9 WHERE seq = $10",
      {now_ms, report.verdict, report.score, report.ruleset_digest, to_i64(report.files), to_i64(report.flagged_files),
       to_i64(report.bytes), report.verdict_without_flags, report.top_findings, seq});
  run(c.get(),
      "INSERT INTO report_documents (scan_seq, path, size, sha256) VALUES ($1,$2,$3,$4) ON CONFLICT (scan_seq) DO "
      "UPDATE SET path = EXCLUDED.path, size = EXCLUDED.size, sha256 = EXCLUDED.sha256",
      {seq, report.path, to_i64(report.size), report.sha256});
  audit(c.get(), now_ms, "scan_done", id,
        {{"verdict", report.verdict},
         {"score", report.score},
         {"ruleset_digest", report.ruleset_digest},
         {"report_sha256", report.sha256}});
  tx.commit();
}

void postgres_report_store::set_progress(std::string_view id, std::string_view progress_json) {
  auto c = acquire();
  run(c.get(), "UPDATE scans SET progress = $1 WHERE id = $2 AND status = 'running'", {progress_json, id});
}

void postgres_report_store::fail(std::string_view id, std::string_view reason, std::int64_t now_ms) {
  auto c = acquire();
  transaction tx(c.get(), transaction::kind::audited);
  const result u = run(c.get(), "UPDATE scans SET status = 'failed', error = $1, finished_at = $2 WHERE id = $3",
                       {reason, now_ms, id});
  if (u.affected() > 0) {
    audit(c.get(), now_ms, "scan_failed", id, {{"reason", reason}});
  }
  tx.commit();
}

bool postgres_report_store::cancel_queued(std::string_view id, std::int64_t now_ms, const actor& by) {
  auto c = acquire();
  transaction tx(c.get(), transaction::kind::audited);
  const result u = run(c.get(),
                       "UPDATE scans SET status = 'cancelled', error = '', finished_at = $1, cancelled_by = $2 WHERE "
                       "id = $3 AND status = 'queued'",
                       {now_ms, store_rules::actor_text(by), id});
  const bool cancelled = u.affected() > 0;
  if (cancelled) {
    audit(c.get(), now_ms, "scan_cancelled", id, {{"was", "queued"}}, by);
  }
  tx.commit();
  return cancelled;
}

void postgres_report_store::mark_cancelled(std::string_view id, std::int64_t now_ms, const actor& by) {
  auto c = acquire();
  transaction tx(c.get(), transaction::kind::audited);
  const result u = run(c.get(),
                       "UPDATE scans SET status = 'cancelled', error = '', finished_at = $1, cancelled_by = $2 WHERE "
                       "id = $3 AND status = 'running'",
                       {now_ms, store_rules::actor_text(by), id});
  if (u.affected() > 0) {
    audit(c.get(), now_ms, "scan_cancelled", id, {{"was", "running"}}, by);
  }
  tx.commit();
}

void postgres_report_store::keep_image(std::string_view id, std::int64_t until_ms, std::int64_t now_ms) {
  auto c = acquire();
  transaction tx(c.get(), transaction::kind::audited);
  const result u = run(c.get(), "UPDATE scans SET image_kept_until = $1 WHERE id = $2", {until_ms, id});
  if (u.affected() > 0) {
    audit(c.get(), now_ms, "image_kept", id, {{"until", format_time(until_ms)}});
  }
  tx.commit();
}

std::vector<scan_record> postgres_report_store::expired_images(std::int64_t now_ms) {
  auto c = acquire();
  return read_scans(run(
      c.get(), select_scans("WHERE image_kept_until IS NOT NULL AND image_kept_until <= $1 ORDER BY seq"), {now_ms}));
}

void postgres_report_store::image_deleted(std::string_view id, std::string_view reason, std::int64_t now_ms) {
  auto c = acquire();
  transaction tx(c.get(), transaction::kind::audited);
  run(c.get(), "UPDATE scans SET image_kept_until = NULL WHERE id = $1", {id});
  audit(c.get(), now_ms, "image_deleted", id, {{"reason", reason}});
  tx.commit();
}

audit_page postgres_report_store::list_audit(const audit_filter& filter) {
  query q;
  q.sql = std::string("SELECT ") + audit_columns + " FROM audit_log WHERE TRUE";
  if (filter.scan_id) {
    q.sql += " AND scan_id = " + q.bind(*filter.scan_id);
  }
  if (filter.event) {
    q.sql += " AND event = " + q.bind(*filter.event);
  }
  if (filter.since) {
    q.sql += " AND at >= " + q.bind(*filter.since);
  }
  if (filter.until) {
    q.sql += " AND at < " + q.bind(*filter.until);
  }
  if (filter.before_seq) {
    q.sql += " AND seq < " + q.bind(*filter.before_seq);
  }
  if (filter.after_seq) {
    q.sql += " AND seq > " + q.bind(*filter.after_seq);
  }
  if (!filter.events.empty()) {
    std::string any;
    for (const auto& event : filter.events) {
      any += (any.empty() ? "" : ", ") + q.bind(event);
    }
    q.sql += " AND event IN (" + any + ")";
  }
  q.sql += filter.after_seq ? " ORDER BY seq ASC" : " ORDER BY seq DESC";
  q.sql += limit_plus_one(q, filter.limit);
  auto c = acquire();
  const result s = run(c.get(), q.sql, q.params);
  audit_page page;
  for (int i = 0; i < s.rows(); ++i) {
    page.items.push_back(read_audit(s, i).first);
  }
  if (page.items.size() > filter.limit) {
    page.items.pop_back();
    page.next_seq = page.items.back().seq;
  }
  return page;
}

void postgres_report_store::record(std::string_view event, std::string_view scan_id, const nlohmann::json& detail,
                                   const actor& by, std::int64_t now_ms) {
  auto c = acquire();
  transaction tx(c.get(), transaction::kind::audited);
  audit(c.get(), now_ms, event, scan_id, detail, by);
  tx.commit();
}

audit_check postgres_report_store::verify_audit() {
  auto c = acquire();
  // One statement: one snapshot of the chain, however many nodes append meanwhile.
  const result s = run(c.get(), std::string("SELECT ") + audit_columns + " FROM audit_log ORDER BY seq");
  store_rules::audit_chain_check check;
  for (int i = 0; i < s.rows(); ++i) {
    const auto [e, detail] = read_audit(s, i);
    if (!check.add(e, detail)) {
      break;
    }
  }
  return check.result();
}

purge_result postgres_report_store::purge(std::string_view id, const actor& by, std::int64_t now_ms) {
  auto c = acquire();
  transaction tx(c.get(), transaction::kind::audited);
  purge_result out;
  const result s = run(c.get(),
                       "SELECT seq, status, spool_path, image_kept_until, image_sha256 FROM scans WHERE id = $1 FOR "
                       "UPDATE",
                       {id});
  if (s.empty()) {
    return out;
  }
  const auto status = parse_scan_status(s.text(0, 1));
  if (status != scan_status::done && status != scan_status::failed && status != scan_status::cancelled) {
    out.result = purge_result::outcome::active;
    return out;
  }
  const std::int64_t seq = s.integer(0, 0);
  out.spool_path = s.text(0, 2);
  out.image_kept = !s.is_null(0, 3);
  const std::string image_sha256 = s.text(0, 4);
  const result r = run(c.get(), "SELECT path, sha256 FROM report_documents WHERE scan_seq = $1", {seq});
  if (!r.empty()) {
    out.report_path = r.text(0, 0);
    out.report_sha256 = r.text(0, 1);
  }
  // Files, findings, evidence, reviews, marks and the document go with it (ON DELETE CASCADE).
  run(c.get(), "DELETE FROM scans WHERE seq = $1", {seq});
  audit(c.get(), now_ms, "report_purged", id,
        {{"report_sha256", out.report_sha256.empty() ? nlohmann::json(nullptr) : nlohmann::json(out.report_sha256)},
         {"image_sha256", image_sha256},
         {"image_deleted", out.image_kept}},
        by);
  tx.commit();
  out.result = purge_result::outcome::purged;
  return out;
}

bool postgres_report_store::add_review(std::string_view id, const review_record& review, const actor& by) {
  auto c = acquire();
  transaction tx(c.get(), transaction::kind::audited);
  const auto seq = done_seq_of(c.get(), id);
  if (!seq) {
    return false;
  }
  run(c.get(), "INSERT INTO reviews (scan_seq, at, decision, note, reviewer, role) VALUES ($1,$2,$3,$4,$5,$6)",
      {*seq, review.at, review.decision, review.note, review.reviewer, review.role});
  run(c.get(), "UPDATE scans SET review_state = $1 WHERE seq = $2", {review.decision, *seq});
  audit(c.get(), review.at, "review_recorded", id, {{"decision", review.decision}, {"note", review.note}}, by);
  tx.commit();
  return true;
}

std::optional<std::vector<review_record>> postgres_report_store::list_reviews(std::string_view id) {
  auto c = acquire();
  return rows_of_scan<review_record>(c.get(),
                                     "SELECT r.seq, r.at, r.decision, r.note, r.reviewer, r.role FROM scans s LEFT "
                                     "JOIN reviews r ON r.scan_seq = s.seq WHERE s.id = $1 ORDER BY r.seq",
                                     id, [](const result& r, int i) -> review_record {
                                       return {r.integer(i, 0), r.integer(i, 1), r.text(i, 2),
                                               r.text(i, 3),    r.text(i, 4),    r.text(i, 5)};
                                     });
}

disposition_result postgres_report_store::add_disposition(std::string_view id, const disposition_record& mark,
                                                          const actor& by) {
  auto c = acquire();
  transaction tx(c.get(), transaction::kind::audited);
  disposition_result out;
  // FOR UPDATE: two reviewers marking findings of one report at once each
  // count the other's mark in the derived verdict.
  const result s =
      run(c.get(), "SELECT seq, status, verdict, verdict_without_flags FROM scans WHERE id = $1 FOR UPDATE", {id});
  if (s.empty()) {
    return out;
  }
  if (s.text(0, 1) != "done") {
    out.result = disposition_result::outcome::not_done;
    return out;
  }
  const std::int64_t seq = s.integer(0, 0);
  const std::string verdict = s.text(0, 2), without_flags = s.text(0, 3);
  const result f = run(c.get(), "SELECT path, rule FROM report_findings WHERE scan_seq = $1 AND finding_id = $2",
                       {seq, mark.finding_id});
  if (f.empty()) {
    out.result = disposition_result::outcome::no_finding;
    return out;
  }
  const std::string path = f.text(0, 0), rule = f.text(0, 1);
  run(c.get(),
      "INSERT INTO dispositions (scan_seq, finding_id, at, false_positive, note, reviewer, role) VALUES "
      "($1,$2,$3,$4,$5,$6,$7)",
      {seq, mark.finding_id, mark.at, param::flag(mark.false_positive), mark.note, mark.reviewer, mark.role});
  // Flagging findings whose last mark is not "false positive".
  const result left = run(c.get(),
                          "SELECT COUNT(*) FROM report_findings f WHERE f.scan_seq = $1 AND f.flagging AND NOT "
                          "COALESCE((SELECT d.false_positive FROM dispositions d WHERE d.scan_seq = $1 AND "
                          "d.finding_id = f.finding_id ORDER BY d.seq DESC LIMIT 1), FALSE)",
                          {seq});
  const bool still_flagged = left.integer(0, 0) > 0;
  out.derived_verdict = store_rules::derived_verdict(verdict, without_flags, still_flagged);
  run(c.get(), "UPDATE scans SET derived_verdict = $1 WHERE seq = $2", {out.derived_verdict, seq});
  audit(c.get(), mark.at, "disposition_recorded", id,
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

std::optional<std::vector<disposition_record>> postgres_report_store::list_dispositions(std::string_view id) {
  auto c = acquire();
  return rows_of_scan<disposition_record>(
      c.get(),
      "SELECT d.seq, d.at, d.finding_id, d.false_positive, d.note, d.reviewer, d.role FROM scans s LEFT JOIN "
      "dispositions d ON d.scan_seq = s.seq WHERE s.id = $1 ORDER BY d.seq",
      id, [](const result& d, int i) -> disposition_record {
        return {d.integer(i, 0), d.integer(i, 1), d.text(i, 2), d.boolean(i, 3),
                d.text(i, 4),    d.text(i, 5),    d.text(i, 6)};
      });
}

hash_page postgres_report_store::find_by_hash(const hash_query& hq) {
  const char* column = hq.algorithm == "md5" ? "md5" : hq.algorithm == "sha1" ? "sha1" : "sha256";
  query q;
  // No column name of report_files is also one of scans.
  q.sql = std::string("SELECT ") + scan_columns + ", f.idx, f.path, f.deleted, f.flagged FROM report_files f JOIN " +
          "scans s ON s.seq = f.scan_seq WHERE f." + column + " = " + q.bind(hq.value) + " AND s.status = 'done'";
  if (hq.before) {
    q.sql += " AND (f.scan_seq, f.idx) < (" + q.bind(hq.before->first) + ", " + q.bind(hq.before->second) + ")";
  }
  q.sql += " ORDER BY f.scan_seq DESC, f.idx DESC" + limit_plus_one(q, hq.limit);
  auto c = acquire();
  const result s = run(c.get(), q.sql, q.params);
  hash_page page;
  const int n = scan_column_count;
  for (int i = 0; i < s.rows(); ++i) {
    if (page.items.size() == hq.limit) {
      page.next = std::pair(page.items.back().scan.seq, page.items.back().index);
      break;
    }
    hash_hit hit;
    hit.scan = read_scan(s, i);
    hit.index = s.integer(i, n);
    hit.path = s.text(i, n + 1);
    hit.deleted = s.boolean(i, n + 2);
    hit.flagged = s.boolean(i, n + 3);
    page.items.push_back(std::move(hit));
  }
  return page;
}

bool postgres_report_store::add_token(const token_record& token, const actor& by) {
  auto c = acquire();
  transaction tx(c.get(), transaction::kind::audited);
  const result s =
      run(c.get(), "INSERT INTO tokens (name, role, digest, created_at) VALUES ($1,$2,$3,$4) ON CONFLICT DO NOTHING",
          {token.name, to_string(token.role), scanner::to_hex(token.digest), token.created_at});
  if (s.affected() == 0) {
    return false;
  }
  audit(c.get(), token.created_at, "token_created", "", {{"name", token.name}, {"role", to_string(token.role)}}, by);
  tx.commit();
  return true;
}

std::vector<token_record> postgres_report_store::list_tokens() {
  auto c = acquire();
  const result s = run(c.get(), "SELECT name, role, digest, created_at FROM tokens ORDER BY name COLLATE \"C\"");
  std::vector<token_record> out;
  for (int i = 0; i < s.rows(); ++i) {
    token_record t;
    t.name = s.text(i, 0);
    t.role = parse_role(s.text(i, 1)).value_or(role::station);
    t.digest = digest_from_hex(s.text(i, 2));
    t.created_at = s.integer(i, 3);
    out.push_back(std::move(t));
  }
  return out;
}

bool postgres_report_store::revoke_token(std::string_view name, const actor& by, std::int64_t now_ms) {
  auto c = acquire();
  transaction tx(c.get(), transaction::kind::audited);
  const result d = run(c.get(), "DELETE FROM tokens WHERE name = $1 RETURNING role", {name});
  if (d.empty()) {
    return false;
  }
  audit(c.get(), now_ms, "token_revoked", "", {{"name", name}, {"role", d.text(0, 0)}}, by);
  tx.commit();
  return true;
}

void postgres_report_store::add_evidence(std::string_view id, const std::vector<evidence_record>& kept,
                                         std::int64_t now_ms) {
  auto c = acquire();
  transaction tx(c.get(), transaction::kind::audited);
  const std::int64_t seq = seq_of(c.get(), id);
  std::uint64_t bytes = 0;
  for (const auto& e : kept) {
    run(c.get(),
        "INSERT INTO evidence (scan_seq, sha256, size, path, kept_until, state) VALUES ($1,$2,$3,$4,$5,'kept') ON "
        "CONFLICT (scan_seq, sha256) DO UPDATE SET size = EXCLUDED.size, path = EXCLUDED.path, kept_until = "
        "EXCLUDED.kept_until, state = 'kept'",
        {seq, e.sha256, to_i64(e.size), e.path, e.kept_until});
    bytes += e.size;
  }
  nlohmann::json until = nullptr;
  if (!kept.empty() && kept.front().kept_until) {
    until = format_time(*kept.front().kept_until);
  }
  audit(c.get(), now_ms, "evidence_kept", id, {{"copies", kept.size()}, {"bytes", bytes}, {"until", until}});
  tx.commit();
}

std::optional<evidence_record> postgres_report_store::find_evidence(std::string_view id, std::string_view sha256) {
  auto c = acquire();
  const result s = run(c.get(),
                       "SELECT e.sha256, e.size, e.path, e.kept_until, e.state FROM evidence e JOIN scans s ON s.seq "
                       "= e.scan_seq WHERE s.id = $1 AND e.sha256 = $2",
                       {id, sha256});
  if (s.empty()) {
    return std::nullopt;
  }
  return evidence_record{s.text(0, 0), static_cast<std::uint64_t>(s.integer(0, 1)), s.text(0, 2), s.opt_integer(0, 3),
                         s.text(0, 4)};
}

std::vector<std::pair<std::string, evidence_record>> postgres_report_store::expired_evidence(std::int64_t now_ms) {
  auto c = acquire();
  const result s = run(c.get(),
                       "SELECT s.id, e.sha256, e.size, e.path, e.kept_until, e.state FROM evidence e JOIN scans s ON "
                       "s.seq = e.scan_seq WHERE e.state = 'kept' AND e.kept_until IS NOT NULL AND e.kept_until <= $1",
                       {now_ms});
  std::vector<std::pair<std::string, evidence_record>> out;
  for (int i = 0; i < s.rows(); ++i) {
    out.emplace_back(s.text(i, 0), evidence_record{s.text(i, 1), static_cast<std::uint64_t>(s.integer(i, 2)),
                                                   s.text(i, 3), s.opt_integer(i, 4), s.text(i, 5)});
  }
  return out;
}

void postgres_report_store::evidence_expired(std::string_view id, std::string_view sha256, std::int64_t now_ms) {
  auto c = acquire();
  transaction tx(c.get(), transaction::kind::audited);
  run(c.get(), "UPDATE evidence SET state = 'expired' WHERE scan_seq = $1 AND sha256 = $2",
      {seq_of(c.get(), id), sha256});
  audit(c.get(), now_ms, "evidence_purged", id, {{"sha256", sha256}, {"reason", "kept_days passed"}});
  tx.commit();
}

std::optional<std::vector<file_type_count>> postgres_report_store::file_types(std::string_view id) {
  auto c = acquire();
  const auto seq = done_seq_of(c.get(), id);
  if (!seq) {
    return std::nullopt;
  }
  // The size is read out of each entry's JSON: one pass over the scan's rows.
  const result s = run(c.get(),
                       "SELECT mime, count(*), coalesce(sum((json::jsonb ->> 'size')::bigint), 0) FROM report_files "
                       "WHERE scan_seq = $1 GROUP BY mime ORDER BY count(*) DESC, mime COLLATE \"C\"",
                       {*seq});
  std::vector<file_type_count> out;
  for (int i = 0; i < s.rows(); ++i) {
    out.push_back(
        {s.text(i, 0), static_cast<std::uint64_t>(s.integer(i, 1)), static_cast<std::uint64_t>(s.integer(i, 2))});
  }
  return out;
}

std::optional<std::string> postgres_report_store::find_file(std::string_view id, std::int64_t index) {
  auto c = acquire();
  const result s = run(c.get(),
                       "SELECT f.json FROM report_files f JOIN scans s ON s.seq = f.scan_seq WHERE s.id = $1 AND "
                       "s.status = 'done' AND f.idx = $2",
                       {id, index});
  return s.empty() ? std::nullopt : std::optional(s.text(0, 0));
}

std::optional<stored_report> postgres_report_store::find_report(std::string_view id) {
  auto c = acquire();
  const result s = run(c.get(),
                       "SELECT d.path, d.size, d.sha256, s.verdict, s.score, s.ruleset_digest, s.files, "
                       "s.flagged_files, s.bytes_scanned FROM report_documents d JOIN scans s ON s.seq = d.scan_seq "
                       "WHERE s.id = $1 AND s.status = 'done'",
                       {id});
  if (s.empty()) {
    return std::nullopt;
  }
  stored_report r;
  r.path = s.text(0, 0);
  r.size = static_cast<std::uint64_t>(s.integer(0, 1));
  r.sha256 = s.text(0, 2);
  r.verdict = s.text(0, 3);
  r.score = static_cast<int>(s.integer(0, 4));
  r.ruleset_digest = s.text(0, 5);
  r.files = static_cast<std::uint64_t>(s.integer(0, 6));
  r.flagged_files = static_cast<std::uint64_t>(s.integer(0, 7));
  r.bytes = static_cast<std::uint64_t>(s.integer(0, 8));
  return r;
}

report_page postgres_report_store::list_reports(const report_filter& filter) {
  query q;
  std::string where = "WHERE status = 'done'";
  if (filter.verdict) {
    where += " AND derived_verdict = " + q.bind(*filter.verdict);
  }
  // The derived review states are conditions on the verdict and the last decision.
  if (filter.review && *filter.review == "pending") {
    where += " AND review_state = 'unreviewed' AND verdict IN ('flagged', 'incomplete', 'error')";
  } else if (filter.review && *filter.review == "reviewed") {
    where += " AND review_state <> 'unreviewed'";
  } else if (filter.review && *filter.review == "not_required") {
    where += " AND review_state = 'unreviewed' AND verdict = 'clean'";
  } else if (filter.review) {
    where += " AND review_state = " + q.bind(*filter.review);
  }
  if (filter.station) {
    where += " AND station = " + q.bind(*filter.station);
  }
  if (filter.case_ref) {
    where += " AND case_ref = " + q.bind(*filter.case_ref);
  }
  if (filter.since) {
    where += " AND submitted_at >= " + q.bind(*filter.since);
  }
  if (filter.until) {
    where += " AND submitted_at < " + q.bind(*filter.until);
  }
  if (filter.before_seq) {
    where += " AND seq < " + q.bind(*filter.before_seq);
  }
  where += " ORDER BY seq DESC" + limit_plus_one(q, filter.limit);
  q.sql = select_scans(where);
  auto c = acquire();
  report_page page;
  page.items = read_scans(run(c.get(), q.sql, q.params));
  if (page.items.size() > filter.limit) {
    page.items.pop_back();
    page.next_seq = page.items.back().seq;
  }
  return page;
}

std::optional<file_page> postgres_report_store::list_files(std::string_view id, const file_filter& filter) {
  auto c = acquire();
  const auto seq = done_seq_of(c.get(), id);
  if (!seq) {
    return std::nullopt;
  }
  query q;
  q.sql = "SELECT idx, json FROM report_files WHERE scan_seq = " + q.bind(*seq);
  if (filter.flagged) {
    q.sql += " AND flagged = " + q.bind(param::flag(*filter.flagged));
  }
  if (filter.deleted) {
    q.sql += " AND deleted = " + q.bind(param::flag(*filter.deleted));
  }
  if (filter.mime) {
    q.sql += " AND mime = " + q.bind(*filter.mime);
  }
  if (filter.path_contains) {
    // strpos, not LIKE: % and _ in what the inspector types are plain text.
    q.sql += " AND strpos(lower(path), lower(" + q.bind(*filter.path_contains) + ")) > 0";
  }
  if (filter.after_index) {
    q.sql += " AND idx > " + q.bind(*filter.after_index);
  }
  q.sql += " ORDER BY idx" + limit_plus_one(q, filter.limit);
  const result s = run(c.get(), q.sql, q.params);
  file_page page;
  for (int i = 0; i < s.rows(); ++i) {
    if (page.items.size() == filter.limit) {
      page.next_index = page.indexes.back();
      break;
    }
    page.items.push_back(s.text(i, 1));
    page.indexes.push_back(s.integer(i, 0));
  }
  return page;
}

std::size_t postgres_report_store::count(scan_status status) {
  auto c = acquire();
  return static_cast<std::size_t>(
      run(c.get(), "SELECT COUNT(*) FROM scans WHERE status = $1", {to_string(status)}).integer(0, 0));
}

std::vector<scan_record> postgres_report_store::active_scans() {
  auto c = acquire();
  return read_scans(run(c.get(), select_scans("WHERE status IN ('queued', 'running') ORDER BY seq")));
}

std::vector<std::string> postgres_report_store::live_spool_paths() {
  auto c = acquire();
  const result s = run(
      c.get(), "SELECT spool_path FROM scans WHERE status IN ('queued', 'running') OR image_kept_until IS NOT NULL");
  std::vector<std::string> out;
  for (int i = 0; i < s.rows(); ++i) {
    out.push_back(s.text(i, 0));
  }
  return out;
}

namespace {

std::optional<cluster_ruleset> read_cluster_rules(const result& s) {
  if (s.empty()) {
    return std::nullopt;
  }
  return cluster_ruleset{s.text(0, 0), s.integer(0, 1), s.text(0, 2), s.integer(0, 3)};
}

}  // namespace

std::optional<cluster_ruleset> postgres_report_store::cluster_rules() {
  auto c = acquire();
  return read_cluster_rules(run(c.get(), "SELECT digest, yara_rules, node, set_at FROM cluster_rules WHERE id = 1"));
}

std::optional<cluster_ruleset> postgres_report_store::set_cluster_rules(const cluster_ruleset& rules) {
  auto c = acquire();
  transaction tx(c.get());
  // The row lock makes two nodes setting it at once take turns; each sees the one before its own.
  auto before = read_cluster_rules(
      run(c.get(), "SELECT digest, yara_rules, node, set_at FROM cluster_rules WHERE id = 1 FOR UPDATE"));
  run(c.get(),
      "INSERT INTO cluster_rules (id, digest, yara_rules, node, set_at) VALUES (1, $1, $2, $3, $4) ON CONFLICT (id) DO "
      "UPDATE SET digest = excluded.digest, yara_rules = excluded.yara_rules, node = excluded.node, set_at = "
      "excluded.set_at",
      {rules.digest, rules.yara_rules, rules.node, rules.set_at});
  tx.commit();
  return before;
}

bool postgres_report_store::writable() {
  try {
    auto c = acquire();
    // A standby (read-only replica) or a server that is gone is not writable.
    return run(c.get(), "SELECT NOT pg_is_in_recovery()").boolean(0, 0);
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace borderscan::server
