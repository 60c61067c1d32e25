// Importers into compact hash sets, on files the tests build themselves: an
// NSRL RDS v3 SQLite database with the release's own schema (METADATA,
// PACKAGE_OBJECT and the FILE view over them), Project VIC VICS JSON in its
// "#Media" and "#Cases" shapes, and text.
#include "borderscan/scanner/hashset.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <array>
#include <fstream>
#include <string>
#include <vector>

#include "borderscan/scanner/error.hpp"
#include "borderscan/scanner/text.hpp"
#include "support/test_support.hpp"

namespace sc = borderscan::scanner;
namespace fs = std::filesystem;
using borderscan::test::scratch_dir;

namespace {

template <std::size_t N>
std::array<std::uint8_t, N> digest(const std::string& hex) {
  std::array<std::uint8_t, N> out{};
  EXPECT_TRUE(sc::from_hex(hex, out)) << hex;
  return out;
}

const auto no_md5 = digest<16>(std::string(32, '0'));
const auto no_sha1 = digest<20>(std::string(40, '0'));
const auto no_sha256 = digest<32>(std::string(64, '0'));

// The tables and the view of the RDS v3 release that the FILE view reads
// (the release's DDL, other tables left out).
constexpr const char* rds3_schema = R"sql(
CREATE TABLE PACKAGE_OBJECT (
	package_object_id	INTEGER	UNIQUE	NOT NULL,
	package_id	INTEGER		NOT NULL,
	object_id		INTEGER	UNIQUE	NOT NULL,
	CONSTRAINT PK_PACKAGE_OBJECT__PACKAGE_OBJECT_ID PRIMARY KEY (package_object_id)
);
CREATE TABLE METADATA (
	metadata_id	NUMERIC	UNIQUE			NOT NULL,
	object_id		INTEGER,
	key_hash		VARCHAR				NOT NULL,
	image_hash	VARCHAR,
	path		VARCHAR				NOT NULL,
	path_b64		VARCHAR,
	path_coding	VARCHAR,
	file_name		VARCHAR				NOT NULL,
	file_name_b64	VARCHAR,
	file_name_coding	VARCHAR,
	extension		VARCHAR	DEFAULT ''		NOT NULL,
	extension_b64	VARCHAR,
	extension_coding	VARCHAR,
	bytes		INTEGER				NOT NULL,
	mtime		TIMESTAMP,
	used_in_rds	TIMESTAMP,
	update_date	TIMESTAMP	DEFAULT CURRENT_TIMESTAMP	NOT NULL,
	recursion_level	INTEGER,
	extractee_id	INTEGER	DEFAULT 0		,
	crc32	VARCHAR	NOT NULL,
	md5		VARCHAR	NOT NULL,
	sha1	VARCHAR	NOT NULL,
	sha256	VARCHAR	NOT NULL,
	CONSTRAINT PK_METADATA__METADATA_ID PRIMARY KEY (metadata_id),
	CONSTRAINT FK_METADATA__EXTRACTEE_ID FOREIGN KEY (extractee_id) REFERENCES METADATA (metadata_id),
	CONSTRAINT FK_METADATA__OBJECT_ID FOREIGN KEY (object_id) REFERENCES PACKAGE_OBJECT (object_id)
);
CREATE VIEW FILE AS
    SELECT
        UPPER(md.sha256) AS sha256,
        UPPER(md.sha1) AS sha1,
        UPPER(md.md5) AS md5,
        CASE md.extension
	        WHEN ''
                THEN md.file_name
                ELSE md.file_name||'.'||md.extension
            END AS file_name,
        md.bytes AS file_size,
        po.package_id
    FROM
        METADATA AS md,
        PACKAGE_OBJECT AS po
    WHERE
        md.object_id = po.object_id;
)sql";

struct rds_row {
  std::string sha256, sha1, md5, name, extension;
  int package;
};

void exec(sqlite3* db, const std::string& sql) {
  char* err = nullptr;
  ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
  sqlite3_free(err);
}

