// Fuzz target: bytes as a hash-set file, through every reader of one:
//  - hashset_db::load, which tells a compact (.bhs) file by its magic and
//    maps it, else parses the text format; then lookups on what it loaded;
//  - the compact header reader and the full re-hash check;
//  - the importer of the format the bytes look like (an SQLite file: NSRL
//    RDS v3; JSON: Project VIC VICS; anything else: text), whose output the
//    scanner must then load and verify.
// Malformed input is a scan_error naming the file, never a crash or another
// exception.
#include <array>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <string_view>

#include "borderscan/scanner/error.hpp"
#include "borderscan/scanner/hashset.hpp"
#include "fuzz_check.hpp"

namespace {

namespace sc = borderscan::scanner;
using borderscan::fuzz::property_failed;

const borderscan::fuzz::scratch_folder& scratch() {
  static const borderscan::fuzz::scratch_folder folder;
  return folder;
}

// Runs `read`; a scan_error is the expected refusal, anything else a finding.
template <class Read>
bool refused_cleanly(const char* reader, Read&& read) {
  try {
    read();
    return false;
  } catch (const sc::scan_error&) {
    return true;
  } catch (const std::exception& e) {
    property_failed(reader, std::string("threw something other than scan_error: ") + e.what());
  }
}

void look_up_everything(const sc::hashset_db& db) {
  std::array<std::uint8_t, 16> md5{};
  std::array<std::uint8_t, 20> sha1{};
  std::array<std::uint8_t, 32> sha256{};
  for (const std::uint8_t fill : {0x00, 0x7f, 0xff}) {
    md5.fill(fill);
    sha1.fill(fill);
    sha256.fill(fill);
    (void)db.lookup(md5, sha1, sha256);
  }
}

sc::hashset_source looks_like(std::string_view bytes) {
  if (bytes.starts_with(std::string_view("SQLite format 3\0", 16))) {
    return sc::hashset_source::nsrl_rds3;
  }
  const auto first = bytes.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && (bytes[first] == '{' || bytes[first] == '[')) {
    return sc::hashset_source::vics;
  }
  return sc::hashset_source::text;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto input = scratch() / "input.set";
  const auto output = scratch() / "imported.bhs";
  borderscan::fuzz::write_bytes(input, {data, size});

  refused_cleanly("hashset_db::load", [&] {
    sc::hashset_db db;
    db.load(input, sc::hashset_kind::known_bad, "fuzz");
    db.seal();
    look_up_everything(db);
  });
  refused_cleanly("read_compact_hashset_info", [&] {
    if (sc::read_compact_hashset_info(input)) {
      (void)sc::verify_compact_hashset(input);
    }
  });

  const auto format = looks_like({reinterpret_cast<const char*>(data), size});
  sc::hashset_import_options options;
  options.name = "fuzz";
  options.memory_bytes = 1 << 20;
  options.temp_dir = scratch().path();
  sc::hashset_import_result imported;
  if (refused_cleanly("import_hashset", [&] { imported = sc::import_hashset(format, input, output, options); })) {
    return 0;
  }
  // What the importer wrote, the scanner loads as it is and finds intact.
  const auto info = sc::read_compact_hashset_info(output);
  BORDERSCAN_FUZZ_CHECK(info.has_value(), "an imported set is a compact file");
  BORDERSCAN_FUZZ_CHECK(info->entries() == imported.written.info.entries(), "the header counts what was written");
  BORDERSCAN_FUZZ_CHECK(sc::verify_compact_hashset(output), "an imported set verifies");
  sc::hashset_db db;
  db.load(output, sc::hashset_kind::known_bad);
  db.seal();
  BORDERSCAN_FUZZ_CHECK(db.size() == info->entries(), "the loaded set holds every entry");
  look_up_everything(db);
  return 0;
}
