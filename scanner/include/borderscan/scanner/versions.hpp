#pragma once
// The versions of the libraries that open and classify content. A finding
// (or its absence) can depend on them, so reports record them and
// `borderscan --version` prints them.

#include <map>
#include <string>

namespace borderscan::scanner {

// libtsk, libyara, libmagic, libarchive (with the compressors it was built
// with), each to its version text; read from the libraries at run time.
std::map<std::string, std::string> library_versions();

}  // namespace borderscan::scanner
