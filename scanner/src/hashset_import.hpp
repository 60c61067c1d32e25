#pragma once
// Internal to the importers (borderscan::hashset_import): one function per
// source format, each feeding a hashset_writer.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string_view>

#include "borderscan/scanner/hashset.hpp"

namespace borderscan::scanner::detail {

// The digests of one source record, each absent or of its algorithm's size.
struct record_digests {
  std::optional<std::span<const std::uint8_t>> md5, sha1, sha256;
};

// Adds the digests of one record as `which` asks (all, or the strongest).
// Returns whether any was added.
bool add_record(hashset_writer& w, const record_digests& d, std::string_view name,
                hashset_import_options::digests which);

// Parses an optional hex digest field of `bytes` size into out. Empty text
// means absent (returns false); anything else that is not hex of that size
// throws scan_error(rules_invalid) with `where` + the field's name.
bool parse_digest_field(std::string_view text, std::span<std::uint8_t> out, const char* field,
                        const std::string& where);

void import_nsrl_rds3(const std::filesystem::path& input, hashset_writer& w, const hashset_import_options& opt,
                      hashset_import_result& result);
void import_vics(const std::filesystem::path& input, hashset_writer& w, const hashset_import_options& opt,
                 hashset_import_result& result);

}  // namespace borderscan::scanner::detail
