// Hash sets from the field, end to end with the real binaries: a FAT image
// made by mkfs.vfat and mcopy; an NSRL RDS v3 database listing one of its
// files and a Project VIC VICS JSON listing another, both imported with
// `borderscand hashset import`; a scan with `borderscan scan --hashset
// SET.bhs:KIND`; the report names the VICS set and entry on the flagged
// file and marks the NSRL one known-good.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <string>

#include "borderscan/scanner/digest.hpp"
#include "support/test_support.hpp"

namespace fs = std::filesystem;
using borderscan::test::run_command;
using borderscan::test::scratch_dir;
using borderscan::test::shell_quote;
using nlohmann::json;

namespace {

std::string daemon() {
  return shell_quote(BORDERSCAND);
}

std::string cli() {
  return shell_quote(BORDERSCAN_CLI);
}

std::string hex_digest(const EVP_MD* md, const std::string& data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
  unsigned int len = 0;
  EXPECT_EQ(EVP_Digest(data.data(), data.size(), out.data(), &len, md, nullptr), 1);
  return borderscan::scanner::to_hex(std::span<const std::uint8_t>(out.data(), len));
}

std::string upper(std::string s) {
  for (char& c : s) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
  }
  return s;
}

// Content that no shipped rule flags: only the hash sets decide.
const std::string good_content = "Reference library DLL stand-in: " + std::string(3000, 'g') + "\n";
const std::string bad_content = "Stand-in for a known-bad picture: " + std::string(5000, 'b') + "\n";
const std::string other_content = "A file no set lists.\n";

void sql(sqlite3* db, const std::string& text) {
  char* err = nullptr;
  ASSERT_EQ(sqlite3_exec(db, text.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
  sqlite3_free(err);
}

// An RDS v3 database (the release's METADATA, PACKAGE_OBJECT and FILE view)
// listing good_content as kernel32.dll among unrelated rows.
void make_rds3(const fs::path& file) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
  sql(db, R"sql(
CREATE TABLE PACKAGE_OBJECT (package_object_id INTEGER UNIQUE NOT NULL, package_id INTEGER NOT NULL,
  object_id INTEGER UNIQUE NOT NULL, PRIMARY KEY (package_object_id));
CREATE TABLE METADATA (metadata_id NUMERIC UNIQUE NOT NULL, object_id INTEGER, key_hash VARCHAR NOT NULL,
  image_hash VARCHAR, path VARCHAR NOT NULL, path_b64 VARCHAR, path_coding VARCHAR, file_name VARCHAR NOT NULL,
  file_name_b64 VARCHAR, file_name_coding VARCHAR, extension VARCHAR DEFAULT '' NOT NULL, extension_b64 VARCHAR,
  extension_coding VARCHAR, bytes INTEGER NOT NULL, mtime TIMESTAMP, used_in_rds TIMESTAMP,
  update_date TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL, recursion_level INTEGER, extractee_id INTEGER DEFAULT 0,
  crc32 VARCHAR NOT NULL, md5 VARCHAR NOT NULL, sha1 VARCHAR NOT NULL, sha256 VARCHAR NOT NULL,
  PRIMARY KEY (metadata_id));
CREATE VIEW FILE AS SELECT UPPER(md.sha256) AS sha256, UPPER(md.sha1) AS sha1, UPPER(md.md5) AS md5,
  CASE md.extension WHEN '' THEN md.file_name ELSE md.file_name||'.'||md.extension END AS file_name,
  md.bytes AS file_size, po.package_id FROM METADATA AS md, PACKAGE_OBJECT AS po WHERE md.object_id = po.object_id;
)sql");
  int id = 0;
  auto row = [&](const std::string& content, const std::string& name, const std::string& ext) {
    ++id;
    const std::string n = std::to_string(id);
    sql(db, "INSERT INTO PACKAGE_OBJECT VALUES (" + n + ", 7, " + n + ")");
    sql(db,
        "INSERT INTO METADATA (metadata_id, object_id, key_hash, path, file_name, extension, bytes, crc32, md5, "
        "sha1, sha256) VALUES (" +
            n + ", " + n + ", 'k', '/windows/system32', '" + name + "', '" + ext + "', " +
            std::to_string(content.size()) + ", '00000000', '" + hex_digest(EVP_md5(), content) + "', '" +
            hex_digest(EVP_sha1(), content) + "', '" + hex_digest(EVP_sha256(), content) + "')");
  };
  row("unrelated one", "user32", "dll");
  row(good_content, "kernel32", "dll");
  row("unrelated two", "README", "");
  sqlite3_close(db);
}

// VICS 2.0 JSON (cases holding Media) listing bad_content by MD5 and SHA-1.
void make_vics(const fs::path& file) {
  const json doc = {
      {"@odata.context", "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/US/$metadata#Cases"},
      {"value",
       {{{"CaseID", "00000000-0000-4000-8000-000000000001"},
         {"Media",
          {{{"MediaID", 4242},
            {"Category", 1},
            {"MD5", upper(hex_digest(EVP_md5(), bad_content))},
            {"SHA1", upper(hex_digest(EVP_sha1(), bad_content))},
            {"MediaSize", bad_content.size()},
            {"MediaFiles", {{{"FileName", "IMG_0001.JPG"}, {"FilePath", "x"}}}}},
           {{"MediaID", 4243}, {"Category", 2}, {"MD5", std::string(32, '1')}}}}}}}};
  std::ofstream(file) << doc.dump(2);
}

bool have(const char* tool) {
  return run_command(std::string("command -v ") + tool).exit_code == 0;
}

}  // namespace

