#pragma once
// Subcommands of the `borderscan` executable. Each registers its flags on the
// app and returns the function that runs it (the process exit code).

#include <functional>

#include <CLI/CLI.hpp>

namespace borderscan::cli {

using command_runner = std::function<int()>;

command_runner add_scan_command(CLI::App& app);
command_runner add_worker_command(CLI::App& app);
command_runner add_verify_command(CLI::App& app);

// The kiosk client (client_commands.cpp, client_queries.cpp): talks to a
// borderscand over HTTP(S).
command_runner add_submit_command(CLI::App& app);
command_runner add_reports_command(CLI::App& app);
command_runner add_report_command(CLI::App& app);
command_runner add_review_command(CLI::App& app);
command_runner add_evidence_command(CLI::App& app);

}  // namespace borderscan::cli