// Writes an RDS v3 database holding rows (lower-case hex, as METADATA keeps it).
void make_rds3(const fs::path& file, const std::vector<rds_row>& rows) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
  exec(db, rds3_schema);
  sqlite3_stmt* po = nullptr;
  sqlite3_stmt* md = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "INSERT INTO PACKAGE_OBJECT VALUES (?, ?, ?)", -1, &po, nullptr), SQLITE_OK);
  ASSERT_EQ(
      sqlite3_prepare_v2(db,
                         "INSERT INTO METADATA (metadata_id, object_id, key_hash, path, file_name, extension, "
                         "bytes, crc32, md5, sha1, sha256) VALUES (?, ?, 'k', '/p', ?, ?, 1, '00000000', ?, ?, ?)",
                         -1, &md, nullptr),
      SQLITE_OK);
  int id = 0;
  for (const auto& r : rows) {
    ++id;
    sqlite3_bind_int(po, 1, id);
    sqlite3_bind_int(po, 2, r.package);
    sqlite3_bind_int(po, 3, id);
    ASSERT_EQ(sqlite3_step(po), SQLITE_DONE);
    sqlite3_reset(po);
    sqlite3_bind_int(md, 1, id);
    sqlite3_bind_int(md, 2, id);
    sqlite3_bind_text(md, 3, r.name.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(md, 4, r.extension.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(md, 5, r.md5.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(md, 6, r.sha1.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(md, 7, r.sha256.c_str(), -1, SQLITE_TRANSIENT);
    ASSERT_EQ(sqlite3_step(md), SQLITE_DONE);
    sqlite3_reset(md);
  }
  sqlite3_finalize(po);
  sqlite3_finalize(md);
  sqlite3_close(db);
}

const std::vector<rds_row> rds_rows = {
    {"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "da39a3ee5e6b4b0d3255bfef95601890afd80709",
     "d41d8cd98f00b204e9800998ecf8427e", "empty", "txt", 10},
    // The same file in a second package, under another name: one entry.
    {"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "da39a3ee5e6b4b0d3255bfef95601890afd80709",
     "d41d8cd98f00b204e9800998ecf8427e", "zero-length", "", 11},
    {std::string(64, 'a'), std::string(40, 'b'), std::string(32, 'c'), "kernel32", "dll", 10},
};

sc::hashset_import_result import(sc::hashset_source format, const fs::path& input, const fs::path& output,
                                 sc::hashset_kind kind, sc::hashset_import_options opt = {}) {
  opt.name = output.stem().string();
  opt.kind = kind;
  return sc::import_hashset(format, input, output, opt);
}

void expect_import_error(sc::hashset_source format, const fs::path& input, const std::vector<std::string>& parts) {
  scratch_dir out;
  try {
    import(format, input, out / "x.bhs", sc::hashset_kind::known_bad);
    ADD_FAILURE() << "expected " << input << " to be rejected";
  } catch (const sc::scan_error& e) {
    EXPECT_EQ(e.code(), sc::scan_errc::rules_invalid);
    for (const auto& p : parts) {
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << "'" << p << "' not in: " << e.what();
    }
  }
  EXPECT_FALSE(fs::exists(out / "x.bhs"));
  EXPECT_EQ(std::distance(fs::directory_iterator(out.path()), fs::directory_iterator()), 0)
      << "temporary files left behind";
}

}  // namespace

TEST(HashSetImport, NamesFormatsAsTheCommandLineDoes) {
  for (const char* f : {"text", "nsrl-rds3", "vics"}) {
    ASSERT_TRUE(sc::parse_hashset_source(f)) << f;
    EXPECT_STREQ(sc::to_string(*sc::parse_hashset_source(f)), f);
  }
  EXPECT_FALSE(sc::parse_hashset_source("nsrl"));
}

TEST(HashSetImport, NsrlRds3KeepsTheStrongestDigestOncePerFile) {
  scratch_dir tmp;
  make_rds3(tmp / "RDS_2024.03.1_modern_minimal.db", rds_rows);
  const auto r = import(sc::hashset_source::nsrl_rds3, tmp / "RDS_2024.03.1_modern_minimal.db", tmp / "nsrl.bhs",
                        sc::hashset_kind::known_good);
  EXPECT_EQ(r.records, 3u);
  EXPECT_EQ(r.written.duplicates, 1u);
  EXPECT_EQ(r.written.info.sha256, 2u);
  EXPECT_EQ(r.written.info.sha1, 0u);
  EXPECT_EQ(r.written.info.md5, 0u);
  EXPECT_EQ(r.written.info.source_format, "nsrl-rds3");
  EXPECT_EQ(r.written.info.source_file, "RDS_2024.03.1_modern_minimal.db");

  sc::hashset_db db;
  db.load(tmp / "nsrl.bhs", sc::hashset_kind::known_good);
  auto hits = db.lookup(no_md5, no_sha1, digest<32>(rds_rows[0].sha256));
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].set, "nsrl");
  EXPECT_EQ(hits[0].kind, sc::hashset_kind::known_good);
  EXPECT_EQ(hits[0].entry, "empty.txt");  // the first package's name (row order)
  hits = db.lookup(no_md5, no_sha1, digest<32>(rds_rows[2].sha256));
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].entry, "kernel32.dll");
}

