#include "borderscan/server/store_factory.hpp"

#include <fstream>
#include <stdexcept>

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

std::string node_id_for(const storage_config& storage, id_generator& ids) {
  if (!storage.node_id.empty()) {
    return storage.node_id;
  }
  const std::filesystem::path file = storage.node_id_path();
  std::string id;
  if (std::ifstream in(file); in && std::getline(in, id) && !id.empty()) {
    return id;
  }
  id = "node-" + ids.next().substr(0, 12);
  std::ofstream out(file, std::ios::trunc);
  out << id << "\n";
  if (!out.flush()) {
    throw std::runtime_error("cannot write the node id to " + file.string());
  }
  return id;
}

}  // namespace borderscan::server
