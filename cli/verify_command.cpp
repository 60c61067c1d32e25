// borderscan verify: checks a report's signature offline against the
// daemon's public key (GET /api/v1/signing-key). Exit 0 valid, 1 not valid
// (changed, unsigned, another key), 2 usage error.
#include <fstream>
#include <iostream>
#include <sstream>

#include "borderscan/evidence/report_signature.hpp"
#include "commands.hpp"

namespace borderscan::cli {

command_runner add_verify_command(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("verify", "Check a report's signature against the daemon's public key");
  auto report = std::make_shared<std::string>();
  auto key = std::make_shared<std::string>();
  cmd->add_option("REPORT", *report, "the report JSON as the daemon served it")->required();
  cmd->add_option("--key", *key, "the daemon's public key (PEM, from GET /api/v1/signing-key)")->required();
  return [report, key]() -> int {
    std::ifstream key_in(*key, std::ios::binary);
    if (!key_in) {
      std::cerr << "borderscan verify: cannot read the key file " << *key << "\n";
      return 2;
    }
    std::ostringstream pem;
    pem << key_in.rdbuf();
    try {
      const auto public_key = evidence::public_key::from_pem(pem.str());
      const auto outcome = evidence::verify_report_file(*report, public_key);
      switch (outcome.result) {
        case evidence::verification::valid:
          std::cout << "valid: " << *report << " is signed by key " << outcome.key_id << " and unchanged\n";
          return 0;
        case evidence::verification::not_signed:
          std::cout << "NOT VALID: " << *report << ": " << outcome.detail << "\n";
          return 1;
        case evidence::verification::invalid:
          std::cout << "NOT VALID: " << *report << ": " << outcome.detail << "\n";
          return 1;
      }
    } catch (const evidence::key_error& e) {
      std::cerr << "borderscan verify: " << *key << ": " << e.what() << "\n";
      return 2;
    } catch (const std::system_error& e) {
      std::cerr << "borderscan verify: " << e.what() << "\n";
      return 2;
    }
    return 1;
  };
}

}  // namespace borderscan::cli
