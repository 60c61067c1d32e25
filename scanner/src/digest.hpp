#pragma once
// MD5, SHA-1 and SHA-256 computed together over one stream (OpenSSL EVP).

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

// SHA-256 of one stream (image files, rule sources).
class sha256_hasher {
 public:
  sha256_hasher();
  ~sha256_hasher();
  sha256_hasher(const sha256_hasher&) = delete;
  sha256_hasher& operator=(const sha256_hasher&) = delete;
  void update(std::span<const std::byte> block);
  std::array<std::uint8_t, 32> finish();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace borderscan::scanner::detail
