#pragma once
// Which report_store a configuration names: storage.database (or
// --database) is a SQLite file path (the default, <data_dir>/borderscan.db)
// or a postgresql:// URL of a shared PostgreSQL database.

#include <memory>
#include <string_view>

#include "borderscan/server/config.hpp"
#include "borderscan/server/report_store.hpp"

namespace borderscan::server {

// postgresql:// or postgres:// (libpq's two URI schemes).
bool is_postgres_url(std::string_view database) noexcept;

// Opens (creating and migrating if needed) the store the configuration
// names; throws std::runtime_error saying why when that fails.
std::unique_ptr<report_store> open_report_store(const storage_config& storage);

}  // namespace borderscan::server
