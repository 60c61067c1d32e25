#include "borderscan/scanner/error.hpp"

namespace borderscan::scanner {
namespace {

class scan_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "borderscan.scanner"; }
  std::string message(int ev) const override { return to_string(static_cast<scan_errc>(ev)); }
};

}  // namespace

const std::error_category& scan_category() noexcept {
  static const scan_category_impl category;
  return category;
}

const char* to_string(scan_errc e) noexcept {
  switch (e) {
    case scan_errc::image_open_failed:
      return "image_open_failed";
    case scan_errc::image_empty:
      return "image_empty";
    case scan_errc::rules_invalid:
      return "rules_invalid";
    case scan_errc::read_failed:
      return "read_failed";
    case scan_errc::short_read:
      return "short_read";
    case scan_errc::yara_failed:
      return "yara_failed";
    case scan_errc::yara_timeout:
      return "yara_timeout";
    case scan_errc::magic_failed:
      return "magic_failed";
    case scan_errc::cancelled:
      return "cancelled";
    case scan_errc::internal:
      return "internal";
    case scan_errc::rules_mismatch:
      return "rules_mismatch";
  }
  return "unknown";
}

}  // namespace borderscan::scanner
