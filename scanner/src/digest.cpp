#include "digest.hpp"

#include <openssl/evp.h>

#include "borderscan/scanner/error.hpp"
#include "c_handle.hpp"

namespace borderscan::scanner::detail {
namespace {

using md_ctx_ptr = std::unique_ptr<EVP_MD_CTX, c_deleter<&EVP_MD_CTX_free>>;

md_ctx_ptr new_ctx(const EVP_MD* md) {
  md_ctx_ptr ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestInit_ex(ctx.get(), md, nullptr) != 1) {
    throw scan_error(scan_errc::internal, "OpenSSL digest initialisation failed");
  }
  return ctx;
}

template <std::size_t N>
void final_into(EVP_MD_CTX* ctx, std::array<std::uint8_t, N>& out) {
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx, out.data(), &len) != 1 || len != N) {
    throw scan_error(scan_errc::internal, "OpenSSL digest finalisation failed");
  }
}

void update_or_throw(EVP_MD_CTX* ctx, std::span<const std::byte> block) {
  if (EVP_DigestUpdate(ctx, block.data(), block.size()) != 1) {
    throw scan_error(scan_errc::internal, "OpenSSL digest update failed");
  }
}

}  // namespace

struct multi_hasher::impl {
  md_ctx_ptr md5 = new_ctx(EVP_md5());
  md_ctx_ptr sha1 = new_ctx(EVP_sha1());
  md_ctx_ptr sha256 = new_ctx(EVP_sha256());
};

multi_hasher::multi_hasher() : impl_(std::make_unique<impl>()) {}
multi_hasher::~multi_hasher() = default;

void multi_hasher::reset() {
  EVP_DigestInit_ex(impl_->md5.get(), EVP_md5(), nullptr);
  EVP_DigestInit_ex(impl_->sha1.get(), EVP_sha1(), nullptr);
  EVP_DigestInit_ex(impl_->sha256.get(), EVP_sha256(), nullptr);
}

void multi_hasher::update(std::span<const std::byte> block) {
  update_or_throw(impl_->md5.get(), block);
  update_or_throw(impl_->sha1.get(), block);
  update_or_throw(impl_->sha256.get(), block);
}

digests multi_hasher::finish() {
  digests d;
  final_into(impl_->md5.get(), d.md5);
  final_into(impl_->sha1.get(), d.sha1);
  final_into(impl_->sha256.get(), d.sha256);
  return d;
}

struct sha256_hasher::impl {
  md_ctx_ptr ctx = new_ctx(EVP_sha256());
};

sha256_hasher::sha256_hasher() : impl_(std::make_unique<impl>()) {}
sha256_hasher::~sha256_hasher() = default;
void sha256_hasher::update(std::span<const std::byte> block) {
  update_or_throw(impl_->ctx.get(), block);
}
std::array<std::uint8_t, 32> sha256_hasher::finish() {
  std::array<std::uint8_t, 32> out{};
  final_into(impl_->ctx.get(), out);
  return out;
}

}  // namespace borderscan::scanner::detail
