#include "borderscan/server/store_factory.hpp"

#include "borderscan/server/postgres_store.hpp"
#include "borderscan/server/sqlite_store.hpp"

namespace borderscan::server {

bool is_postgres_url(std::string_view database) noexcept {
  return database.starts_with("postgresql://") || database.starts_with("postgres://");
}

std::unique_ptr<report_store> open_report_store(const storage_config& storage) {
  const std::string database = storage.database.string();
  if (is_postgres_url(database)) {
    return std::make_unique<postgres_report_store>(database);
  }
  return std::make_unique<sqlite_report_store>(storage.database_path(), storage.reports_path());
}

}  // namespace borderscan::server
