#include "borderscan/evidence/report_signature.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <fstream>
#include <system_error>
#include <vector>

#include <nlohmann/json.hpp>

#include "borderscan/scanner/atomic_file.hpp"
#include "borderscan/scanner/digest.hpp"

namespace borderscan::evidence {
namespace {

namespace fs = std::filesystem;

struct pkey_free {
  void operator()(EVP_PKEY* p) const noexcept { EVP_PKEY_free(p); }
};
struct bio_free {
  void operator()(BIO* b) const noexcept { BIO_free(b); }
};
struct md_ctx_free {
  void operator()(EVP_MD_CTX* c) const noexcept { EVP_MD_CTX_free(c); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_free>;
using bio_ptr = std::unique_ptr<BIO, bio_free>;
using md_ctx_ptr = std::unique_ptr<EVP_MD_CTX, md_ctx_free>;

constexpr std::string_view member_prefix = ",\"signature\":{";

std::string key_id_of(EVP_PKEY* key) {
  std::array<std::uint8_t, 32> raw{};
  std::size_t len = raw.size();
  if (EVP_PKEY_get_raw_public_key(key, raw.data(), &len) != 1 || len != raw.size()) {
    throw key_error("cannot read the raw Ed25519 public key");
  }
  scanner::sha256_hasher h;
  h.update(raw.data(), raw.size());
  const auto digest = h.finish();
  return scanner::to_hex(std::span(digest.data(), 8));
}

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  return len > 0 ? std::string(data, static_cast<std::size_t>(len)) : std::string();
}

bool is_space(char c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

// The end of a report file: its last bytes, where they start in the file,
// and where its content ends in them (trailing whitespace cut off).
struct document_tail {
  std::string bytes;
  std::uint64_t start = 0;
  std::size_t content_end = 0;
  bool ends_with_brace() const { return content_end > 0 && bytes[content_end - 1] == '}'; }
  std::string trailing() const { return bytes.substr(content_end); }
};

document_tail tail_of(const fs::path& file) {
  // The signature member is about 150 bytes: 4 KiB always holds it.
  constexpr std::uint64_t max = 4096;
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    throw std::system_error(errno, std::generic_category(), "cannot open " + file.string());
  }
  in.seekg(0, std::ios::end);
  const auto size = static_cast<std::uint64_t>(in.tellg());
  document_tail t;
  t.start = size > max ? size - max : 0;
  t.bytes.assign(size - t.start, '\0');
  in.seekg(static_cast<std::streamoff>(t.start));
  in.read(t.bytes.data(), static_cast<std::streamsize>(t.bytes.size()));
  if (!in) {
    throw std::system_error(EIO, std::generic_category(), "cannot read " + file.string());
  }
  t.content_end = t.bytes.size();
  while (t.content_end > 0 && is_space(t.bytes[t.content_end - 1])) {
    --t.content_end;
  }
  return t;
}

}  // namespace

std::string signature_member(const report_signature& sig) {
  const nlohmann::json j = {{"alg", sig.alg}, {"key_id", sig.key_id}, {"value", sig.value}};
  // nlohmann orders keys alphabetically: alg, key_id, value.
  return ",\"signature\":" + j.dump();
}

std::string signing_message(std::string_view canonical_sha256_hex) {
  return "borderscan report signature v1\nsha256:" + std::string(canonical_sha256_hex) + "\n";
}

struct public_key::impl {
  pkey_ptr key;
};

public_key::public_key(std::unique_ptr<impl> p) : impl_(std::move(p)), key_id_(key_id_of(impl_->key.get())) {}
public_key::public_key(public_key&&) noexcept = default;
public_key& public_key::operator=(public_key&&) noexcept = default;
public_key::~public_key() = default;

public_key public_key::from_pem(std::string_view pem) {
  bio_ptr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  pkey_ptr key(bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!key || EVP_PKEY_get_id(key.get()) != EVP_PKEY_ED25519) {
    throw key_error("not a PEM Ed25519 public key");
  }
  return public_key(std::make_unique<impl>(impl{std::move(key)}));
}

std::string public_key::pem() const {
  bio_ptr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), impl_->key.get()) != 1) {
    throw key_error("cannot write the public key as PEM");
  }
  return bio_text(bio.get());
}

bool public_key::verify(std::string_view message, std::string_view signature_base64) const {
  const auto sig = scanner::base64_decode(signature_base64);
  if (!sig || sig->size() != 64) {
    return false;
  }
  md_ctx_ptr ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, impl_->key.get()) != 1) {
    throw key_error("OpenSSL cannot set up Ed25519 verification");
  }
  return EVP_DigestVerify(ctx.get(), sig->data(), sig->size(), reinterpret_cast<const unsigned char*>(message.data()),
                          message.size()) == 1;
}

struct signing_key::impl {
  pkey_ptr key;
};

signing_key::signing_key(std::unique_ptr<impl> p, public_key pub) : impl_(std::move(p)), public_(std::move(pub)) {}
signing_key::signing_key(signing_key&&) noexcept = default;
signing_key& signing_key::operator=(signing_key&&) noexcept = default;
signing_key::~signing_key() = default;

