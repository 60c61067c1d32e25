// borderscan: offline scan of a device image, signature checks of reports,
// and the kiosk client (submit, reports, report, review, evidence).
#include <clocale>
#include <iostream>

#include "borderscan/scanner/versions.hpp"
#include "commands.hpp"

namespace {

// Names inside images and archives are UTF-8 far more often than not, and
// libarchive converts them to the LC_CTYPE locale: the "C" locale loses every
// non-ASCII name. Only LC_CTYPE changes, and never from the environment, so
// the output does not depend on the caller's locale; LC_NUMERIC and the rest
// stay "C", so numbers in the report keep their locale-independent form.
void use_utf8_ctype() {
  for (const char* name : {"C.UTF-8", "C.utf8", "en_US.UTF-8"}) {
    if (std::setlocale(LC_CTYPE, name) != nullptr) {
      return;
    }
  }
  // None installed: stay in "C". Archive members whose names cannot be
  // converted are then listed under synthetic names, with libarchive's warning.
}

}  // namespace

int main(int argc, char** argv) {
  use_utf8_ctype();
  CLI::App app{"Borderscan: scan storage-device images for the border checkpoint"};
  app.require_subcommand(1);
  app.set_version_flag("--version", [] {
    std::string text = std::string("borderscan ") + BORDERSCAN_VERSION;
    for (const auto& [name, version] : borderscan::scanner::library_versions()) {
      text += "\n" + name + " " + version;
    }
    return text;
  });
  std::vector<std::pair<CLI::App*, borderscan::cli::command_runner>> commands;
  auto scan = borderscan::cli::add_scan_command(app);
  commands.emplace_back(app.get_subcommand("scan"), std::move(scan));
  auto worker = borderscan::cli::add_worker_command(app);
  commands.emplace_back(app.get_subcommand("worker"), std::move(worker));
  auto verify = borderscan::cli::add_verify_command(app);
  commands.emplace_back(app.get_subcommand("verify"), std::move(verify));
  for (const auto& [name, add] : {std::pair{"submit", &borderscan::cli::add_submit_command},
                                  std::pair{"reports", &borderscan::cli::add_reports_command},
                                  std::pair{"report", &borderscan::cli::add_report_command},
                                  std::pair{"review", &borderscan::cli::add_review_command},
                                  std::pair{"evidence", &borderscan::cli::add_evidence_command}}) {
    auto run = add(app);
    commands.emplace_back(app.get_subcommand(name), std::move(run));
  }
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
