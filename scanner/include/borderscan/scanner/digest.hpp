#pragma once
// SHA-256 and the encodings around digests, for every part of Borderscan
// (scanner, daemon, CLI): one implementation on OpenSSL EVP, each return code
// checked. A failing OpenSSL call throws scan_error(internal).

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace borderscan::scanner {

using sha256_digest = std::array<std::uint8_t, 32>;

// SHA-256 of one stream, fed in pieces. Not thread-safe; finish once.
class sha256_hasher {
 public:
  sha256_hasher();
  ~sha256_hasher();
  sha256_hasher(const sha256_hasher&) = delete;
  sha256_hasher& operator=(const sha256_hasher&) = delete;
  void update(std::span<const std::byte> block);
  void update(const void* data, std::size_t size) { update(std::span(static_cast<const std::byte*>(data), size)); }
  sha256_digest finish();
  std::string hex_digest();  // finish() as lower-case hex

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// SHA-256 of bytes in memory, as lower-case hex.
std::string sha256_hex(std::string_view data);

// Lower-case hex of bytes.
std::string to_hex(std::span<const std::uint8_t> bytes);
// Base64 (RFC 4648 section 4, with padding) of bytes.
std::string base64_encode(std::span<const std::uint8_t> bytes);
// Base64 (RFC 4648 section 4, padding required, no whitespace) to bytes;
// nullopt when the text is not that.
std::optional<std::vector<std::uint8_t>> base64_decode(std::string_view text);

}  // namespace borderscan::scanner
