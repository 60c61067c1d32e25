#pragma once
// The PostgreSQL server of the tests (tests/support/pg-server.sh): the one
// CTest's `postgres` fixture started, named by $BORDERSCAN_TEST_POSTGRES (the
// script's state file), or else one this test process starts for itself and
// stops when it exits. Never skips: when no server can be had, these throw
// and the test fails saying why (the PostgreSQL tests must not pass by not
// running).

#include <string>

namespace borderscan::test {

// A new, empty database with a name no other test uses; returns its
// postgresql:// URL (a Unix socket, no password).
std::string new_postgres_database();

// Runs SQL on the database at url behind the store's back (tampering tests).
void postgres_exec(const std::string& url, const std::string& sql);

}  // namespace borderscan::test
