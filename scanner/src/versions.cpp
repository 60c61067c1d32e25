#include "borderscan/scanner/versions.hpp"

#include <archive.h>
#include <magic.h>
#include <tsk/libtsk.h>
#include <yara.h>

namespace borderscan::scanner {

std::map<std::string, std::string> library_versions() {
  const int magic = magic_version();  // 544 for 5.44
  std::string archive = archive_version_details();
  // "libarchive 3.6.2 zlib/1.2.13 ...": the name is the key already.
  if (const std::string prefix = "libarchive "; archive.starts_with(prefix)) {
    archive.erase(0, prefix.size());
  }
  return {{"libtsk", tsk_version_get_str()},
          // The headers this was built against: libyara has no run-time query.
          {"libyara", YR_VERSION},
          {"libmagic", std::to_string(magic / 100) + "." + std::to_string(magic % 100)},
          {"libarchive", archive}};
}

}  // namespace borderscan::scanner
