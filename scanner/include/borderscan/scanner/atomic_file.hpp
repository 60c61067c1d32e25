#pragma once
// Writing a whole file so that readers see the old content or the new one,
// never a part: a temporary file beside it, fsync, rename, fsync of the folder.

#include <filesystem>
#include <string_view>

namespace borderscan::scanner {

// Replaces `file` with `bytes` (mode 0600). Throws std::system_error naming
// the file.
void write_file_atomically(const std::filesystem::path& file, std::string_view bytes);

// Makes a rename or a new file in `dir` durable. Throws std::system_error.
void sync_directory(const std::filesystem::path& dir);

}  // namespace borderscan::scanner
