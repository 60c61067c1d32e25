#include "encrypted_volume.hpp"

#include <libbde.h>
#include <libbfio.h>
#include <libfvde.h>
#include <libluksde.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include "borderscan/scanner/text.hpp"
#include "magic_classifier.hpp"

namespace borderscan::scanner::detail {
namespace {

// --- libbfio: the libyal libraries read the volume through a handle of
// callbacks over our content_source (a partition inside the image, or an
// embedded image), never a file name.

struct bfio_volume {
  content_source* source;
  std::uint64_t position = 0;
  bool open = false;
};

int bfio_free(intptr_t** io, libbfio_error_t**) {
  delete reinterpret_cast<bfio_volume*>(*io);
  *io = nullptr;
  return 1;
}
int bfio_clone(intptr_t** dst, intptr_t* src, libbfio_error_t**) {
  *dst = reinterpret_cast<intptr_t*>(new bfio_volume{*reinterpret_cast<bfio_volume*>(src)});
  return 1;
}
int bfio_open(intptr_t* io, int, libbfio_error_t**) {
  reinterpret_cast<bfio_volume*>(io)->open = true;
  return 1;
}
int bfio_close(intptr_t* io, libbfio_error_t**) {
  reinterpret_cast<bfio_volume*>(io)->open = false;
  return 0;
}
ssize_t bfio_read(intptr_t* io, uint8_t* buffer, size_t size, libbfio_error_t**) {
  auto* v = reinterpret_cast<bfio_volume*>(io);
  try {  // never unwind through C
    std::size_t done = 0;
    while (done < size) {
      const std::size_t n =
          v->source->read_at(v->position + done, std::span(reinterpret_cast<std::byte*>(buffer) + done, size - done));
      if (n == 0) {
        break;
      }
      done += n;
    }
    v->position += done;
    return static_cast<ssize_t>(done);
  } catch (...) {
    return -1;
  }
}
ssize_t bfio_write(intptr_t*, const uint8_t*, size_t, libbfio_error_t**) {
  return -1;  // evidence is read-only
}
off64_t bfio_seek(intptr_t* io, off64_t offset, int whence, libbfio_error_t**) {
  auto* v = reinterpret_cast<bfio_volume*>(io);
  const auto size = static_cast<off64_t>(v->source->size());
  const off64_t base = whence == SEEK_CUR ? static_cast<off64_t>(v->position) : whence == SEEK_END ? size : 0;
  if (offset < -base) {
    return -1;
  }
  v->position = static_cast<std::uint64_t>(base + offset);
  return static_cast<off64_t>(v->position);
}
int bfio_exists(intptr_t*, libbfio_error_t**) {
  return 1;
}
int bfio_is_open(intptr_t* io, libbfio_error_t**) {
  return reinterpret_cast<bfio_volume*>(io)->open ? 1 : 0;
}
int bfio_get_size(intptr_t* io, size64_t* size, libbfio_error_t**) {
  *size = reinterpret_cast<bfio_volume*>(io)->source->size();
  return 1;
}

struct bfio_handle_closer {
  void operator()(libbfio_handle_t* h) const noexcept { libbfio_handle_free(&h, nullptr); }
};
using bfio_ptr = std::unique_ptr<libbfio_handle_t, bfio_handle_closer>;

// The handle does not own `state` (non-managed); clones it makes own theirs.
bfio_ptr bfio_handle_over(bfio_volume& state) {
  libbfio_handle_t* h = nullptr;
  if (libbfio_handle_initialize(&h, reinterpret_cast<intptr_t*>(&state), &bfio_free, &bfio_clone, &bfio_open,
                                &bfio_close, &bfio_read, &bfio_write, &bfio_seek, &bfio_exists, &bfio_is_open,
                                &bfio_get_size, LIBBFIO_FLAG_IO_HANDLE_NON_MANAGED, nullptr) != 1) {
    return nullptr;
  }
  return bfio_ptr(h);
}

// The innermost cause of a libyal error (the first line of its backtrace), then freed.
template <class Error, auto Sprint, auto Free>
std::string take_error(Error*& e) {
  if (e == nullptr) {
    return "unknown error";
  }
  std::array<char, 512> text{};
  Sprint(e, text.data(), text.size());
  Free(&e);
  std::string s(text.data());
  if (const auto nl = s.find('\n'); nl != std::string::npos) {
    s.resize(nl);
  }
  return escape_name(s);
}

// --- Small readers of header bytes (LUKS is big-endian, the Microsoft GUIDs
// libbde returns are little-endian in their first three groups).

std::uint64_t be(const std::vector<std::byte>& b, std::size_t at, std::size_t n) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i) {
    v = (v << 8) | std::to_integer<std::uint64_t>(b[at + i]);
  }
  return v;
}