TEST(HashSetImportEndToEnd, NsrlAndVicsSetsFlagFilesInAFatImage) {
  if (!have("mkfs.vfat") || !have("mcopy")) {
    GTEST_SKIP() << "mkfs.vfat and mcopy are needed (apt-get install dosfstools mtools)";
  }
  scratch_dir tmp;
  const fs::path image = tmp / "device.img";
  std::ofstream(tmp / "good.bin", std::ios::binary) << good_content;
  std::ofstream(tmp / "bad.bin", std::ios::binary) << bad_content;
  std::ofstream(tmp / "other.bin", std::ios::binary) << other_content;
  auto mk = run_command("mkfs.vfat -C " + shell_quote(image.string()) + " 1024 >/dev/null");
  ASSERT_EQ(mk.exit_code, 0) << mk.err;
  // Names that match the (text) content: no extension-mismatch finding muddles the check.
  for (const auto& [src, dst] : {std::pair{"good.bin", "license.txt"}, std::pair{"bad.bin", "holiday.txt"},
                                 std::pair{"other.bin", "notes.txt"}}) {
    const auto cp = run_command("MTOOLS_SKIP_CHECK=1 mcopy -i " + shell_quote(image.string()) + " " +
                                shell_quote((tmp / src).string()) + " ::" + dst);
    ASSERT_EQ(cp.exit_code, 0) << cp.err;
  }

  make_rds3(tmp / "RDS_2024.12.1_modern_minimal.db");
  make_vics(tmp / "vics.json");
  const fs::path data = tmp / "data";
  const auto nsrl = run_command(daemon() + " hashset import --format nsrl-rds3 --kind known-good --name nsrl " +
                                shell_quote((tmp / "RDS_2024.12.1_modern_minimal.db").string()) + " --data-dir " +
                                shell_quote(data.string()));
  ASSERT_EQ(nsrl.exit_code, 0) << nsrl.out << nsrl.err;
  EXPECT_NE(nsrl.out.find("entries: 3 (sha256 3, sha1 0, md5 0)"), std::string::npos) << nsrl.out;
  const auto vics =
      run_command(daemon() + " hashset import --format vics --kind known-bad --name projectvic " +
                  shell_quote((tmp / "vics.json").string()) + " --data-dir " + shell_quote(data.string()));
  ASSERT_EQ(vics.exit_code, 0) << vics.out << vics.err;
  EXPECT_NE(vics.out.find("entries: 3 (sha256 0, sha1 1, md5 2)"), std::string::npos) << vics.out;

  // Importing again under the same name needs --replace.
  const auto again =
      run_command(daemon() + " hashset import --format vics --kind known-bad --name projectvic " +
                  shell_quote((tmp / "vics.json").string()) + " --data-dir " + shell_quote(data.string()));
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("--replace"), std::string::npos) << again.err;

  const auto list = run_command(daemon() + " hashset list --data-dir " + shell_quote(data.string()));
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_NE(list.out.find("nsrl\tknown-good\t3\t0\t0\t"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("projectvic\tknown-bad\t0\t1\t2\t"), std::string::npos) << list.out;
  const auto verify = run_command(daemon() + " hashset verify --data-dir " + shell_quote(data.string()));
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  EXPECT_EQ(fs::status(data / "hashsets").permissions() & fs::perms::all, fs::perms::owner_all);
  EXPECT_EQ(fs::status(data / "hashsets" / "nsrl.bhs").permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);

  const fs::path report_file = tmp / "report.json";
  const auto scan = run_command(cli() + " scan -q -o " + shell_quote(report_file.string()) + " --hashset " +
                                shell_quote((data / "hashsets" / "nsrl.bhs").string() + ":known-good") + " --hashset " +
                                shell_quote((data / "hashsets" / "projectvic.bhs").string() + ":known-bad") + " " +
                                shell_quote(image.string()));
  EXPECT_EQ(scan.exit_code, 1) << scan.err;  // flagged
  std::ifstream in(report_file);
  const json r = json::parse(in);
  borderscan::test::validate_report(r);
  EXPECT_EQ(r.at("verdict"), "flagged");

  const json* bad = borderscan::test::find_file(r, 0, "/holiday.txt");
  ASSERT_NE(bad, nullptr) << r.at("files").dump(1);
  ASSERT_EQ(bad->at("findings").size(), 1u) << bad->dump(1);
  const json& f = bad->at("findings")[0];
  EXPECT_EQ(f.at("source"), "hashset");
  EXPECT_EQ(f.at("namespace"), "projectvic");
  EXPECT_EQ(f.at("rule"), "MediaID 4242, category 1");
  EXPECT_EQ(f.at("meta").at("set"), "projectvic");

  const json* good = borderscan::test::find_file(r, 0, "/license.txt");
  ASSERT_NE(good, nullptr) << r.at("files").dump(1);
  EXPECT_EQ(good->at("known"), json::array({"nsrl"}));
  EXPECT_TRUE(good->at("findings").empty());

  const json* other = borderscan::test::find_file(r, 0, "/notes.txt");
  ASSERT_NE(other, nullptr);
  EXPECT_TRUE(other->at("findings").empty());
  EXPECT_TRUE(other->at("known").empty());

  // The rule set names both sets (beside the shipped ones), by their imported names and sizes.
  std::vector<std::string> sets;
  for (const auto& h : r.at("ruleset").at("hashsets")) {
    sets.push_back(h.at("name").get<std::string>() + ":" + h.at("kind").get<std::string>() + ":" +
                   std::to_string(h.at("entries").get<std::uint64_t>()));
  }
  for (const std::string want : {"nsrl:known-good:3", "projectvic:known-bad:3"}) {
    EXPECT_NE(std::find(sets.begin(), sets.end(), want), sets.end()) << want << " not in the report's rule set";
  }

  // The kind given must be the kind imported: a mistake is a clear error, not a silent verdict.
  const auto wrong = run_command(cli() + " scan -q --hashset " +
                                 shell_quote((data / "hashsets" / "nsrl.bhs").string() + ":known-bad") + " " +
                                 shell_quote(image.string()));
  EXPECT_EQ(wrong.exit_code, 2);
  EXPECT_NE(wrong.err.find(":known-good"), std::string::npos) << wrong.err;
}

