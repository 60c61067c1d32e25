#pragma once
// Who may call the API, and who did what. Clients present bearer tokens; each
// token has a name and a role. Only the SHA-256 of a token is ever stored,
// and a presented token is compared against every stored digest in constant
// time, so neither the database nor response times give a token away.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace borderscan::server {

// Bit values, so that a route can allow several roles in one mask.
enum class role : std::uint8_t { station = 1, reviewer = 2, admin = 4 };
const char* to_string(role r) noexcept;
std::optional<role> parse_role(std::string_view text) noexcept;

using role_mask = std::uint8_t;
constexpr role_mask mask_of(role r) noexcept {
  return static_cast<role_mask>(r);
}
constexpr role_mask any_role = mask_of(role::station) | mask_of(role::reviewer) | mask_of(role::admin);

// An authenticated caller.
struct principal {
  std::string name;
  server::role role = role::station;
};

// Who caused an audited change: a caller with its request, or the daemon
// itself (`system`: the workers, retention, start-up recovery).
struct actor {
  std::string name = "system";
  std::string role = "system";
  std::string request_id;
  std::string client;  // the peer's address, "ip:port"

  static actor of(const principal& who, std::string_view request_id, std::string_view client) {
    return {who.name, to_string(who.role), std::string(request_id), std::string(client)};
  }
};

using token_digest = std::array<std::uint8_t, 32>;

// One token as stored: never the token itself.
struct token_record {
  std::string name;
  server::role role = role::station;
  token_digest digest{};
  std::int64_t created_at = 0;  // Unix ms
};

// Token names share the station-name alphabet: they become station names.
bool is_valid_token_name(std::string_view name) noexcept;

// A new random token: "bst_" + 43 base64url characters (256 bits from the
// OpenSSL CSPRNG). Throws std::runtime_error when the CSPRNG fails.
std::string generate_token();
token_digest digest_of_token(std::string_view token);

// The record whose digest matches the token, or nothing. Looks at every
// record whatever matches, with CRYPTO_memcmp, so the time taken does not
// depend on where or whether a token matches.
std::optional<principal> authenticate(std::string_view token, const std::vector<token_record>& records);

// The token of an "Authorization: Bearer <token>" header value; nothing when
// the value is empty or another scheme.
std::optional<std::string_view> bearer_token(std::string_view authorization) noexcept;

}  // namespace borderscan::server