// A NUL-padded text field of a header.
std::string text_field(const std::vector<std::byte>& b, std::size_t at, std::size_t n) {
  std::string s(reinterpret_cast<const char*>(b.data()) + at, n);
  s.resize(std::strlen(s.c_str()));
  return escape_name(s);
}

std::string guid_text(const std::uint8_t* g, bool microsoft_order) {
  std::array<std::uint8_t, 16> b{};
  std::copy(g, g + 16, b.begin());
  if (microsoft_order) {
    std::reverse(b.begin(), b.begin() + 4);
    std::reverse(b.begin() + 4, b.begin() + 6);
    std::reverse(b.begin() + 6, b.begin() + 8);
  }
  char out[37];
  std::snprintf(out, sizeof out, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
  return out;
}

std::vector<std::byte> read_head(content_source& v, std::uint64_t offset, std::size_t n) {
  std::vector<std::byte> out(n);
  std::size_t done = 0;
  while (done < n) {
    const std::size_t got = v.read_at(offset + done, std::span(out).subspan(done));
    if (got == 0) {
      break;
    }
    done += got;
  }
  out.resize(done);
  return out;
}

// --- BitLocker: libbde reads the FVE metadata without a key. (The libyal
// open functions return 0 when they opened the volume but could not unlock
// it, which is the case here: no key is ever given.)

const char* bde_method_name(std::uint16_t m) {
  switch (m) {
    case LIBBDE_ENCRYPTION_METHOD_AES_128_CBC_DIFFUSER:
      return "aes-128-cbc-elephant-diffuser";
    case LIBBDE_ENCRYPTION_METHOD_AES_256_CBC_DIFFUSER:
      return "aes-256-cbc-elephant-diffuser";
    case LIBBDE_ENCRYPTION_METHOD_AES_128_CBC:
      return "aes-128-cbc";
    case LIBBDE_ENCRYPTION_METHOD_AES_256_CBC:
      return "aes-256-cbc";
    case LIBBDE_ENCRYPTION_METHOD_AES_128_XTS:
      return "aes-128-xts";
    case LIBBDE_ENCRYPTION_METHOD_AES_256_XTS:
      return "aes-256-xts";
    default:
      return nullptr;
  }
}

std::string bde_protector_name(std::uint16_t t) {
  switch (t) {
    case LIBBDE_KEY_PROTECTION_TYPE_CLEAR_KEY:
      return "clear-key";  // protection suspended: the key is stored unprotected
    case LIBBDE_KEY_PROTECTION_TYPE_TPM:
      return "tpm";
    case LIBBDE_KEY_PROTECTION_TYPE_STARTUP_KEY:
      return "startup-key";
    case LIBBDE_KEY_PROTECTION_TYPE_RECOVERY_PASSWORD:
      return "recovery-password";
    case LIBBDE_KEY_PROTECTION_TYPE_PASSWORD:
      return "password";
    default:
      return "type-0x" + [t] {
        char b[8];
        std::snprintf(b, sizeof b, "%04x", t);
        return std::string(b);
      }();
  }
}

std::string bde_error(libbde_error_t*& e) {
  return take_error<libbde_error_t, &libbde_error_backtrace_sprint, &libbde_error_free>(e);
}

using bde_volume_ptr = std::unique_ptr<libbde_volume_t, decltype([](libbde_volume_t* v) {
                                         libbde_volume_close(v, nullptr);
                                         libbde_volume_free(&v, nullptr);
                                       })>;

void read_bitlocker(libbfio_handle_t* io, volume_encryption& enc) {
  libbde_error_t* err = nullptr;
  libbde_volume_t* raw = nullptr;
  if (libbde_volume_initialize(&raw, &err) != 1) {
    enc.notes.push_back("libbde: " + bde_error(err));
    return;
  }
  if (libbde_volume_open_file_io_handle(raw, io, LIBBDE_OPEN_READ, &err) == -1) {
    libbde_volume_free(&raw, nullptr);
    enc.notes.push_back("libbde recognised the signature but cannot read the FVE metadata: " + bde_error(err));
    return;
  }
  const bde_volume_ptr volume(raw);
  std::uint16_t method = 0;
  if (libbde_volume_get_encryption_method(raw, &method, &err) == 1) {
    const char* name = bde_method_name(method);
    enc.cipher = name != nullptr ? name : "unknown method 0x" + std::to_string(method);
  } else {
    enc.notes.push_back("libbde: no encryption method: " + bde_error(err));
  }
  std::array<std::uint8_t, 16> guid{};
  if (libbde_volume_get_volume_identifier(raw, guid.data(), guid.size(), &err) == 1) {
    enc.identifiers["volume_guid"] = guid_text(guid.data(), true);
  } else {
    bde_error(err);
  }
  std::uint64_t filetime = 0;
  if (libbde_volume_get_creation_time(raw, &filetime, &err) == 1 && filetime != 0) {
    // FILETIME counts 100 ns from 1601-01-01.
    constexpr std::uint64_t unix_epoch = 116444736000000000ULL;
    if (filetime > unix_epoch) {
      enc.identifiers["created"] = iso8601(static_cast<std::int64_t>((filetime - unix_epoch) / 10000000ULL));
    }
  } else {
    bde_error(err);
  }
  // Windows writes the computer name, drive letter and date here.
  if (std::size_t size = 0; libbde_volume_get_utf8_description_size(raw, &size, &err) == 1 && size > 1) {
    std::vector<std::uint8_t> text(size);
    if (libbde_volume_get_utf8_description(raw, text.data(), text.size(), &err) == 1) {
      enc.identifiers["description"] = escape_name(reinterpret_cast<const char*>(text.data()));
    }
  }
  bde_error(err);
  int count = 0;
  if (libbde_volume_get_number_of_key_protectors(raw, &count, &err) != 1) {
    enc.notes.push_back("libbde: key protectors not listed: " + bde_error(err));
    return;
  }
  for (int i = 0; i < count; ++i) {
    libbde_key_protector_t* kp = nullptr;
    std::uint16_t type = 0;
    if (libbde_volume_get_key_protector(raw, i, &kp, &err) == 1 &&
        libbde_key_protector_get_type(kp, &type, &err) == 1) {
      enc.key_protectors.push_back(bde_protector_name(type));
    } else {
      enc.notes.push_back("libbde: key protector " + std::to_string(i) + ": " + bde_error(err));
    }
    libbde_key_protector_free(&kp, nullptr);
  }
}

// --- LUKS. Both versions share the first bytes: magic "LUKS\xba\xbe" and a
// big-endian version (LUKS1 On-Disk Format Specification 1.2.3, section 2.4;
// LUKS2 On-Disk Format Specification, section 2: binary header).

constexpr std::array<std::uint8_t, 6> luks_magic = {'L', 'U', 'K', 'S', 0xba, 0xbe};

bool has_luks_magic(const std::vector<std::byte>& head) {
  return head.size() >= 512 &&
         std::equal(luks_magic.begin(), luks_magic.end(), head.begin(),
                    [](std::uint8_t a, std::byte b) { return a == std::to_integer<std::uint8_t>(b); });
}

std::string luksde_error(libluksde_error_t*& e) {
  return take_error<libluksde_error_t, &libluksde_error_backtrace_sprint, &libluksde_error_free>(e);
}

// LUKS1: libluksde checks the header and reads its volume identifier; the
// cipher's full name and the key slots are fields of the same 592-byte header.
void read_luks1(libbfio_handle_t* io, const std::vector<std::byte>& head, volume_encryption& enc) {
  enc.type = "luks1";
  libluksde_error_t* err = nullptr;
  libluksde_volume_t* volume = nullptr;
  if (libluksde_volume_initialize(&volume, &err) == 1) {
    if (libluksde_volume_open_file_io_handle(volume, io, LIBLUKSDE_OPEN_READ, &err) != -1) {
      std::array<std::uint8_t, 16> uuid{};
      if (libluksde_volume_get_volume_identifier(volume, uuid.data(), uuid.size(), &err) == 1) {
        enc.identifiers["uuid"] = guid_text(uuid.data(), false);
      } else {
        enc.notes.push_back("libluksde: " + luksde_error(err));
      }
      libluksde_volume_close(volume, nullptr);
    } else {
      enc.notes.push_back("libluksde cannot read the header: " + luksde_error(err));
    }
    libluksde_volume_free(&volume, nullptr);
  } else {
    enc.notes.push_back("libluksde: " + luksde_error(err));
  }
  if (head.size() < 592) {
    return;
  }
  const std::string name = text_field(head, 8, 32), mode = text_field(head, 40, 32);
  if (!name.empty()) {
    enc.cipher = mode.empty() ? name : name + "-" + mode;
  }
  if (!enc.identifiers.contains("uuid")) {
    enc.identifiers["uuid"] = text_field(head, 168, 40);
  }
  enc.identifiers["hash"] = text_field(head, 72, 32);
  constexpr std::uint64_t slot_enabled = 0x00AC71F3;
  for (std::size_t slot = 0; slot < 8; ++slot) {
    if (be(head, 208 + slot * 48, 4) == slot_enabled) {
      enc.key_protectors.push_back("keyslot-" + std::to_string(slot) + ":pbkdf2-passphrase");
    }
  }
}

// LUKS2: the binary header names the JSON area's size; the JSON (keyslots,
// segments, tokens) is read with nlohmann/json.
void read_luks2(content_source& volume, const std::vector<std::byte>& head, volume_encryption& enc) {
  enc.type = "luks2";
  enc.identifiers["uuid"] = text_field(head, 168, 40);
  if (const std::string label = text_field(head, 24, 48); !label.empty()) {
    enc.identifiers["label"] = label;
  }
  if (const std::string subsystem = text_field(head, 208, 48); !subsystem.empty()) {
    enc.identifiers["subsystem"] = subsystem;
  }
  constexpr std::uint64_t binary_header = 4096, max_header = 4 << 20;  // the spec's largest header is 4 MiB
  const std::uint64_t header_size = be(head, 8, 8);
  if (header_size <= binary_header || header_size > max_header) {
    enc.notes.push_back("LUKS2 header size " + std::to_string(header_size) + " out of range; JSON area not read");
    return;
  }
  const std::vector<std::byte> area =
      read_head(volume, binary_header, static_cast<std::size_t>(header_size - binary_header));
  std::string text(reinterpret_cast<const char*>(area.data()), area.size());
  text.resize(std::strlen(text.c_str()));  // the area is NUL-padded
  const nlohmann::json meta = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!meta.is_object()) {
    enc.notes.push_back("LUKS2 JSON area is not a JSON object; keyslots and cipher not read");
    return;
  }
  const auto string_at = [](const nlohmann::json& j, const char* key) {
    return j.is_object() && j.contains(key) && j[key].is_string() ? escape_name(j[key].get<std::string>())
                                                                  : std::string();
  };
  if (const auto& segments = meta.value("segments", nlohmann::json::object()); segments.is_object()) {
    for (const auto& [id, seg] : segments.items()) {
      if (const std::string cipher = string_at(seg, "encryption"); !cipher.empty() && !enc.cipher) {
        enc.cipher = cipher;
      }
    }
  }
  if (const auto& keyslots = meta.value("keyslots", nlohmann::json::object()); keyslots.is_object()) {
    for (const auto& [id, slot] : keyslots.items()) {
      const std::string kdf = slot.is_object() ? string_at(slot.value("kdf", nlohmann::json::object()), "type") : "";
      enc.key_protectors.push_back("keyslot-" + escape_name(id) + ":" + (kdf.empty() ? "unknown" : kdf) +
                                   "-passphrase");
    }
  }
  if (const auto& tokens = meta.value("tokens", nlohmann::json::object()); tokens.is_object()) {
    for (const auto& [id, token] : tokens.items()) {
      const std::string type = string_at(token, "type");  // systemd-tpm2, systemd-fido2, clevis, ...
      enc.key_protectors.push_back("token-" + escape_name(id) + ":" + (type.empty() ? "unknown" : type));
    }
  }
}