signing_key signing_key::load_or_create(const fs::path& file) {
  pkey_ptr key;
  std::error_code ec;
  if (fs::exists(file, ec)) {
    std::ifstream in(file, std::ios::binary);
    const std::string pem((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    bio_ptr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    key.reset(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
    if (!key || EVP_PKEY_get_id(key.get()) != EVP_PKEY_ED25519) {
      throw key_error(file.string() + " holds no PEM Ed25519 private key");
    }
  } else {
    key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
    if (!key) {
      throw key_error("OpenSSL cannot make an Ed25519 key");
    }
    bio_ptr bio(BIO_new(BIO_s_mem()));
    if (!bio || PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
      throw key_error("cannot write the private key as PEM");
    }
    fs::create_directories(file.parent_path());
    fs::permissions(file.parent_path(), fs::perms::owner_all, fs::perm_options::replace);
    scanner::write_file_atomically(file, bio_text(bio.get()));
  }
  // The public part as its own key object, so verification never touches the private one.
  std::array<std::uint8_t, 32> raw{};
  std::size_t len = raw.size();
  if (EVP_PKEY_get_raw_public_key(key.get(), raw.data(), &len) != 1) {
    throw key_error("cannot read the Ed25519 public key");
  }
  pkey_ptr pub(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, raw.data(), len));
  if (!pub) {
    throw key_error("cannot make the Ed25519 public key");
  }
  public_key pk(std::make_unique<public_key::impl>(public_key::impl{std::move(pub)}));
  return signing_key(std::make_unique<impl>(impl{std::move(key)}), std::move(pk));
}

report_signature signing_key::sign_digest(std::string_view canonical_sha256_hex) const {
  const std::string message = signing_message(canonical_sha256_hex);
  md_ctx_ptr ctx(EVP_MD_CTX_new());
  std::array<std::uint8_t, 64> sig{};
  std::size_t len = sig.size();
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, impl_->key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), sig.data(), &len, reinterpret_cast<const unsigned char*>(message.data()),
                     message.size()) != 1 ||
      len != sig.size()) {
    throw key_error("OpenSSL failed to sign");
  }
  return {"Ed25519", public_.key_id(), scanner::base64_encode(sig)};
}

void sign_report_file(const fs::path& file, const signing_key& key, std::string_view canonical_sha256_hex) {
  const document_tail tail = tail_of(file);
  if (!tail.ends_with_brace()) {
    throw std::runtime_error(file.string() + " does not end with a JSON object's closing brace");
  }
  const std::string appended = signature_member(key.sign_digest(canonical_sha256_hex)) + "}" + tail.trailing();
  const int fd = ::open(file.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    throw std::system_error(errno, std::generic_category(), "cannot open " + file.string());
  }
  const auto cut = static_cast<off_t>(tail.start + tail.content_end - 1);
  bool ok = ::ftruncate(fd, cut) == 0 &&
            ::pwrite(fd, appended.data(), appended.size(), cut) == static_cast<ssize_t>(appended.size());
  ok = ok && ::fsync(fd) == 0;
  const int saved = errno;
  ::close(fd);
  if (!ok) {
    throw std::system_error(saved, std::generic_category(), "cannot sign " + file.string());
  }
}

verify_outcome verify_report_file(const fs::path& file, const public_key& key) {
  verify_outcome out;
  const document_tail tail = tail_of(file);
  const auto at = tail.bytes.rfind(member_prefix);
  if (!tail.ends_with_brace() || at == std::string::npos) {
    out.result = verification::not_signed;
    out.detail = "the report carries no signature";
    return out;
  }
  const std::string member = tail.bytes.substr(at, tail.content_end - 1 - at);
  const auto sig_json = nlohmann::json::parse(member.substr(member_prefix.size() - 1), nullptr, false);
  if (!sig_json.is_object() || !sig_json.contains("alg") || !sig_json.contains("key_id") ||
      !sig_json.contains("value") || !sig_json["alg"].is_string() || !sig_json["key_id"].is_string() ||
      !sig_json["value"].is_string()) {
    out.detail = "the signature member is malformed";
    return out;
  }
  report_signature sig{sig_json["alg"].get<std::string>(), sig_json["key_id"].get<std::string>(),
                       sig_json["value"].get<std::string>()};
  out.key_id = sig.key_id;
  if (signature_member(sig) != member) {
    out.detail = "the signature member is not in its canonical form";
    return out;
  }
  if (sig.alg != "Ed25519") {
    out.detail = "unknown signature algorithm " + sig.alg;
    return out;
  }
  if (sig.key_id != key.key_id()) {
    out.detail = "signed with key " + sig.key_id + ", not with the given key " + key.key_id();
    return out;
  }
  // The canonical form: everything before the member, then the closing brace and what followed it.
  scanner::sha256_hasher h;
  std::ifstream in(file, std::ios::binary);
  std::vector<char> buf(1 << 20);
  std::uint64_t left = tail.start + at;
  while (left > 0 && in) {
    const auto n = static_cast<std::streamsize>(std::min<std::uint64_t>(left, buf.size()));
    in.read(buf.data(), n);
    if (in.gcount() != n) {
      throw std::system_error(EIO, std::generic_category(), "cannot read " + file.string());
    }
    h.update(buf.data(), static_cast<std::size_t>(n));
    left -= static_cast<std::uint64_t>(n);
  }
  const std::string rest = "}" + tail.trailing();
  h.update(rest.data(), rest.size());
  if (!key.verify(signing_message(h.hex_digest()), sig.value)) {
    out.detail = "the signature does not match the report's content: the report was changed after it was signed";
    return out;
  }
  out.result = verification::valid;
  return out;
}

}  // namespace borderscan::evidence
