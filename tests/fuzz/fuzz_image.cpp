// Fuzz target: bytes taken as a disk image, walked by libtsk through the
// embedded-image path (volume systems, every file system libtsk knows).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "borderscan/scanner/archive.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto& env = borderscan::fuzz::environment();
  // The embedded-image path wants at least 64 KiB: pad short inputs with zeros.
  std::vector<std::byte> image(std::max<std::size_t>(size, 64 << 10));
  std::memcpy(image.data(), data, size);
  borderscan::scanner::file_entry entry;
  entry.path = "/fuzz/disk.img";
  entry.size = image.size();
  entry.type = "regular";
  entry.mime = "application/octet-stream";
  entry.description = "DOS/MBR boot sector";
  borderscan::scanner::memory_source source(image);
  borderscan::scanner::expansion_budget budget;
  borderscan::scanner::container_expander expander(env.lim, env.scanner, budget);
  expander.expand(entry, source, env.sink);
  return 0;
}
