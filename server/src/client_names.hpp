#pragma once
// Names a client chooses that end up in logs, the store and responses (a
// station, a request id): short, and only characters that need no escaping.

#include <cstddef>
#include <string_view>

namespace borderscan::server {

// At most max_len characters of A-Z a-z 0-9 . _ - (the empty name passes).
inline bool is_plain_name(std::string_view s, std::size_t max_len) noexcept {
  if (s.size() > max_len) {
    return false;
  }
  for (char c : s) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
    if (!ok) {
      return false;
    }
  }
  return true;
}

}  // namespace borderscan::server