// --- FileVault 2 / CoreStorage: libfvde reads the physical volume header;
// the logical volume's metadata is encrypted and needs a key.

std::string fvde_error(libfvde_error_t*& e) {
  return take_error<libfvde_error_t, &libfvde_error_backtrace_sprint, &libfvde_error_free>(e);
}

std::uint64_t le(const std::vector<std::byte>& b, std::size_t at, std::size_t n) {
  std::uint64_t v = 0;
  for (std::size_t i = n; i-- > 0;) {
    v = (v << 8) | std::to_integer<std::uint64_t>(b[at + i]);
  }
  return v;
}

// libfvde's signature is the two bytes "CS" at offset 88; the block header in
// front of it (format version 1, block type 0x0010, libfvde's fvde_volume.h)
// must agree before two bytes are believed.
bool corestorage_header(const std::vector<std::byte>& head) {
  return head.size() >= 512 && le(head, 8, 2) == 1 && le(head, 10, 2) == 0x0010;
}

void read_filevault(libbfio_handle_t* io, const std::vector<std::byte>& head, volume_encryption& enc) {
  enc.type = "filevault2";
  // The physical volume header (fvde_volume.h): identifiers and the method stored in the clear.
  enc.identifiers["physical_volume_uuid"] = guid_text(reinterpret_cast<const std::uint8_t*>(head.data()) + 304, false);
  enc.identifiers["volume_group_uuid"] = guid_text(reinterpret_cast<const std::uint8_t*>(head.data()) + 320, false);
  if (le(head, 172, 4) == LIBFVDE_ENCRYPTION_METHOD_AES_XTS) {
    enc.cipher = "aes-128-xts";
  }
  libfvde_error_t* err = nullptr;
  libfvde_volume_t* volume = nullptr;
  if (libfvde_volume_initialize(&volume, &err) != 1) {
    enc.notes.push_back("libfvde: " + fvde_error(err));
    return;
  }
  if (libfvde_volume_open_file_io_handle(volume, io, LIBFVDE_OPEN_READ, &err) != -1) {
    std::uint32_t method = 0;
    if (libfvde_volume_get_physical_volume_encryption_method(volume, &method, &err) == 1) {
      enc.cipher = method == LIBFVDE_ENCRYPTION_METHOD_AES_XTS ? "aes-128-xts" : "method " + std::to_string(method);
    } else {
      enc.notes.push_back("libfvde: " + fvde_error(err));
    }
    libfvde_volume_close(volume, nullptr);
  } else {
    enc.notes.push_back("libfvde recognised the CoreStorage signature but cannot read the volume metadata: " +
                        fvde_error(err));
  }
  libfvde_volume_free(&volume, nullptr);
  enc.key_protectors.push_back("unknown (in the encrypted metadata, needs a key)");
}

