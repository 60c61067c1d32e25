#include "borderscan/server/sqlite_store.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "borderscan/scanner/digest.hpp"
#include "borderscan/scanner/report_file.hpp"
#include "borderscan/server/report_ingest.hpp"
#include "server/store_backends.hpp"
#include "support/test_support.hpp"

namespace borderscan::server {
namespace {

std::string test_support_read(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// The node these tests claim scans as, with a 10 s lease.
const node_lease this_node{"node-a", 10'000};

scan_record make_scan(const std::string& id, std::int64_t at, const std::string& station = "k1") {
  scan_record s;
  s.id = id;
  s.station = station;
  s.image_sha256 = std::string(64, 'a');
  s.image_size = 10;
  s.spool_path = "/spool/" + id + ".img";
  s.submitted_at = at;
  return s;
}

scanner::report make_report(scanner::verdict v, bool with_finding) {
  scanner::report r;
  r.ruleset.digest = "sha256:00";
  scanner::file_entry clean;
  clean.path = "/a.txt";
  clean.mime = "text/plain";
  scanner::file_entry bad;
  bad.path = "/b.com";
  bad.deleted = true;
  bad.mime = "application/x-dosexec";
  if (with_finding) {
    scanner::finding f;
    f.path = bad.path;
    f.rule = "eicar";
    f.level = scanner::severity::high;
    bad.findings.push_back(f);
  }
  r.files = {clean, bad};
  scanner::finalize(r, scanner::severity::medium);
  r.result = v;
  return r;
}

// Stores `report` as the report of `scan`, the way the worker pool does: a
// report file written as a worker writes it, then report_ingest.
void complete_with(report_store& store, const test::scratch_dir& dir, const scan_record& scan, scanner::report report,
                   std::int64_t now) {
  report.scan_id = scan.id;
  report.image.sha256 = scan.image_sha256;
  const auto path = dir / (scan.id + ".report.json");
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  const auto written = scanner::write_report_file(fd, report);
  ::close(fd);
  report_ingest ingest(store, {.reports_dir = dir / "reports", .evidence_dir = {}});
  store.complete(
      scan.id,
      ingest.ingest(scan, {path, written.size, written.sha256, report.ruleset.digest, {}}, scanner::severity::medium),
      now);
}

class Store : public StoreBackends {};
BORDERSCAN_STORE_BACKENDS(Store);

std::string id_n(int n) {
  char buf[33];
  std::snprintf(buf, sizeof buf, "%032x", n);
  return buf;
}

TEST(SqliteStore, MigratesANewFileToTheLatestVersionAndReopens) {
  test::scratch_dir dir;
  {
    sqlite_report_store store(dir / "db.sqlite");
    EXPECT_EQ(store.current_version(), sqlite_report_store::schema_version());
    auto s = make_scan(id_n(1), 1000);
    store.add_scan(s, {});
  }
  sqlite_report_store again(dir / "db.sqlite");
  EXPECT_TRUE(again.find_scan(id_n(1)).has_value());
  EXPECT_TRUE(again.writable());
}

TEST(PostgresStore, MigratesANewDatabaseToTheLatestVersionAndReopens) {
  const std::string url = test::new_postgres_database();
  {
    postgres_report_store store(url);
    EXPECT_EQ(store.current_version(), postgres_report_store::schema_version());
    auto s = make_scan(id_n(1), 1000);
    store.add_scan(s, {});
  }
  postgres_report_store again(url);
  EXPECT_EQ(again.current_version(), postgres_report_store::schema_version());
  EXPECT_TRUE(again.find_scan(id_n(1)).has_value());
  EXPECT_TRUE(again.writable());
}

TEST(PostgresStore, RefusesASchemaNewerThanItKnowsAndAServerThatIsNotThere) {
  const std::string url = test::new_postgres_database();
  { postgres_report_store store(url); }
  test::postgres_exec(url, "UPDATE borderscan_schema SET version = 999");
  try {
    postgres_report_store store(url);
    ADD_FAILURE() << "opened a schema from the future";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("newer than this build knows"), std::string::npos) << e.what();
  }
  test::scratch_dir nowhere;
  try {
    postgres_report_store store("postgresql:///x?host=" + nowhere.path().string() + "&user=borderscan");
    ADD_FAILURE() << "connected to no server";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot connect to PostgreSQL"), std::string::npos) << e.what();
  }
}

// Two nodes (two stores on one database) claiming at once never get the same
// scan (FOR UPDATE SKIP LOCKED), and every scan is claimed once.
TEST(PostgresStore, NodesClaimingAtOnceEachGetADifferentScan) {
  const std::string url = test::new_postgres_database();
  postgres_report_store a(url), b(url);
  constexpr int scans = 40;
  for (int i = 1; i <= scans; ++i) {
    auto s = make_scan(id_n(i), i);
    a.add_scan(s, {});
  }
  std::mutex mutex;
  std::vector<std::string> claimed;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      report_store& store = t % 2 == 0 ? static_cast<report_store&>(a) : b;
      while (const auto s = store.claim_next(5000, this_node)) {
        std::lock_guard lock(mutex);
        claimed.push_back(s->id);
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  std::sort(claimed.begin(), claimed.end());
  EXPECT_EQ(claimed.size(), static_cast<std::size_t>(scans));
  EXPECT_EQ(std::adjacent_find(claimed.begin(), claimed.end()), claimed.end()) << "a scan claimed twice";
  EXPECT_EQ(a.count(scan_status::running), static_cast<std::size_t>(scans));
}

TEST(SqliteStore, MigratesAVersionOneFileKeepingItsScans) {
  test::scratch_dir dir;
  const auto file = dir / "v1.sqlite";
  {
    // The schema as version 1 shipped it, with one scan in it.
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
    const char* v1 =
        "CREATE TABLE scans (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, status TEXT NOT NULL, "
        "station TEXT NOT NULL DEFAULT '', label TEXT NOT NULL DEFAULT '', case_ref TEXT NOT NULL DEFAULT '', "
        "filename TEXT NOT NULL DEFAULT '', image_sha256 TEXT NOT NULL, image_size INTEGER NOT NULL, spool_path TEXT "
        "NOT NULL, submitted_at INTEGER NOT NULL, started_at INTEGER, finished_at INTEGER, attempts INTEGER NOT NULL "
        "DEFAULT 0, error TEXT NOT NULL DEFAULT '', verdict TEXT, score INTEGER, ruleset_digest TEXT NOT NULL DEFAULT "
        "'', review_state TEXT NOT NULL DEFAULT 'unreviewed', files INTEGER NOT NULL DEFAULT 0, flagged_files INTEGER "
        "NOT NULL DEFAULT 0);"
        "CREATE TABLE reports (scan_seq INTEGER PRIMARY KEY REFERENCES scans(seq) ON DELETE CASCADE, json TEXT NOT "
        "NULL);"
        "CREATE TABLE report_files (scan_seq INTEGER NOT NULL REFERENCES scans(seq) ON DELETE CASCADE, idx INTEGER "
        "NOT NULL, path TEXT NOT NULL, deleted INTEGER NOT NULL, mime TEXT NOT NULL, flagged INTEGER NOT NULL, json "
        "TEXT NOT NULL, PRIMARY KEY (scan_seq, idx)) WITHOUT ROWID;"
        "INSERT INTO scans (id, status, image_sha256, image_size, spool_path, submitted_at) VALUES "
        "('00000000000000000000000000000001', 'queued', 'aa', 1, '/spool/1.img', 5);"
        "PRAGMA user_version=1;";
    ASSERT_EQ(sqlite3_exec(db, v1, nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    sqlite3_close(db);
  }
  sqlite_report_store store(file);
  EXPECT_EQ(store.current_version(), sqlite_report_store::schema_version());
  const auto old = store.find_scan(id_n(1));
  ASSERT_TRUE(old);
  EXPECT_EQ(old->status, scan_status::queued);
  EXPECT_FALSE(old->image_kept_until);
  EXPECT_TRUE(store.list_audit({}).items.empty());
}

TEST(SqliteStore, MovesReportsOfSchemaThreeIntoFilesKeepingTheirBytes) {
  test::scratch_dir dir;
  const auto file = dir / "v3.sqlite";
  const std::string text = R"({"schema":"borderscan.report/v1","files":[],"verdict":"clean"})";
  {
    // Schema 3 as it shipped, made by this build's own migrations up to 3
    // would need the old code: build it by hand, a done scan with its report.
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
    const std::string v3 =
        "CREATE TABLE scans (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, status TEXT NOT NULL, "
        "station TEXT NOT NULL DEFAULT '', label TEXT NOT NULL DEFAULT '', case_ref TEXT NOT NULL DEFAULT '', "
        "filename TEXT NOT NULL DEFAULT '', image_sha256 TEXT NOT NULL, image_size INTEGER NOT NULL, spool_path TEXT "
        "NOT NULL, submitted_at INTEGER NOT NULL, started_at INTEGER, finished_at INTEGER, attempts INTEGER NOT NULL "
        "DEFAULT 0, error TEXT NOT NULL DEFAULT '', verdict TEXT, score INTEGER, ruleset_digest TEXT NOT NULL DEFAULT "
        "'', review_state TEXT NOT NULL DEFAULT 'unreviewed', files INTEGER NOT NULL DEFAULT 0, flagged_files INTEGER "
        "NOT NULL DEFAULT 0, image_kept_until INTEGER, bytes_scanned INTEGER NOT NULL DEFAULT 0);"
        "CREATE TABLE reports (scan_seq INTEGER PRIMARY KEY REFERENCES scans(seq) ON DELETE CASCADE, json TEXT NOT "
        "NULL);"
        "CREATE TABLE report_files (scan_seq INTEGER NOT NULL REFERENCES scans(seq) ON DELETE CASCADE, idx INTEGER "
        "NOT NULL, path TEXT NOT NULL, deleted INTEGER NOT NULL, mime TEXT NOT NULL, flagged INTEGER NOT NULL, json "
        "TEXT NOT NULL, PRIMARY KEY (scan_seq, idx)) WITHOUT ROWID;"
        "CREATE TABLE audit_log (seq INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, event TEXT NOT NULL, "
        "scan_id TEXT NOT NULL, detail TEXT NOT NULL);"
        "INSERT INTO scans (id, status, image_sha256, image_size, spool_path, submitted_at, verdict, score) VALUES "
        "('00000000000000000000000000000001', 'done', 'aa', 1, '/spool/1.img', 5, 'clean', 0);"
        "INSERT INTO reports (scan_seq, json) VALUES (1, '" +
        text +
        "');"
        "INSERT INTO audit_log (at, event, scan_id, detail) VALUES (5, 'scan_submitted', "
        "'00000000000000000000000000000001', '{}'), (6, 'scan_done', '00000000000000000000000000000001', "
        "'{\"verdict\":\"clean\"}');"
        "PRAGMA user_version=3;";
    ASSERT_EQ(sqlite3_exec(db, v3.c_str(), nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    sqlite3_close(db);
  }
  sqlite_report_store store(file, dir / "reports");
  EXPECT_EQ(store.current_version(), sqlite_report_store::schema_version());
  const auto stored = store.find_report(id_n(1));
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->path, (dir / "reports" / (id_n(1) + ".json")).string());
  EXPECT_EQ(test_support_read(stored->path), text) << "the stored bytes, unchanged";
  EXPECT_EQ(stored->sha256, scanner::sha256_hex(text));
  EXPECT_EQ(stored->size, text.size());
  EXPECT_EQ(stored->verdict, "clean");
  // Entries written before the audit chain existed are sealed into it, by `system`.
  const audit_check chain = store.verify_audit();
  EXPECT_TRUE(chain.intact()) << chain.problem;
  EXPECT_EQ(chain.entries, 2);
  const auto entries = store.list_audit({}).items;
  ASSERT_EQ(entries.size(), 2U);
  EXPECT_EQ(entries[0].prev_sha256, entries[1].sha256);
  EXPECT_EQ(entries[1].by.name, "system");
}

TEST(SqliteStore, MigratesCancelledScansDerivedVerdictsAndFileHashesToVersionSeven) {
  test::scratch_dir dir;
  const auto file = dir / "v3.sqlite";
  const std::string sha = std::string(64, 'e');
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
    // Schema 3 by hand: a scan cancelled the old way (failed, error
    // "cancelled") and a done flagged scan with one file row.
    const std::string v3 =
        "CREATE TABLE scans (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, status TEXT NOT NULL, "
        "station TEXT NOT NULL DEFAULT '', label TEXT NOT NULL DEFAULT '', case_ref TEXT NOT NULL DEFAULT '', "
        "filename TEXT NOT NULL DEFAULT '', image_sha256 TEXT NOT NULL, image_size INTEGER NOT NULL, spool_path TEXT "
        "NOT NULL, submitted_at INTEGER NOT NULL, started_at INTEGER, finished_at INTEGER, attempts INTEGER NOT NULL "
        "DEFAULT 0, error TEXT NOT NULL DEFAULT '', verdict TEXT, score INTEGER, ruleset_digest TEXT NOT NULL DEFAULT "
        "'', review_state TEXT NOT NULL DEFAULT 'unreviewed', files INTEGER NOT NULL DEFAULT 0, flagged_files INTEGER "
        "NOT NULL DEFAULT 0, image_kept_until INTEGER, bytes_scanned INTEGER NOT NULL DEFAULT 0);"
        "CREATE TABLE reports (scan_seq INTEGER PRIMARY KEY REFERENCES scans(seq) ON DELETE CASCADE, json TEXT NOT "
        "NULL);"
        "CREATE TABLE report_files (scan_seq INTEGER NOT NULL REFERENCES scans(seq) ON DELETE CASCADE, idx INTEGER "
        "NOT NULL, path TEXT NOT NULL, deleted INTEGER NOT NULL, mime TEXT NOT NULL, flagged INTEGER NOT NULL, json "
        "TEXT NOT NULL, PRIMARY KEY (scan_seq, idx)) WITHOUT ROWID;"
        "CREATE TABLE audit_log (seq INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, event TEXT NOT NULL, "
        "scan_id TEXT NOT NULL, detail TEXT NOT NULL);"
        "INSERT INTO scans (id, status, image_sha256, image_size, spool_path, submitted_at, error) VALUES "
        "('00000000000000000000000000000001', 'failed', 'aa', 1, '/spool/1.img', 5, 'cancelled');"
        "INSERT INTO scans (id, status, image_sha256, image_size, spool_path, submitted_at, verdict, score) VALUES "
        "('00000000000000000000000000000002', 'done', 'bb', 1, '/spool/2.img', 6, 'flagged', 80);"
        "INSERT INTO reports (scan_seq, json) VALUES (2, '{}');"
        "INSERT INTO report_files VALUES (2, 0, '/x.com', 0, 'text/plain', 1, '{\"path\":\"/x.com\",\"sha256\":\"" +
        sha +
        "\",\"md5\":null}');"
        "PRAGMA user_version=3;";
    ASSERT_EQ(sqlite3_exec(db, v3.c_str(), nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    sqlite3_close(db);
  }
  sqlite_report_store store(file, dir / "reports");
  EXPECT_EQ(store.current_version(), sqlite_report_store::schema_version());
  EXPECT_EQ(store.find_scan(id_n(1))->status, scan_status::cancelled);
  EXPECT_EQ(store.find_scan(id_n(2))->derived_verdict, "flagged");
  hash_query q;
  q.algorithm = "sha256";
  q.value = sha;
  const auto seen = store.find_by_hash(q);
  ASSERT_EQ(seen.items.size(), 1U);
  EXPECT_EQ(seen.items[0].path, "/x.com");
  EXPECT_EQ(seen.items[0].scan.id, id_n(2));
  q.algorithm = "md5";
  q.value = std::string(32, 'e');
  EXPECT_TRUE(store.find_by_hash(q).items.empty()) << "a null hash is never found";
  // A report stored before findings had ids has none to mark.
  disposition_record mark;
  mark.finding_id = std::string(32, 'a');
  EXPECT_EQ(store.add_disposition(id_n(2), mark, {}).result, disposition_result::outcome::no_finding);
}

TEST_P(Store, AuditsEveryStateChangeInOrderWithFiltersAndACursor) {
  const auto opened = open();
  report_store& store = *opened;
  auto a = make_scan(id_n(1), 1000, "kiosk-7");
  auto b = make_scan(id_n(2), 1100);
  store.add_scan(a, {});
  store.add_scan(b, {});
  store.claim_next(1200, this_node);
  complete_with(store, dir, a, make_report(scanner::verdict::flagged, true), 1300);
  store.keep_image(a.id, 1300 + 86'400'000, 1300);
  EXPECT_TRUE(store.cancel_queued(b.id, 1400, {}));

  const auto all = store.list_audit({});
  ASSERT_EQ(all.items.size(), 5U);
  std::vector<std::string> events;
  for (const auto& e : all.items) {
    events.push_back(e.event + ":" + e.scan_id.substr(31));
  }
  EXPECT_EQ(events, (std::vector<std::string>{"scan_cancelled:2", "image_kept:1", "scan_done:1", "scan_submitted:2",
                                              "scan_submitted:1"}));
  EXPECT_EQ(all.items[0].detail.at("was"), "queued");
  EXPECT_EQ(all.items[1].detail.at("until"), "1970-01-02T00:00:01.300Z");
  EXPECT_EQ(all.items[2].detail.at("verdict"), "flagged");
  EXPECT_EQ(all.items[2].detail.at("report_sha256").get<std::string>().size(), 64U);
  EXPECT_EQ(all.items[4].detail.at("station"), "kiosk-7");
  EXPECT_EQ(all.items[4].at, 1000);

  audit_filter only_a;
  only_a.scan_id = a.id;
  only_a.limit = 2;
  const auto first = store.list_audit(only_a);
  ASSERT_EQ(first.items.size(), 2U);
  ASSERT_TRUE(first.next_seq);
  only_a.before_seq = first.next_seq;
  const auto second = store.list_audit(only_a);
  ASSERT_EQ(second.items.size(), 1U);
  EXPECT_EQ(second.items[0].event, "scan_submitted");
  EXPECT_FALSE(second.next_seq);

  audit_filter cancels;
  cancels.event = "scan_cancelled";
  EXPECT_EQ(store.list_audit(cancels).items.size(), 1U);
}

TEST_P(Store, KeptImagesStayNeededUntilTheirTimeThenAreListedAsExpired) {
  const auto opened = open();
  report_store& store = *opened;
  auto a = make_scan(id_n(1), 1000);
  store.add_scan(a, {});
  store.claim_next(1000, this_node);
  store.fail(a.id, "crashed: SIGSEGV", 2000);
  EXPECT_TRUE(store.live_spool_paths().empty());
  store.keep_image(a.id, 5000, 2000);
  EXPECT_EQ(store.find_scan(a.id)->image_kept_until, 5000);
  EXPECT_EQ(store.live_spool_paths(), std::vector<std::string>{a.spool_path});
  EXPECT_TRUE(store.expired_images(4999).empty());
  ASSERT_EQ(store.expired_images(5000).size(), 1U);
  store.image_deleted(a.id, "retention period ended", 5000);
  EXPECT_TRUE(store.expired_images(9000).empty());
  EXPECT_TRUE(store.live_spool_paths().empty());
  audit_filter deleted;
  deleted.event = "image_deleted";
  const auto page = store.list_audit(deleted);
  ASSERT_EQ(page.items.size(), 1U);
  EXPECT_EQ(page.items[0].detail.at("reason"), "retention period ended");
}

TEST_P(Store, ClaimsOldestQueuedFirstAndCountsAttempts) {
  const auto opened = open();
  report_store& store = *opened;
  auto a = make_scan(id_n(1), 1000);
  auto b = make_scan(id_n(2), 2000);
  store.add_scan(a, {});
  store.add_scan(b, {});
  EXPECT_LT(a.seq, b.seq);
  const auto first = store.claim_next(5000, this_node);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->id, a.id);
  EXPECT_EQ(first->attempts, 1U);
  EXPECT_EQ(store.find_scan(a.id)->status, scan_status::running);
  EXPECT_EQ(store.count(scan_status::queued), 1U);
  store.requeue(a.id, "shutdown", false);
  EXPECT_EQ(store.find_scan(a.id)->attempts, 0U);
  EXPECT_EQ(store.claim_next(6000, this_node)->id, a.id);
}

TEST_P(Store, RecoversRunningScansUntilAttemptsRunOut) {
  const auto opened = open();
  report_store& store = *opened;
  auto a = make_scan(id_n(1), 1000);
  store.add_scan(a, {});
  for (unsigned attempt = 1; attempt <= 3; ++attempt) {
    ASSERT_TRUE(store.claim_next(1000, this_node));
    EXPECT_EQ(store.recover_running(this_node.node, 3, 2000, 0), attempt < 3 ? 1U : 0U);
  }
  const auto gone = store.find_scan(a.id);
  EXPECT_EQ(gone->status, scan_status::failed);
  EXPECT_NE(gone->error.find("gave up after 3 attempts"), std::string::npos) << gone->error;
  EXPECT_FALSE(gone->image_kept_until);
  audit_filter failures;
  failures.event = "scan_failed";
  ASSERT_EQ(store.list_audit(failures).items.size(), 1U);
  EXPECT_EQ(store.list_audit(failures).items[0].detail.at("reason"), gone->error);
}

TEST_P(Store, RecoveryKeepsTheImageOfAScanItGivesUpOn) {
  const auto opened = open();
  report_store& store = *opened;
  auto a = make_scan(id_n(1), 1000);
  store.add_scan(a, {});
  ASSERT_TRUE(store.claim_next(1000, this_node));
  EXPECT_EQ(store.recover_running(this_node.node, 1, 2000, 3'600'000), 0U);
  EXPECT_EQ(store.find_scan(a.id)->image_kept_until, 2000 + 3'600'000);
  EXPECT_EQ(store.live_spool_paths(), std::vector<std::string>{a.spool_path});
}

TEST_P(Store, RecoveryAtStartUpTakesOnlyThisNodesScans) {
  const auto opened = open();
  report_store& store = *opened;
  auto mine = make_scan(id_n(1), 1000);
  auto theirs = make_scan(id_n(2), 1000);
  store.add_scan(mine, {});
  store.add_scan(theirs, {});
  ASSERT_EQ(store.claim_next(1000, this_node)->id, mine.id);
  ASSERT_EQ(store.claim_next(1000, {"node-b", 10'000})->id, theirs.id);
  EXPECT_EQ(store.recover_running(this_node.node, 3, 2000, 0), 1U);
  EXPECT_EQ(store.find_scan(mine.id)->status, scan_status::queued);
  EXPECT_EQ(store.find_scan(theirs.id)->status, scan_status::running);
}

TEST_P(Store, LapsedLeasesAreQueuedAgainAndCountAgainstMaxAttempts) {
  const auto opened = open();
  report_store& store = *opened;
  const node_lease other{"node-b", 10'000};
  auto a = make_scan(id_n(1), 1000);
  store.add_scan(a, {});
  std::int64_t now = 1000;
  for (unsigned attempt = 1; attempt <= 2; ++attempt) {
    ASSERT_EQ(store.claim_next(now, other)->id, a.id);
    // Renewed at +5 s: held until +15 s, not the +10 s of the claim.
    EXPECT_EQ(store.renew_leases(other, now + 5'000), std::vector<std::string>{a.id});
    EXPECT_TRUE(store.renew_leases(this_node, now + 5'000).empty());
    EXPECT_EQ(store.requeue_expired(2, now + 14'000, 0), 0U);
    EXPECT_EQ(store.find_scan(a.id)->status, scan_status::running);
    EXPECT_EQ(store.requeue_expired(2, now + 16'000, 3'600'000), attempt < 2 ? 1U : 0U);
    // The node that lost it learns so at its next renewal.
    EXPECT_TRUE(store.renew_leases(other, now + 17'000).empty());
    now += 20'000;
  }
  const auto gone = store.find_scan(a.id);
  EXPECT_EQ(gone->status, scan_status::failed);
  EXPECT_EQ(gone->attempts, 2U);
  EXPECT_EQ(gone->error, "gave up after 2 attempts; last: its node stopped renewing the lease");
  EXPECT_EQ(gone->image_kept_until, 21'000 + 16'000 + 3'600'000);
  audit_filter requeued;
  requeued.event = "scan_requeued";
  const auto entries = store.list_audit(requeued).items;
  ASSERT_EQ(entries.size(), 1U);
  EXPECT_EQ(entries[0].detail.at("node"), "node-b");
  EXPECT_EQ(entries[0].scan_id, a.id);
  EXPECT_TRUE(store.verify_audit().intact());
}

TEST_P(Store, ProgressOfARunningScanIsReadBackUntilItEnds) {
  const auto opened = open();
  report_store& store = *opened;
  auto a = make_scan(id_n(1), 1000);
  store.add_scan(a, {});
  store.set_progress(a.id, R"({"files_done":1})");
  EXPECT_EQ(store.find_scan(a.id)->progress, "") << "only a running scan has progress";
  ASSERT_TRUE(store.claim_next(1000, this_node));
  store.set_progress(a.id, R"({"files_done":3,"files_found":9,"bytes_done":10,"bytes_total":90})");
  EXPECT_EQ(nlohmann::json::parse(store.find_scan(a.id)->progress).at("files_found"), 9);
  EXPECT_EQ(store.active_scans().at(0).progress, store.find_scan(a.id)->progress);
}

TEST_P(Store, TheClusterRuleSetIsOneRowThatTheLastSetterOwnsAndOutlivesTheConnection) {
  {
    const auto opened = open();
    report_store& store = *opened;
    EXPECT_FALSE(store.cluster_rules()) << "no node has set one yet";
    EXPECT_FALSE(store.set_cluster_rules({"sha256:aa", 3, "node-a", 1000}));
    const auto replaced = store.set_cluster_rules({"sha256:bb", 4, "node-b", 2000});
    ASSERT_TRUE(replaced);
    EXPECT_EQ(replaced->digest, "sha256:aa");
    EXPECT_EQ(replaced->node, "node-a");
  }
  // Another node (a new connection) reads what the last one set.
  const auto again = open();
  const auto now = again->cluster_rules();
  ASSERT_TRUE(now);
  EXPECT_EQ(now->digest, "sha256:bb");
  EXPECT_EQ(now->yara_rules, 4);
  EXPECT_EQ(now->node, "node-b");
  EXPECT_EQ(now->set_at, 2000);
}

TEST_P(Store, CancelsOnlyQueuedScans) {
  const auto opened = open();
  report_store& store = *opened;
  auto a = make_scan(id_n(1), 1000);
  auto b = make_scan(id_n(2), 1000);
  store.add_scan(a, {});
  store.add_scan(b, {});
  store.claim_next(1000, this_node);
  EXPECT_FALSE(store.cancel_queued(a.id, 2000, {}));
  EXPECT_TRUE(store.cancel_queued(b.id, 2000, {"kiosk-2", "station", "rid-9", ""}));
  EXPECT_EQ(store.find_scan(b.id)->status, scan_status::cancelled);
  EXPECT_EQ(store.find_scan(b.id)->cancelled_by->name, "kiosk-2");
  EXPECT_EQ(store.find_scan(b.id)->cancelled_by->request_id, "rid-9");
  EXPECT_EQ(store.live_spool_paths(), std::vector<std::string>{a.spool_path});
}

TEST_P(Store, StoresReportWithSummaryColumnsAndFileRows) {
  const auto opened = open();
  report_store& store = *opened;
  auto a = make_scan(id_n(1), 1000);
  store.add_scan(a, {});
  store.claim_next(1000, this_node);
  complete_with(store, dir, a, make_report(scanner::verdict::flagged, true), 3000);
  const auto done = store.find_scan(a.id);
  EXPECT_EQ(done->status, scan_status::done);
  EXPECT_EQ(done->verdict, "flagged");
  EXPECT_EQ(done->ruleset_digest, "sha256:00");
  EXPECT_EQ(done->flagged_files, 1U);
  const auto stored = store.find_report(a.id);
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->path, (dir / "reports" / (a.id + ".json")).string());
  EXPECT_EQ(stored->sha256, scanner::sha256_hex(test_support_read(stored->path)));
  EXPECT_EQ(stored->size, test_support_read(stored->path).size());
  EXPECT_EQ(nlohmann::json::parse(test_support_read(stored->path)).at("files").size(), 2U);

  file_filter flagged;
  flagged.flagged = true;
  const auto page = store.list_files(a.id, flagged);
  ASSERT_TRUE(page);
  ASSERT_EQ(page->items.size(), 1U);
  EXPECT_EQ(nlohmann::json::parse(page->items[0]).at("path"), "/b.com");
  file_filter by_mime;
  by_mime.mime = "text/plain";
  EXPECT_EQ(nlohmann::json::parse(store.list_files(a.id, by_mime)->items.at(0)).at("path"), "/a.txt");
  file_filter paged;
  paged.limit = 1;
  const auto p1 = store.list_files(a.id, paged);
  ASSERT_TRUE(p1->next_index);
  paged.after_index = p1->next_index;
  const auto p2 = store.list_files(a.id, paged);
  EXPECT_EQ(nlohmann::json::parse(p2->items.at(0)).at("path"), "/b.com");
  EXPECT_FALSE(p2->next_index);
}

TEST_P(Store, ListsNewestFirstWithFiltersAndAStableCursor) {
  const auto opened = open();
  report_store& store = *opened;
  for (int i = 1; i <= 5; ++i) {
    auto s = make_scan(id_n(i), i * 1000, i % 2 == 0 ? "even" : "odd");
    store.add_scan(s, {});
    store.claim_next(0, this_node);
    complete_with(store, dir, s, make_report(i == 3 ? scanner::verdict::flagged : scanner::verdict::clean, i == 3),
                  i * 1000 + 1);
  }
  report_filter all;
  all.limit = 2;
  std::vector<std::string> seen;
  for (int page = 0; page < 5; ++page) {
    const auto p = store.list_reports(all);
    for (const auto& s : p.items) {
      seen.push_back(s.id);
    }
    if (!p.next_seq) {
      break;
    }
    all.before_seq = p.next_seq;
    // A scan finishing between pages does not shift the pages already handed out.
    if (page == 0) {
      auto late = make_scan(id_n(9), 9000);
      store.add_scan(late, {});
      store.claim_next(0, this_node);
      complete_with(store, dir, late, make_report(scanner::verdict::clean, false), 9001);
    }
  }
  EXPECT_EQ(seen, (std::vector<std::string>{id_n(5), id_n(4), id_n(3), id_n(2), id_n(1)}));

  report_filter flagged;
  flagged.verdict = "flagged";
  EXPECT_EQ(store.list_reports(flagged).items.size(), 1U);
  report_filter station;
  station.station = "even";
  EXPECT_EQ(store.list_reports(station).items.size(), 2U);
  report_filter window;
  window.since = 2000;
  window.until = 4000;
  EXPECT_EQ(store.list_reports(window).items.size(), 2U);
  report_filter review;
  review.review = "cleared";
  EXPECT_TRUE(store.list_reports(review).items.empty());
}

}  // namespace
}  // namespace borderscan::server
