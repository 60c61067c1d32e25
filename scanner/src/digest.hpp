#pragma once
// MD5, SHA-1 and SHA-256 computed together over one stream (OpenSSL EVP).
// SHA-256 alone: borderscan/scanner/digest.hpp.

#include <array>
#include <cstdint>
#include <memory>
#include <span>

namespace borderscan::scanner::detail {

struct digests {
  std::array<std::uint8_t, 16> md5{};
  std::array<std::uint8_t, 20> sha1{};
  std::array<std::uint8_t, 32> sha256{};
};

class multi_hasher {
 public:
  multi_hasher();
  ~multi_hasher();
  multi_hasher(const multi_hasher&) = delete;
  multi_hasher& operator=(const multi_hasher&) = delete;

  void reset();
  void update(std::span<const std::byte> block);
  digests finish();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace borderscan::scanner::detail
