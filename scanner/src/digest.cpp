#include "digest.hpp"

#include "borderscan/scanner/digest.hpp"

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

void init_or_throw(EVP_MD_CTX* ctx, const EVP_MD* md) {
  if (EVP_DigestInit_ex(ctx, md, nullptr) != 1) {
    throw scan_error(scan_errc::internal, "OpenSSL digest initialisation failed");
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
  init_or_throw(impl_->md5.get(), EVP_md5());
  init_or_throw(impl_->sha1.get(), EVP_sha1());
  init_or_throw(impl_->sha256.get(), EVP_sha256());
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

}  // namespace borderscan::scanner::detail

namespace borderscan::scanner {

struct sha256_hasher::impl {
  detail::md_ctx_ptr ctx = detail::new_ctx(EVP_sha256());
};

sha256_hasher::sha256_hasher() : impl_(std::make_unique<impl>()) {}
sha256_hasher::~sha256_hasher() = default;

void sha256_hasher::update(std::span<const std::byte> block) {
  detail::update_or_throw(impl_->ctx.get(), block);
}

sha256_digest sha256_hasher::finish() {
  sha256_digest out{};
  detail::final_into(impl_->ctx.get(), out);
  return out;
}

std::string sha256_hasher::hex_digest() {
  return to_hex(finish());
}

std::string sha256_hex(std::string_view data) {
  sha256_hasher h;
  h.update(data.data(), data.size());
  return h.hex_digest();
}

std::string to_hex(std::span<const std::uint8_t> bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out(bytes.size() * 2, '0');
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    out[2 * i] = digits[bytes[i] >> 4];
    out[2 * i + 1] = digits[bytes[i] & 0xF];
  }
  return out;
}

std::string base64_encode(std::span<const std::uint8_t> bytes) {
  std::string out((bytes.size() + 2) / 3 * 4 + 1, '\0');  // EVP_EncodeBlock adds a NUL
  const int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes.data(), static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::optional<std::vector<std::uint8_t>> base64_decode(std::string_view text) {
  // EVP_DecodeBlock skips surrounding whitespace and takes '=' anywhere in
  // the last quantum; the RFC form is checked here first.
  if (text.size() % 4 != 0) {
    return std::nullopt;
  }
  const std::size_t pad = text.ends_with("==") ? 2 : text.ends_with('=') ? 1 : 0;
  for (std::size_t i = 0; i < text.size() - pad; ++i) {
    const char c = text[i];
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
    if (!ok) {
      return std::nullopt;
    }
  }
  std::vector<std::uint8_t> out(text.size() / 4 * 3);
  const int n =
      EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0 || static_cast<std::size_t>(n) != out.size()) {
    return std::nullopt;
  }
  out.resize(out.size() - pad);  // EVP_DecodeBlock counts the padding as zero bytes
  return out;
}

}  // namespace borderscan::scanner