TEST(HashSetImport, NsrlRds3AllDigestsOnRequest) {
  scratch_dir tmp;
  make_rds3(tmp / "rds.db", rds_rows);
  sc::hashset_import_options opt;
  opt.which = sc::hashset_import_options::digests::all;
  const auto r =
      import(sc::hashset_source::nsrl_rds3, tmp / "rds.db", tmp / "nsrl.bhs", sc::hashset_kind::known_good, opt);
  EXPECT_EQ(r.written.info.sha256, 2u);
  EXPECT_EQ(r.written.info.sha1, 2u);
  EXPECT_EQ(r.written.info.md5, 2u);
  sc::hashset_db db;
  db.load(tmp / "nsrl.bhs", sc::hashset_kind::known_good);
  const auto hits = db.lookup(digest<16>(rds_rows[2].md5), digest<20>(rds_rows[2].sha1), no_sha256);
  ASSERT_EQ(hits.size(), 2u);
  EXPECT_EQ(hits[0].algorithm, "sha1");
  EXPECT_EQ(hits[1].algorithm, "md5");
  EXPECT_EQ(hits[1].entry, "kernel32.dll");
}

TEST(HashSetImport, NsrlRds3RejectsAMalformedRowNamingIt) {
  scratch_dir tmp;
  auto rows = rds_rows;
  rows[1].sha1 = "not-a-sha1";
  make_rds3(tmp / "broken.db", rows);
  expect_import_error(sc::hashset_source::nsrl_rds3, tmp / "broken.db", {"broken.db", "FILE row 2", "sha1"});
}

TEST(HashSetImport, NsrlRds3RejectsOtherFiles) {
  scratch_dir tmp;
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((tmp / "other.db").c_str(), &db), SQLITE_OK);
    exec(db, "CREATE TABLE t (x)");
    sqlite3_close(db);
  }
  expect_import_error(sc::hashset_source::nsrl_rds3, tmp / "other.db", {"other.db", "not an NSRL RDS v3 database"});
  std::ofstream(tmp / "NSRLFile.txt") << "\"SHA-1\",\"MD5\",\"CRC32\",\"FileName\"\n";
  expect_import_error(sc::hashset_source::nsrl_rds3, tmp / "NSRLFile.txt", {"NSRLFile.txt"});
}

namespace {

// VICS 1.3, "#Media": records straight in "value"; their MediaFiles carry
// the media's MD5 again (and, here, a different one that must not count).
constexpr const char* vics_media = R"json({
  "odata.metadata": "http://github.com/ICMEC/ProjectVic/DataModels/1.3.xml#Media",
  "value": [
    {
      "odata.id": "Media(1)",
      "MediaFiles": [{"MD5": "ffffffffffffffffffffffffffffffff", "FileName": "a.jpg", "FilePath": "x"}],
      "MediaID": 17, "Category": 1, "MD5": "D41D8CD98F00B204E9800998ECF8427E",
      "SHA1": "DA39A3EE5E6B4B0D3255BFEF95601890AFD80709", "MediaSize": "0", "IsPrecategorized": "true"
    },
    {"MediaID": 18, "Category": 0, "MD5": "0123456789abcdef0123456789abcdef", "SHA1": null},
    {"MediaID": "19", "MD5": "", "SHA1": "", "Comments": "no digest"}
  ]
})json";

// VICS 2.0, "#Cases": cases holding Media arrays.
constexpr const char* vics_cases = R"json({
  "@odata.context": "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/US/$metadata#Cases",
  "value": [{
    "CaseID": "5d0c3a1e-0000-4000-8000-000000000000", "SourceApplicationName": "test",
    "Media": [
      {"MediaID": 501, "Category": 1, "MD5": "d41d8cd98f00b204e9800998ecf8427e",
       "Exifs": [{"MD5": "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee", "PropertyName": "Make", "PropertyValue": "x"}],
       "Series": "s", "Tags": "t", "VictimIdentified": "false"},
      {"MediaID": 502, "Category": 2, "MD5": "00000000000000000000000000000001", "Name": "ignored when an id is given"}
    ]
  }]
})json";

}  // namespace

TEST(HashSetImport, VicsMediaShapeNamesEntriesByMediaIdAndCategory) {
  scratch_dir tmp;
  std::ofstream(tmp / "vics13.json") << vics_media;
  const auto r = import(sc::hashset_source::vics, tmp / "vics13.json", tmp / "vic.bhs", sc::hashset_kind::known_bad);
  EXPECT_EQ(r.records, 3u);
  EXPECT_EQ(r.skipped, 1u);
  EXPECT_EQ(r.written.info.md5, 2u);
  EXPECT_EQ(r.written.info.sha1, 1u);
  sc::hashset_db db;
  db.load(tmp / "vic.bhs", sc::hashset_kind::known_bad);
  const auto hits = db.lookup(digest<16>("d41d8cd98f00b204e9800998ecf8427e"),
                              digest<20>("da39a3ee5e6b4b0d3255bfef95601890afd80709"), no_sha256);
  ASSERT_EQ(hits.size(), 2u);
  EXPECT_EQ(hits[0].algorithm, "sha1");
  EXPECT_EQ(hits[0].entry, "MediaID 17, category 1");
  EXPECT_EQ(hits[1].set, "vic");
  EXPECT_EQ(hits[1].entry, "MediaID 17, category 1");
  EXPECT_TRUE(db.lookup(digest<16>(std::string(32, 'f')), no_sha1, no_sha256).empty())
      << "a MediaFiles MD5 became an entry";
}

