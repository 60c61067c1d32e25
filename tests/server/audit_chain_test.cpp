// The audit trail as evidence: each entry names who acted and links to the
// one before by SHA-256, so an edited or deleted row is found by verify_audit
// and by `borderscand audit verify`.
#include <sqlite3.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <thread>

#include "borderscan/server/sqlite_store.hpp"
#include "server/store_backends.hpp"
#include "support/test_support.hpp"

namespace borderscan::server {
namespace {

std::string id_n(int n) {
  char buf[33];
  std::snprintf(buf, sizeof buf, "%032x", n);
  return buf;
}

// A store with a few entries of different kinds and actors.
void fill(report_store& store) {
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

class AuditChain : public StoreBackends {};
BORDERSCAN_STORE_BACKENDS(AuditChain);
class Tokens : public StoreBackends {};
BORDERSCAN_STORE_BACKENDS(Tokens);

TEST_P(AuditChain, EachEntryLinksToTheOneBeforeAndNamesItsActor) {
  const auto opened = open();
  report_store& store = *opened;
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

TEST_P(AuditChain, AnEditedRowIsFoundAndNamed) {
  fill(*open());
  tamper("UPDATE audit_log SET detail = '{\"reason\":\"finished\"}' WHERE seq = 4");
  const audit_check check = open()->verify_audit();
  ASSERT_FALSE(check.intact());
  EXPECT_EQ(*check.first_bad_seq, 4);
  EXPECT_NE(check.problem.find("changed"), std::string::npos) << check.problem;
}

TEST_P(AuditChain, ADeletedRowIsFoundAtTheEntryAfterIt) {
  fill(*open());
  tamper("DELETE FROM audit_log WHERE seq = 2");
  const audit_check check = open()->verify_audit();
  ASSERT_FALSE(check.intact());
  EXPECT_EQ(*check.first_bad_seq, 3);
}

TEST_P(AuditChain, ARecomputedDigestStillBreaksTheLinkAfterIt) {
  // Whoever edits a row and recomputes its digest must rewrite every entry
  // after it too; leaving the next one alone shows.
  fill(*open());
  audit_entry e;
  {
    audit_filter f;
    f.before_seq = 4;
    f.limit = 1;
    e = open()->list_audit(f).items.at(0);
    ASSERT_EQ(e.seq, 3);
  }
  e.by.name = "someone-else";
  const std::string forged = audit_entry_digest(e, e.detail.dump());
  tamper("UPDATE audit_log SET actor_name = 'someone-else', sha256 = '" + forged + "' WHERE seq = 3");
  const audit_check check = open()->verify_audit();
  ASSERT_FALSE(check.intact());
  EXPECT_EQ(*check.first_bad_seq, 4);
}

// Writers on several threads and two stores (two nodes) at once still make
// one chain: appends are serialised (SQLite's write lock, PostgreSQL's
// advisory lock), none is lost and every link holds.
TEST_P(AuditChain, ConcurrentWritersOnTwoStoresMakeOneIntactChain) {
  const auto first = open();
  const auto second = open();
  constexpr int per_thread = 15;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      report_store& store = t % 2 == 0 ? *first : *second;
      for (int i = 0; i < per_thread; ++i) {
        store.record("report_read", id_n(t), {{"n", i}}, {"rev", "reviewer", "", ""}, 1000 + i);
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  const audit_check check = first->verify_audit();
  EXPECT_TRUE(check.intact()) << check.problem;
  EXPECT_EQ(check.entries, 4 * per_thread);
}

TEST_P(Tokens, AreStoredAsDigestsAndAuthenticatedByThem) {
  const auto opened = open();
  report_store& store = *opened;
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
