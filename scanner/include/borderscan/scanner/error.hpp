#pragma once
// Error codes of the scanner library, in the std::error_code family
// (same shape as Beast's http/error.hpp).

#include <string>
#include <system_error>

namespace borderscan::scanner {

enum class scan_errc {
  image_open_failed = 1,  // the image could not be opened at all
  image_empty,            // zero-length image
  rules_invalid,          // a YARA rule or hash set failed to load
  read_failed,            // reading file content failed
  short_read,             // fewer bytes than the declared size
  yara_failed,            // libyara returned an error for one object
  yara_timeout,           // the per-object YARA timeout expired
  magic_failed,           // libmagic could not classify
  cancelled,              // the caller asked the scan to stop
  internal,               // a bug: an invariant did not hold
  rules_mismatch,         // compiled rules are not those of the rule sources, or were changed
};

const std::error_category& scan_category() noexcept;

inline std::error_code make_error_code(scan_errc e) noexcept {
  return {static_cast<int>(e), scan_category()};
}

// Thrown only when the current object or job cannot continue; expected outcomes
// (no match, limit hit, not an archive) are report data, not exceptions.
// what() is the message alone, in words; the code stays in code() (reports
// carry it in their own field), so no message shown to a person ends in an
// internal code name.
class scan_error : public std::system_error {
 public:
  scan_error(scan_errc code, const std::string& what) : std::system_error(make_error_code(code), what), what_(what) {}
  const char* what() const noexcept override { return what_.c_str(); }

 private:
  std::string what_;
};

// Stable short name of a code, used as `code` in report errors ("short_read").
const char* to_string(scan_errc e) noexcept;

}  // namespace borderscan::scanner

template <>
struct std::is_error_code_enum<borderscan::scanner::scan_errc> : std::true_type {};
