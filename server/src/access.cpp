#include "borderscan/server/access.hpp"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>
#include <stdexcept>

#include "borderscan/scanner/digest.hpp"
#include "client_names.hpp"

namespace borderscan::server {

const char* to_string(role r) noexcept {
  switch (r) {
    case role::station:
      return "station";
    case role::reviewer:
      return "reviewer";
    case role::admin:
      return "admin";
  }
  return "unknown";
}

std::optional<role> parse_role(std::string_view text) noexcept {
  for (const role r : {role::station, role::reviewer, role::admin}) {
    if (text == to_string(r)) {
      return r;
    }
  }
  return std::nullopt;
}

bool is_valid_token_name(std::string_view name) noexcept {
  return !name.empty() && is_plain_name(name, 64) && name != "system";
}

std::string generate_token() {
  std::array<std::uint8_t, 32> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    throw std::runtime_error("the OpenSSL random generator failed; no token made");
  }
  // base64url without padding: tokens travel in headers and shells unquoted.
  std::string text = scanner::base64_encode(bytes);
  std::replace(text.begin(), text.end(), '+', '-');
  std::replace(text.begin(), text.end(), '/', '_');
  text.erase(text.find_last_not_of('=') + 1);
  return "bst_" + text;
}

token_digest digest_of_token(std::string_view token) {
  scanner::sha256_hasher h;
  h.update(token.data(), token.size());
  return h.finish();
}

std::optional<principal> authenticate(std::string_view token, const std::vector<token_record>& records) {
  const token_digest presented = digest_of_token(token);
  const token_record* found = nullptr;
  for (const auto& r : records) {
    const bool same = CRYPTO_memcmp(presented.data(), r.digest.data(), presented.size()) == 0;
    found = same ? &r : found;
  }
  if (found == nullptr) {
    return std::nullopt;
  }
  return principal{found->name, found->role};
}

std::optional<std::string_view> bearer_token(std::string_view authorization) noexcept {
  constexpr std::string_view scheme = "bearer ";
  if (authorization.size() <= scheme.size()) {
    return std::nullopt;
  }
  for (std::size_t i = 0; i < scheme.size(); ++i) {
    const char c = authorization[i];
    if ((c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c) != scheme[i]) {
      return std::nullopt;
    }
  }
  std::string_view token = authorization.substr(scheme.size());
  while (!token.empty() && token.front() == ' ') {
    token.remove_prefix(1);
  }
  while (!token.empty() && token.back() == ' ') {
    token.remove_suffix(1);
  }
  if (token.empty()) {
    return std::nullopt;
  }
  return token;
}

}  // namespace borderscan::server
