#pragma once
// The store tests run against both report_store backends: SQLite (a file in
// a scratch folder) and PostgreSQL (a fresh database on the test server,
// tests/support/pg_test_server.hpp). Test names end in /sqlite or
// /postgres; CTest gives the PostgreSQL ones the label `postgres`.

#include <sqlite3.h>

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "borderscan/server/postgres_store.hpp"
#include "borderscan/server/sqlite_store.hpp"
#include "support/pg_test_server.hpp"
#include "support/test_support.hpp"

namespace borderscan::server {

enum class store_backend { sqlite, postgres };

class StoreBackends : public ::testing::TestWithParam<store_backend> {
 protected:
  bool postgres() const { return GetParam() == store_backend::postgres; }

  // Opens the test's store (again: the same file or database each time).
  std::unique_ptr<report_store> open() {
    if (!postgres()) {
      return std::make_unique<sqlite_report_store>(dir / "db.sqlite");
    }
    if (url_.empty()) {
      url_ = test::new_postgres_database();
    }
    return std::make_unique<postgres_report_store>(url_);
  }

  // Runs one SQL statement on the store behind its back.
  void tamper(const std::string& sql) {
    if (postgres()) {
      test::postgres_exec(url_, sql);
      return;
    }
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir / "db.sqlite").c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    sqlite3_close(db);
  }

  test::scratch_dir dir;

 private:
  std::string url_;
};

inline std::string store_backend_name(const ::testing::TestParamInfo<store_backend>& info) {
  return info.param == store_backend::postgres ? "postgres" : "sqlite";
}

}  // namespace borderscan::server

// In each test file that defines TEST_P(NAME, ...) on a fixture derived from StoreBackends.
#define BORDERSCAN_STORE_BACKENDS(NAME)                                                                              \
  INSTANTIATE_TEST_SUITE_P(                                                                                          \
      Backends, NAME,                                                                                                \
      ::testing::Values(::borderscan::server::store_backend::sqlite, ::borderscan::server::store_backend::postgres), \
      ::borderscan::server::store_backend_name)
