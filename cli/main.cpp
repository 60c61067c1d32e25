// borderscan: offline scan of a device image, and (later) the kiosk client.
#include <iostream>

#include "commands.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Borderscan: scan storage-device images for the border checkpoint"};
  app.require_subcommand(1);
  app.set_version_flag("--version", BORDERSCAN_VERSION);
  std::vector<std::pair<CLI::App*, borderscan::cli::command_runner>> commands;
  auto scan = borderscan::cli::add_scan_command(app);
  commands.emplace_back(app.get_subcommand("scan"), std::move(scan));
  auto worker = borderscan::cli::add_worker_command(app);
  commands.emplace_back(app.get_subcommand("worker"), std::move(worker));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // Bad arguments exit 2, as documented (CLI11 would use its own codes).
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  for (auto& [sub, run] : commands) {
    if (sub->parsed()) {
      return run();
    }
  }
  return 2;
}
