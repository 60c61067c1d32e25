#pragma once
// Encrypted volumes where no file system opens: BitLocker (libbde), LUKS 1
// (libluksde and its binary header) and LUKS 2 (its JSON metadata area),
// FileVault 2 / CoreStorage (libfvde), and volumes of near-random bytes with
// no known header (VeraCrypt/TrueCrypt-like). Nothing is unlocked: only what
// the headers say without a key is reported, and the content stays unexamined.

#include <cstdint>
#include <optional>
#include <string>

#include "borderscan/scanner/object_scanner.hpp"
#include "borderscan/scanner/report.hpp"

namespace borderscan::scanner::detail {

// The high-entropy rule (see README "What it reads"): at least this much of
// the volume sampled, every sampled block above the entropy floor, the byte
// histogram of the whole sample consistent with uniform bytes, and libmagic
// naming no format at the head (compressed streams have headers: xz, gzip,
// zstd, bzip2, 7z, zip are named and never reported).
struct entropy_rule {
  std::uint64_t min_sample_bytes = 1 << 20;  // smaller volumes are not judged
  std::uint64_t max_sample_bytes = 8 << 20;  // spread over the volume in blocks
  std::uint64_t block_bytes = 256 << 10;
  double min_block_entropy = 7.99;  // bits per byte; random data gives ~7.9993 per 256 KiB
  // Pearson's chi-square over 256 byte values (255 degrees of freedom):
  // uniform random bytes stay below 350 except about once in 10^5 volumes.
  double max_chi_square = 350.0;
};

// Recognises an encrypted volume from its first bytes and, for the entropy
// rule, from blocks sampled across it. `volume` reads the volume from its
// start. Read errors end the look (nothing recognised).
std::optional<volume_encryption> detect_volume_encryption(content_source& volume, const entropy_rule& rule = {});

// The report's finding for it: source "volume", rule "encrypted_volume".
finding encrypted_volume_finding(const volume_encryption& enc, std::uint32_t volume, const std::string& path);

// The verdict reason of a report that holds such a finding and nothing that flags it.
inline constexpr std::string_view encrypted_volume_reason = "encrypted volume not examined";

}  // namespace borderscan::scanner::detail
