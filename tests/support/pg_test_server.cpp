#include "support/pg_test_server.hpp"

#include <libpq-fe.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <mutex>
#include <random>
#include <stdexcept>

#include "support/test_support.hpp"

namespace borderscan::test {
namespace {

namespace fs = std::filesystem;

std::string script() {
  return (source_dir() / "tests" / "support" / "pg-server.sh").string();
}

// A server this process started (no fixture): stopped at exit.
class own_server {
 public:
  own_server() {
    state_ = dir_ / "state";
    // With this process's pid: stopped even when the process dies without
    // running this destructor (a crash, a signal).
    const auto r = run_command("bash " + shell_quote(script()) + " start " + shell_quote(state_.string()) + " " +
                               std::to_string(::getpid()));
    if (r.exit_code != 0) {
      throw std::runtime_error("cannot start a PostgreSQL test server (tests/support/pg-server.sh): " + r.err + r.out);
    }
  }
  ~own_server() { run_command("bash " + shell_quote(script()) + " stop " + shell_quote(state_.string())); }
  own_server(const own_server&) = delete;
  own_server& operator=(const own_server&) = delete;
  const fs::path& state() const { return state_; }

 private:
  scratch_dir dir_;
  fs::path state_;
};

// The socket folder of the server (line 1 of the state file).
std::string server_dir() {
  static std::mutex mutex;
  static std::unique_ptr<own_server> own;
  static std::string dir;
  std::lock_guard lock(mutex);
  if (!dir.empty()) {
    return dir;
  }
  fs::path state;
  if (const char* named = std::getenv("BORDERSCAN_TEST_POSTGRES"); named != nullptr && *named != '\0') {
    state = named;
    if (!fs::exists(state)) {
      throw std::runtime_error("BORDERSCAN_TEST_POSTGRES names " + state.string() +
                               ", which does not exist: the CTest fixture postgres_server_start did not start a "
                               "PostgreSQL server (see its output)");
    }
  } else {
    own = std::make_unique<own_server>();
    state = own->state();
  }
  std::ifstream in(state);
  std::getline(in, dir);
  if (dir.empty()) {
    throw std::runtime_error("the PostgreSQL test server's state file " + state.string() + " is empty");
  }
  return dir;
}

std::string url_of(const std::string& database) {
  return "postgresql:///" + database + "?host=" + server_dir() + "&user=borderscan";
}

}  // namespace

void postgres_exec(const std::string& url, const std::string& sql) {
  std::unique_ptr<PGconn, decltype(&PQfinish)> c(PQconnectdb(url.c_str()), &PQfinish);
  if (PQstatus(c.get()) != CONNECTION_OK) {
    throw std::runtime_error("cannot connect to the PostgreSQL test server: " + std::string(PQerrorMessage(c.get())));
  }
  std::unique_ptr<PGresult, decltype(&PQclear)> r(PQexec(c.get(), sql.c_str()), &PQclear);
  const auto status = PQresultStatus(r.get());
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    throw std::runtime_error("PostgreSQL: " + sql + ": " + PQresultErrorMessage(r.get()));
  }
}

std::string new_postgres_database() {
  static std::atomic<int> counter{0};
  std::random_device rd;
  const std::string name =
      "t_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" + std::to_string(rd() % 100000);
  postgres_exec(url_of("postgres"), "CREATE DATABASE " + name);
  return url_of(name);
}

}  // namespace borderscan::test
