#include "borderscan/scanner/image_files.hpp"

#include <algorithm>

#include "borderscan/scanner/error.hpp"
#include "tsk_image.hpp"

namespace borderscan::scanner {

std::vector<std::filesystem::path> image_files(const std::vector<std::filesystem::path>& named) {
  std::vector<std::filesystem::path> files = named;
  try {
    for (auto& found : detail::tsk_image(named).segments()) {
      if (std::find(files.begin(), files.end(), found) == files.end()) {
        files.push_back(std::move(found));
      }
    }
  } catch (const scan_error&) {
    // Not an image libtsk opens (or empty): the scan reads only what was named.
  }
  return files;
}

}  // namespace borderscan::scanner
