// The audit trail as evidence: each entry names who acted and links to the
// one before by SHA-256, so an edited or deleted row is found by verify_audit
// and by `borderscand audit verify`.
#include <sqlite3.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include "borderscan/server/sqlite_store.hpp"
#include "support/test_support.hpp"

namespace borderscan::server {
namespace {

std::string id_n(int n) {
  char buf[33];
  std::snprintf(buf, sizeof buf, "%032x", n);
  return buf;
}

// A store with a few entries of different kinds and actors.
void fill(sqlite_report_store& store) {
  const actor kiosk{"k1", "station", "rid-1", "10.0.0.7:4000"};
  for (int i = 1; i <= 3; ++i) {
    scan_record s;
    s.id = id_n(i);
    s.station = "k1";
    s.image_sha256 = std::string(64, 'a');
    s.image_size = 1;
    s.spool_path = "/spool/x.img";
    s.submitted_at = 1000 + i;
    store.add_scan(s, kiosk);
  }
  store.cancel_queued(id_n(2), 2000, {"boss", "admin", "rid-2", "10.0.0.8:4001"});
  store.record("report_read", id_n(1), {{"report_sha256", "ab"}}, {"rev", "reviewer", "rid-3", "::1"}, 3000);
  store.add_token({"k5", role::station, digest_of_token("bst_x"), 4000}, {});
}

// Runs one SQL statement on the file behind the store's back.
void tamper(const std::filesystem::path& file, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  sqlite3_close(db);
}

TEST(AuditChain, EachEntryLinksToTheOneBeforeAndNamesItsActor) {
  test::scratch_dir dir;
  sqlite_report_store store(dir / "db.sqlite");
  fill(store);
  const auto entries = store.list_audit({}).items;  // newest first
  ASSERT_EQ(entries.size(), 6U);
  for (std::size_t i = 0; i + 1 < entries.size(); ++i) {
    EXPECT_EQ(entries[i].prev_sha256, entries[i + 1].sha256);
    EXPECT_EQ(entries[i].sha256.size(), 64U);
  }
  EXPECT_EQ(entries.back().prev_sha256, "");
  EXPECT_EQ(entries[0].event, "token_created");
  EXPECT_EQ(entries[0].by.name, "system");
  EXPECT_EQ(entries[1].by.role, "reviewer");
  EXPECT_EQ(entries[2].by.name, "boss");
  EXPECT_EQ(entries[2].by.client, "10.0.0.8:4001");
  EXPECT_EQ(entries[5].by.request_id, "rid-1");
  const audit_check check = store.verify_audit();
  EXPECT_TRUE(check.intact()) << check.problem;
  EXPECT_EQ(check.entries, 6);
}

TEST(AuditChain, AnEditedRowIsFoundAndNamed) {
  test::scratch_dir dir;
  const auto file = dir / "db.sqlite";
  {
    sqlite_report_store store(file);
    fill(store);
  }
  tamper(file, "UPDATE audit_log SET detail = '{\"reason\":\"finished\"}' WHERE seq = 4");
  sqlite_report_store store(file);
  const audit_check check = store.verify_audit();
  ASSERT_FALSE(check.intact());
  EXPECT_EQ(*check.first_bad_seq, 4);
  EXPECT_NE(check.problem.find("changed"), std::string::npos) << check.problem;
}

TEST(AuditChain, ADeletedRowIsFoundAtTheEntryAfterIt) {
  test::scratch_dir dir;
  const auto file = dir / "db.sqlite";
  {
    sqlite_report_store store(file);
    fill(store);
  }
  tamper(file, "DELETE FROM audit_log WHERE seq = 2");
  sqlite_report_store store(file);
  const audit_check check = store.verify_audit();
  ASSERT_FALSE(check.intact());
  EXPECT_EQ(*check.first_bad_seq, 3);
}

TEST(AuditChain, ARecomputedDigestStillBreaksTheLinkAfterIt) {
  // Whoever edits a row and recomputes its digest must rewrite every entry
  // after it too; leaving the next one alone shows.
  test::scratch_dir dir;
  const auto file = dir / "db.sqlite";
  {
    sqlite_report_store store(file);
    fill(store);
  }
  audit_entry e;
  std::string detail;
  {
    sqlite_report_store store(file);
    audit_filter f;
    f.before_seq = 4;
    f.limit = 1;
    e = store.list_audit(f).items.at(0);
    ASSERT_EQ(e.seq, 3);
  }
  e.by.name = "someone-else";
  const std::string forged = audit_entry_digest(e, e.detail.dump());
  tamper(file, "UPDATE audit_log SET actor_name = 'someone-else', sha256 = '" + forged + "' WHERE seq = 3");
  sqlite_report_store store(file);
  const audit_check check = store.verify_audit();
  ASSERT_FALSE(check.intact());
  EXPECT_EQ(*check.first_bad_seq, 4);
}

TEST(Tokens, AreStoredAsDigestsAndAuthenticatedByThem) {
  test::scratch_dir dir;
  sqlite_report_store store(dir / "db.sqlite");
  const std::string a = generate_token(), b = generate_token();
  EXPECT_NE(a, b);
  EXPECT_TRUE(store.add_token({"k1", role::station, digest_of_token(a), 1}, {}));
  EXPECT_TRUE(store.add_token({"boss", role::admin, digest_of_token(b), 2}, {}));
  EXPECT_FALSE(store.add_token({"k1", role::reviewer, digest_of_token("other"), 3}, {}));
  const auto tokens = store.list_tokens();
  ASSERT_EQ(tokens.size(), 2U);
  EXPECT_EQ(tokens[0].name, "boss");
  EXPECT_EQ(tokens[0].role, role::admin);
  EXPECT_EQ(tokens[1].digest, digest_of_token(a));

  EXPECT_EQ(authenticate(a, tokens)->name, "k1");
  EXPECT_EQ(authenticate(b, tokens)->role, role::admin);
  EXPECT_FALSE(authenticate(a + "x", tokens));
  EXPECT_FALSE(authenticate("", tokens));

  EXPECT_TRUE(store.revoke_token("k1", {}, 5));
  EXPECT_FALSE(store.revoke_token("k1", {}, 6));
  EXPECT_FALSE(authenticate(a, store.list_tokens()));
  audit_filter f;
  f.event = "token_revoked";
  ASSERT_EQ(store.list_audit(f).items.size(), 1U);
  EXPECT_EQ(store.list_audit(f).items[0].detail.at("name"), "k1");
}

TEST(Permissions, TheDatabaseAndItsWalAreOwnerOnlyWhateverTheUmask) {
  test::scratch_dir dir;
  const mode_t old = ::umask(022);
  {
    sqlite_report_store store(dir / "db.sqlite");
    fill(store);  // writes: the WAL and SHM files exist now
    for (const char* name : {"db.sqlite", "db.sqlite-wal", "db.sqlite-shm"}) {
      struct stat st {};
      ASSERT_EQ(::stat((dir / name).c_str(), &st), 0) << name;
      EXPECT_EQ(st.st_mode & 0777, 0600U) << name;
    }
  }
  ::umask(old);
}

}  // namespace
}  // namespace borderscan::server
