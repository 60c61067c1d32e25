#pragma once
// borderscand's hash-set subcommands on the data dir:
//   hashset import --format text|nsrl-rds3|vics --kind known-good|known-bad --name NAME FILE
//   hashset list
//   hashset verify [NAME...]
// Imported sets are compact files <data_dir>/hashsets/NAME.bhs (folder 0700,
// files 0600), written atomically; the scanner memory-maps them.

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "borderscan/server/config.hpp"

namespace borderscan::server {

struct hashset_commands {
  // After parsing: the exit code, or nothing when no hashset subcommand was given.
  std::function<std::optional<int>(const server_config&)> run;
};

// Registers `hashset` and its subcommands on the app (before parsing).
hashset_commands add_hashset_commands(CLI::App& app);

// <data_dir>/hashsets: where imported sets live.
std::filesystem::path hashsets_dir(const std::filesystem::path& data_dir);

// "PATH:known-good" / "PATH:known-bad" of every imported set in data_dir,
// sorted by name, in the form rule_sources_for and the worker's --hashset
// take; empty when nothing was imported. Throws scanner::scan_error
// (rules_invalid) naming a .bhs file there whose header is not valid, so that
// a daemon refuses to start rather than scan without a set it was given.
std::vector<std::string> imported_hashsets(const std::filesystem::path& data_dir);

}  // namespace borderscan::server
