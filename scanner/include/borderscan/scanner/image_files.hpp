#pragma once
// Which files a scan of an image will read, known before it starts: the
// worker grants exactly these (Landlock) before it parses anything.

#include <filesystem>
#include <vector>

namespace borderscan::scanner {

// The named files plus the segments libtsk finds beside a single first
// segment (image.001 -> image.002 ..., image.E01 -> image.E02 ...). Only the
// named files when libtsk cannot open the image: the scan says why.
std::vector<std::filesystem::path> image_files(const std::vector<std::filesystem::path>& named);

}  // namespace borderscan::scanner
