#pragma once
// Which report_store a configuration names: storage.database (or
// --database) is a SQLite file path (the default, <data_dir>/borderscan.db)
// or a postgresql:// URL of a shared PostgreSQL database.

#include <memory>
#include <string>
#include <string_view>

#include "borderscan/server/config.hpp"
#include "borderscan/server/report_store.hpp"
#include "borderscan/server/system.hpp"

namespace borderscan::server {

// postgresql:// or postgres:// (libpq's two URI schemes).
bool is_postgres_url(std::string_view database) noexcept;

// Opens (creating and migrating if needed) the store the configuration
// names; throws std::runtime_error saying why when that fails.
std::unique_ptr<report_store> open_report_store(const storage_config& storage);

// This node's name in scan leases: storage.node_id, else the one kept in
// <data_dir>/node-id, made (from `ids`) and kept at the first start, so that
// a restarted node finds the scans it left running as its own.
std::string node_id_for(const storage_config& storage, id_generator& ids);

}  // namespace borderscan::server