TEST(HashSetImportEndToEnd, RejectsMalformedInputAndBadArguments) {
  scratch_dir tmp;
  const fs::path data = tmp / "data";
  std::ofstream(tmp / "bad.json") << R"({"odata.metadata":"x","value":[{"MediaID":9,"MD5":"xyz"}]})";
  const auto bad = run_command(daemon() + " hashset import --format vics --kind known-bad --name v " +
                               shell_quote((tmp / "bad.json").string()) + " --data-dir " + shell_quote(data.string()));
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("bad.json: media record 1 (MediaID 9): MD5"), std::string::npos) << bad.err;
  EXPECT_FALSE(fs::exists(data / "hashsets" / "v.bhs"));

  const auto name = run_command(daemon() + " hashset import --format vics --kind known-bad --name ../x " +
                                shell_quote((tmp / "bad.json").string()) + " --data-dir " + shell_quote(data.string()));
  EXPECT_EQ(name.exit_code, 2);
  const auto format =
      run_command(daemon() + " hashset import --format nsrl --kind known-good --name n " +
                  shell_quote((tmp / "bad.json").string()) + " --data-dir " + shell_quote(data.string()));
  EXPECT_EQ(format.exit_code, 2);
  EXPECT_NE(format.err.find("nsrl-rds3"), std::string::npos) << format.err;
}
