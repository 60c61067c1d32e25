#pragma once
// What the parser-level fuzz targets share: a property check that fails
// loudly (libFuzzer and the replay driver both see the abort), a scratch
// folder removed at exit, and files written from the input bytes.

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

namespace borderscan::fuzz {

// A broken property is a finding like a crash: say which, then abort.
[[noreturn]] inline void property_failed(const char* property, std::string_view detail) {
  std::fprintf(stderr, "fuzz property failed: %s\n  %.*s\n", property, static_cast<int>(detail.size()), detail.data());
  std::abort();
}

#define BORDERSCAN_FUZZ_CHECK(cond, detail)                 \
  do {                                                      \
    if (!(cond)) {                                          \
      ::borderscan::fuzz::property_failed(#cond, (detail)); \
    }                                                       \
  } while (false)

// BORDERSCAN_FUZZ_TRACE=1 makes the targets say what each input did (to
// check that a seed reaches what it was written for).
inline bool tracing() {
  static const bool on = std::getenv("BORDERSCAN_FUZZ_TRACE") != nullptr;
  return on;
}

// A private folder under $TMPDIR for the process's files; gone at exit.
class scratch_folder {
 public:
  scratch_folder() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/borderscan-fuzz-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
      property_failed("mkdtemp", pattern);
    }
    path_ = pattern;
  }
  ~scratch_folder() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  scratch_folder(const scratch_folder&) = delete;
  scratch_folder& operator=(const scratch_folder&) = delete;

  const std::filesystem::path& path() const noexcept { return path_; }
  std::filesystem::path operator/(std::string_view name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

inline void write_bytes(const std::filesystem::path& file, std::span<const std::uint8_t> bytes) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out.flush()) {
    property_failed("writing a scratch file", file.string());
  }
}

}  // namespace borderscan::fuzz
