#pragma once
// borderscand's offline subcommands (token, audit): registered on the app
// before parsing; run() after parsing, with the effective configuration,
// returns the exit code, or nothing when none of them was given.

#include <functional>
#include <optional>

#include <CLI/CLI.hpp>

#include "borderscan/server/access.hpp"
#include "borderscan/server/config.hpp"

#include <nlohmann/json.hpp>
#include <string_view>

namespace borderscan::server {

struct admin_commands {
  std::function<std::optional<int>(const server_config&)> run;
};

admin_commands add_admin_commands(CLI::App& app);

// The operator at this terminal, as the audit trail names them ("local:<user>", role "cli").
actor local_operator();
// Writes one audit entry for an offline change to the data dir (an import, for instance).
void audit_locally(const server_config& config, std::string_view event, const nlohmann::json& detail);

}  // namespace borderscan::server