// --- No signature: near-random bytes across the volume.

double entropy_of(const std::array<std::uint64_t, 256>& counts, std::uint64_t total) {
  double h = 0;
  for (const std::uint64_t c : counts) {
    if (c != 0) {
      const double p = static_cast<double>(c) / static_cast<double>(total);
      h -= p * std::log2(p);
    }
  }
  return h;
}

std::optional<volume_encryption> detect_high_entropy(content_source& volume, const std::vector<std::byte>& head,
                                                     const entropy_rule& rule) {
  const std::uint64_t size = volume.size();
  const std::uint64_t sample = std::min(size, rule.max_sample_bytes);
  if (sample < rule.min_sample_bytes || head.empty()) {
    return std::nullopt;
  }
  const std::uint64_t blocks = std::max<std::uint64_t>(1, sample / rule.block_bytes);
  const std::uint64_t stride = (size - rule.block_bytes) / std::max<std::uint64_t>(1, blocks - 1);
  std::array<std::uint64_t, 256> all{};
  std::uint64_t total = 0;
  double lowest = 8.0;
  for (std::uint64_t i = 0; i < blocks; ++i) {
    const std::vector<std::byte> block = read_head(volume, i * stride, static_cast<std::size_t>(rule.block_bytes));
    if (block.size() < rule.block_bytes) {
      return std::nullopt;
    }
    std::array<std::uint64_t, 256> counts{};
    for (const std::byte b : block) {
      ++counts[std::to_integer<std::size_t>(b)];
    }
    const double h = entropy_of(counts, block.size());
    if (h < rule.min_block_entropy) {
      return std::nullopt;  // structure somewhere: not one random-looking whole
    }
    lowest = std::min(lowest, h);
    for (std::size_t v = 0; v < 256; ++v) {
      all[v] += counts[v];
    }
    total += block.size();
  }
  const double expected = static_cast<double>(total) / 256.0;
  double chi_square = 0;
  for (const std::uint64_t c : all) {
    const double d = static_cast<double>(c) - expected;
    chi_square += d * d / expected;
  }
  if (chi_square > rule.max_chi_square) {
    return std::nullopt;
  }
  // Compressed data is as dense as ciphertext, but its streams begin with a header libmagic names.
  magic_classifier magic;
  const magic_result kind = magic.classify(std::span(head).first(std::min<std::size_t>(head.size(), 64 << 10)));
  if (kind.description != "data") {
    return std::nullopt;
  }
  volume_encryption enc;
  enc.type = "unknown";
  enc.detected_by = "entropy";
  char figures[1024];
  std::snprintf(figures, sizeof figures,
                "possibly encrypted (VeraCrypt/TrueCrypt-like): %llu bytes sampled in %llu blocks, lowest block "
                "entropy %.4f bits/byte, chi-square %.1f, no known header",
                static_cast<unsigned long long>(total), static_cast<unsigned long long>(blocks), lowest, chi_square);
  enc.notes.push_back(figures);
  return enc;
}

}  // namespace

