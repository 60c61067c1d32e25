#pragma once
// Writing a whole file so that readers see the old content or the new one,
// never a part: a temporary file beside it, fsync, rename, fsync of the folder.

#include <cstddef>
#include <filesystem>
#include <functional>
#include <span>
#include <string_view>

namespace borderscan::scanner {

// Replaces `file` with `bytes` (mode 0600). Throws std::system_error naming
// the file.
void write_file_atomically(const std::filesystem::path& file, std::string_view bytes);

// The same with content too large to hold: `fill` hands the bytes to the
// writer it gets, piece by piece. When fill throws, `file` is left as it was.
using piece_writer = std::function<void(std::span<const std::byte>)>;
void write_file_atomically(const std::filesystem::path& file, const std::function<void(const piece_writer&)>& fill);

// Makes a rename or a new file in `dir` durable. Throws std::system_error.
void sync_directory(const std::filesystem::path& dir);

}  // namespace borderscan::scanner
