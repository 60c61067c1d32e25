#pragma once
// Extension-versus-content heuristic: a file whose name claims one family
// (image, video, audio, document, text) but whose content is an executable,
// an archive, or another family.

#include <optional>
#include <string>
#include <string_view>

#include "borderscan/scanner/report.hpp"

namespace borderscan::scanner {

enum class content_family { unknown, image, video, audio, document, text, executable, archive, other };
const char* to_string(content_family f) noexcept;

// Lower-cased extension with the dot (".jpg"), or "" when the name has none.
std::string extension_of(std::string_view file_name);
content_family family_of_extension(std::string_view extension);
content_family family_of_mime(std::string_view mime);

struct extension_verdict {
  content_family claimed, actual;
  severity level;  // high for hidden executables, medium for archives, low otherwise
};
// A mismatch, or nothing when the name and the content agree (or either is unknown).
std::optional<extension_verdict> check_extension(std::string_view file_name, std::string_view mime);

}  // namespace borderscan::scanner
