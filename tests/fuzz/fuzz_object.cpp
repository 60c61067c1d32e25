// Fuzz target: one untrusted object (any bytes) through every classifier and,
// when libmagic says it is a container, through the archive expander.
#include <cstddef>
#include <cstdint>

#include "borderscan/scanner/archive.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto& env = borderscan::fuzz::environment();
  borderscan::scanner::file_entry entry;
  entry.path = "/fuzz/input.bin";
  entry.size = size;
  entry.type = "regular";
  borderscan::scanner::memory_source source(std::as_bytes(std::span(data, size)));
  env.scanner.scan(entry, source);
  if (borderscan::scanner::is_expandable(entry)) {
    borderscan::scanner::expansion_budget budget;
    borderscan::scanner::container_expander expander(env.lim, env.scanner, budget);
    expander.expand(entry, source, env.sink);
  }
  return 0;
}