std::optional<volume_encryption> detect_volume_encryption(content_source& volume, const entropy_rule& rule) {
  try {
    const std::vector<std::byte> head = read_head(volume, 0, 4096);
    if (head.size() < 512) {
      return std::nullopt;
    }
    bfio_volume state{&volume};
    const bfio_ptr io = bfio_handle_over(state);
    // Opened here: libfvde's signature check (20190104) compares only on a handle that is open already.
    if (!io || libbfio_handle_open(io.get(), LIBBFIO_OPEN_READ, nullptr) != 1) {
      return std::nullopt;
    }
    volume_encryption enc;
    enc.detected_by = "signature";
    if (has_luks_magic(head)) {
      const std::uint64_t version = be(head, 6, 2);
      if (version == 2) {
        read_luks2(volume, head, enc);
      } else {
        read_luks1(io.get(), head, enc);
        if (version != 1) {
          enc.notes.push_back("LUKS header version " + std::to_string(version) + " is not 1 or 2");
        }
      }
      return enc;
    }
    if (libbde_check_volume_signature_file_io_handle(io.get(), nullptr) == 1) {
      enc.type = "bitlocker";
      read_bitlocker(io.get(), enc);
      return enc;
    }
    if (libfvde_check_volume_signature_file_io_handle(io.get(), nullptr) == 1 && corestorage_header(head)) {
      read_filevault(io.get(), head, enc);
      return enc;
    }
    return detect_high_entropy(volume, head, rule);
  } catch (const std::exception&) {
    return std::nullopt;  // an unreadable volume is reported by the raw head's scan
  }
}

finding encrypted_volume_finding(const volume_encryption& enc, std::uint32_t volume, const std::string& path) {
  finding f;
  f.path = path;
  f.volume = volume;
  f.source = "volume";
  f.rule = "encrypted_volume";
  // Low: encryption is lawful and common; what matters is that the content
  // was not examined, which the verdict says (incomplete).
  f.level = severity::low;
  f.tags = {"encrypted"};
  f.meta = {{"type", enc.type},
            {"detected_by", enc.detected_by},
            {"cipher", enc.cipher ? nlohmann::json(*enc.cipher) : nlohmann::json(nullptr)},
            {"identifiers", enc.identifiers},
            {"key_protectors", enc.key_protectors},
            {"description", "encrypted volume (" + enc.type + "); its content was not examined"}};
  return f;
}

}  // namespace borderscan::scanner::detail
