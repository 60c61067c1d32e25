#include "borderscan/server/system.hpp"

#include <charconv>
#include <ctime>

namespace borderscan::server {

std::int64_t system_clock::now_ms() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

random_id_generator::random_id_generator() {
  std::random_device rd;
  std::seed_seq seq{rd(), rd(), rd(), rd(), rd(), rd(), rd(), rd()};
  engine_.seed(seq);
}

std::string random_id_generator::next() {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out(32, '0');
  std::lock_guard lock(mutex_);
  for (int half = 0; half < 2; ++half) {
    std::uint64_t v = engine_();
    for (int i = 0; i < 16; ++i) {
      out[static_cast<std::size_t>(half * 16 + i)] = hex[v & 0xF];
      v >>= 4;
    }
  }
  return out;
}

bool is_valid_scan_id(std::string_view id) noexcept {
  if (id.size() != 32) {
    return false;
  }
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

std::uint64_t free_disk_bytes(const std::filesystem::path& dir) {
  std::error_code ec;
  const auto info = std::filesystem::space(dir, ec);
  return ec ? 0 : info.available;
}

std::string format_time(std::int64_t unix_ms) {
  const std::time_t seconds = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[40];
  const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char frac[8];
  std::snprintf(frac, sizeof frac, ".%03dZ", static_cast<int>(unix_ms % 1000));
  return std::string(buf, n) + frac;
}

namespace {
bool read_int(std::string_view& s, std::size_t digits, int& out) {
  if (s.size() < digits) {
    return false;
  }
  const auto [end, ec] = std::from_chars(s.data(), s.data() + digits, out);
  if (ec != std::errc{} || end != s.data() + digits) {
    return false;
  }
  s.remove_prefix(digits);
  return true;
}
bool expect(std::string_view& s, char c) {
  if (s.empty() || s.front() != c) {
    return false;
  }
  s.remove_prefix(1);
  return true;
}
}  // namespace

bool parse_time(std::string_view s, std::int64_t& unix_ms) {
  // Accepts YYYY-MM-DD, or YYYY-MM-DDTHH:MM:SS[.fff]Z (UTC only, kept strict).
  std::tm tm{};
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, millis = 0;
  if (!read_int(s, 4, year) || !expect(s, '-') || !read_int(s, 2, month) || !expect(s, '-') || !read_int(s, 2, day)) {
    return false;
  }
  if (!s.empty()) {
    if (!expect(s, 'T') || !read_int(s, 2, hour) || !expect(s, ':') || !read_int(s, 2, minute) || !expect(s, ':') ||
        !read_int(s, 2, second)) {
      return false;
    }
    if (!s.empty() && s.front() == '.') {
      s.remove_prefix(1);
      if (!read_int(s, 3, millis)) {
        return false;
      }
    }
    if (!expect(s, 'Z') || !s.empty()) {
      return false;
    }
  }
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) {
    return false;
  }
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  unix_ms = static_cast<std::int64_t>(timegm(&tm)) * 1000 + millis;
  return true;
}

}  // namespace borderscan::server
