// Fuzz target: bytes as the daemon's TOML configuration. The loader must
// answer with a configuration or a config_error (naming key and reason),
// never crash or throw anything else; and what it accepts must print back
// (borderscand --print-config) as TOML that loads to the same configuration.
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <string_view>

#include "borderscan/server/config.hpp"
#include "fuzz_check.hpp"

namespace {

using borderscan::server::config_error;
using borderscan::server::parse_config;
using borderscan::server::server_config;
using borderscan::server::to_toml;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  server_config config;
  try {
    config = parse_config(text, "fuzz.toml");
  } catch (const config_error&) {
    return 0;
  } catch (const std::exception& e) {
    borderscan::fuzz::property_failed("parse_config throws only config_error", e.what());
  }
  const std::string printed = to_toml(config);
  std::string reprinted;
  try {
    reprinted = to_toml(parse_config(printed, "printed.toml"));
  } catch (const std::exception& e) {
    borderscan::fuzz::property_failed("to_toml prints a configuration parse_config accepts",
                                      std::string(e.what()) + "\n--- printed:\n" + printed);
  }
  BORDERSCAN_FUZZ_CHECK(reprinted == printed, "--- printed:\n" + printed + "\n--- reprinted:\n" + reprinted);
  return 0;
}
