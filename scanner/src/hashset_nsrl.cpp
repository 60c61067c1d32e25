// NIST NSRL RDS v3: the SQLite release. Its FILE view (a table in some
// derived releases) lists one row per file of each package:
//   FILE(sha256, sha1, md5, file_name, file_size, package_id)
// with upper-case hex digests (the view applies UPPER() to METADATA's) and
// file_name = METADATA.file_name + '.' + extension. The same digest appears
// once per package that ships it; the writer keeps one entry per digest.
#include <sqlite3.h>

#include <array>
#include <cctype>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "borderscan/scanner/error.hpp"
#include "c_handle.hpp"
#include "hashset_import.hpp"

namespace borderscan::scanner::detail {
namespace {

using db_ptr = std::unique_ptr<sqlite3, c_deleter<&sqlite3_close_v2>>;
using stmt_ptr = std::unique_ptr<sqlite3_stmt, c_deleter<&sqlite3_finalize>>;

// file: URI of a path, so that it can be opened immutable (no lock, no
// journal: the release may sit on read-only media).
std::string file_uri(const std::filesystem::path& path) {
  const std::string abs = std::filesystem::absolute(path).string();
  std::string uri = "file:";
  static constexpr char hex[] = "0123456789ABCDEF";
  for (const char ch : abs) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '/' || c == '-' || c == '_' || c == '.' || c == '~') {
      uri += ch;
    } else {
      uri += '%';
      uri += hex[c >> 4];
      uri += hex[c & 15];
    }
  }
  return uri + "?mode=ro&immutable=1";
}

std::string_view column_text(sqlite3_stmt* st, int col) {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(st, col));
  return p == nullptr ? std::string_view()
                      : std::string_view(p, static_cast<std::size_t>(sqlite3_column_bytes(st, col)));
}

}  // namespace

void import_nsrl_rds3(const std::filesystem::path& input, hashset_writer& w, const hashset_import_options& opt,
                      hashset_import_result& result) {
  const std::string where = input.string();
  if (!std::filesystem::is_regular_file(input)) {
    throw scan_error(scan_errc::rules_invalid, where + ": no such file");
  }
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(file_uri(input).c_str(), &raw, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, nullptr);
  db_ptr db(raw);
  if (rc != SQLITE_OK) {
    throw scan_error(scan_errc::rules_invalid,
                     where + ": cannot open as SQLite: " + (raw != nullptr ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)));
  }
  sqlite3_stmt* st_raw = nullptr;
  if (sqlite3_prepare_v2(db.get(), "SELECT sha256, sha1, md5, file_name FROM FILE", -1, &st_raw, nullptr) !=
      SQLITE_OK) {
    throw scan_error(scan_errc::rules_invalid, where +
                                                   ": not an NSRL RDS v3 database (expected a FILE view or table "
                                                   "with sha256, sha1, md5 and file_name): " +
                                                   sqlite3_errmsg(db.get()));
  }
  stmt_ptr st(st_raw);
  const auto which = opt.which == hashset_import_options::digests::format_default
                         ? hashset_import_options::digests::strongest
                         : opt.which;
  std::array<std::uint8_t, 32> sha256{};
  std::array<std::uint8_t, 20> sha1{};
  std::array<std::uint8_t, 16> md5{};
  int step = SQLITE_ROW;
  while ((step = sqlite3_step(st.get())) == SQLITE_ROW) {
    ++result.records;
    const std::string row = where + ": FILE row " + std::to_string(result.records);
    record_digests d;
    if (parse_digest_field(column_text(st.get(), 0), sha256, "sha256", row)) d.sha256 = sha256;
    if (parse_digest_field(column_text(st.get(), 1), sha1, "sha1", row)) d.sha1 = sha1;
    if (parse_digest_field(column_text(st.get(), 2), md5, "md5", row)) d.md5 = md5;
    if (!add_record(w, d, column_text(st.get(), 3), which)) {
      ++result.skipped;
    }
  }
  if (step != SQLITE_DONE) {
    throw scan_error(scan_errc::rules_invalid, where + ": reading FILE row " + std::to_string(result.records + 1) +
                                                   ": " + sqlite3_errmsg(db.get()));
  }
}

}  // namespace borderscan::scanner::detail