TEST(HashSetImport, VicsCasesShapeAndCategoryFilter) {
  scratch_dir tmp;
  std::ofstream(tmp / "vics20.json") << vics_cases;
  auto r = import(sc::hashset_source::vics, tmp / "vics20.json", tmp / "all.bhs", sc::hashset_kind::known_bad);
  EXPECT_EQ(r.records, 3u);  // two media and the case around them
  EXPECT_EQ(r.written.info.md5, 2u);
  sc::hashset_db db;
  db.load(tmp / "all.bhs", sc::hashset_kind::known_bad);
  const auto hits = db.lookup(digest<16>("00000000000000000000000000000001"), no_sha1, no_sha256);
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].entry, "MediaID 502, category 2");
  EXPECT_TRUE(db.lookup(digest<16>(std::string(32, 'e')), no_sha1, no_sha256).empty()) << "an Exif MD5 counted";

  sc::hashset_import_options opt;
  opt.categories = {"1"};
  r = import(sc::hashset_source::vics, tmp / "vics20.json", tmp / "cat1.bhs", sc::hashset_kind::known_bad, opt);
  EXPECT_EQ(r.written.info.md5, 1u);
  EXPECT_EQ(r.skipped, 2u);
}

TEST(HashSetImport, VicsRejectsMalformedInputNamingTheRecord) {
  scratch_dir tmp;
  std::ofstream(tmp / "baddigest.json")
      << R"({"odata.metadata":"x","value":[{"MediaID":1,"MD5":"d41d8cd98f00b204e9800998ecf8427e"},)"
      << R"({"MediaID":2,"MD5":"d41d8cd98f00b204e9800998ecf8427"}]})";
  expect_import_error(sc::hashset_source::vics, tmp / "baddigest.json",
                      {"baddigest.json", "media record 2", "MediaID 2", "MD5"});
  std::ofstream(tmp / "truncated.json") << R"({"odata.metadata":"x","value":[{"MediaID":1,"MD5":"d41d8cd98f00)";
  expect_import_error(sc::hashset_source::vics, tmp / "truncated.json", {"truncated.json", "byte ", "not valid JSON"});
  std::ofstream(tmp / "other.json") << R"({"Media":[{"MD5":"d41d8cd98f00b204e9800998ecf8427e"}]})";
  expect_import_error(sc::hashset_source::vics, tmp / "other.json", {"other.json", "not VICS JSON"});
}

TEST(HashSetImport, TextImportFindsWhatTheTextLoaderFinds) {
  scratch_dir tmp;
  std::ofstream(tmp / "list.txt") << "# field list\n"
                                  << "d41d8cd98f00b204e9800998ecf8427e  empty sample\n"
                                  << "DA39A3EE5E6B4B0D3255BFEF95601890AFD80709\n"
                                  << "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 empty-file\r\n";
  const auto r = import(sc::hashset_source::text, tmp / "list.txt", tmp / "list.bhs", sc::hashset_kind::known_bad);
  EXPECT_EQ(r.records, 3u);
  sc::hashset_db text, compact;
  text.load(tmp / "list.txt", sc::hashset_kind::known_bad, "list");
  text.seal();
  compact.load(tmp / "list.bhs", sc::hashset_kind::known_bad);
  const auto md5 = digest<16>("d41d8cd98f00b204e9800998ecf8427e");
  const auto sha1 = digest<20>("da39a3ee5e6b4b0d3255bfef95601890afd80709");
  const auto sha256 = digest<32>("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  const auto a = text.lookup(md5, sha1, sha256);
  const auto b = compact.lookup(md5, sha1, sha256);
  ASSERT_EQ(a.size(), 3u);
  ASSERT_EQ(b.size(), 3u);
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].set, b[i].set);
    EXPECT_EQ(a[i].entry, b[i].entry);
    EXPECT_EQ(a[i].algorithm, b[i].algorithm);
  }
}

TEST(HashSetImport, TextRejectsAMalformedLineNamingIt) {
  scratch_dir tmp;
  std::ofstream(tmp / "broken.txt") << "d41d8cd98f00b204e9800998ecf8427e\nnot-a-digest\n";
  expect_import_error(sc::hashset_source::text, tmp / "broken.txt", {"broken.txt:2:"});
}
