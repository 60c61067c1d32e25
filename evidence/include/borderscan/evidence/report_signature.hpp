#pragma once
// Signed reports. The daemon signs every report it stores with its Ed25519
// key; anyone with the public key checks a report offline.
//
// The canonical form of a report is the document as the scan wrote it. The
// signed document is that document with one member added as the last of the
// top-level object, directly before its closing brace:
//
//   ,"signature":{"alg":"Ed25519","key_id":"<16 hex>","value":"<base64>"}
//
// Removing exactly that text gives the canonical form back, byte for byte.
// `value` is the Ed25519 signature of the message
//
//   "borderscan report signature v1\nsha256:<hex SHA-256 of the canonical form>\n"
//
// so that a report of any size is signed and checked while it streams.
// key_id is the hex of the first 8 bytes of the SHA-256 of the raw 32-byte
// public key.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace borderscan::evidence {

struct report_signature {
  std::string alg = "Ed25519";
  std::string key_id;
  std::string value;  // base64
};

// The exact text inserted into a report for `sig`.
std::string signature_member(const report_signature& sig);
std::string signing_message(std::string_view canonical_sha256_hex);

struct key_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// An Ed25519 public key.
class public_key {
 public:
  // From PEM (SubjectPublicKeyInfo); throws key_error when it is not an Ed25519 key.
  static public_key from_pem(std::string_view pem);
  std::string pem() const;
  const std::string& key_id() const noexcept { return key_id_; }
  bool verify(std::string_view message, std::string_view signature_base64) const;

  public_key(public_key&&) noexcept;
  public_key& operator=(public_key&&) noexcept;
  ~public_key();

 private:
  struct impl;
  explicit public_key(std::unique_ptr<impl> p);
  friend class signing_key;
  std::unique_ptr<impl> impl_;
  std::string key_id_;
};

// An Ed25519 private key kept in a PEM file (PKCS#8, mode 0600).
class signing_key {
 public:
  // Loads the key at `file`, or makes one there (0600, in a 0700 folder) when
  // there is none. Throws key_error when the file exists but holds no Ed25519 key.
  static signing_key load_or_create(const std::filesystem::path& file);
  const public_key& public_part() const noexcept { return public_; }
  report_signature sign_digest(std::string_view canonical_sha256_hex) const;

  signing_key(signing_key&&) noexcept;
  signing_key& operator=(signing_key&&) noexcept;
  ~signing_key();

 private:
  struct impl;
  signing_key(std::unique_ptr<impl> p, public_key pub);
  std::unique_ptr<impl> impl_;
  public_key public_;
};

// Adds the signature to the report file in place (truncate after the
// canonical form's content, append the member, the closing brace and the
// trailing whitespace, fsync). `canonical_sha256_hex` is the file's SHA-256
// as it is now, checked by the caller while it read the file.
void sign_report_file(const std::filesystem::path& file, const signing_key& key, std::string_view canonical_sha256_hex);

enum class verification { valid, not_signed, invalid };

struct verify_outcome {
  verification result = verification::invalid;
  std::string key_id;  // of the signature, when there is one
  std::string detail;
};

// Checks a signed report file against `key`, reading it once, front to back
// (memory stays flat for any size). Throws std::system_error when the file
// cannot be read.
verify_outcome verify_report_file(const std::filesystem::path& file, const public_key& key);

}  // namespace borderscan::evidence
