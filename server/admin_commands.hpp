#pragma once
// borderscand's offline subcommands (token, audit): registered on the app
// before parsing; run() after parsing, with the effective configuration,
// returns the exit code, or nothing when none of them was given.

#include <functional>
#include <optional>

#include <CLI/CLI.hpp>

#include "borderscan/server/config.hpp"

namespace borderscan::server {

struct admin_commands {
  std::function<std::optional<int>(const server_config&)> run;
};

admin_commands add_admin_commands(CLI::App& app);

}  // namespace borderscan::server
