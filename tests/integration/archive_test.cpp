// Archives and documents inside images, built at test time by real tools
// (zip, 7z, tar, gzip, xz, zstd, mke2fs -d), scanned recursively within limits.
#include <gtest/gtest.h>

#include <fstream>

#include "support/test_support.hpp"

namespace fs = std::filesystem;
using borderscan::test::eicar;
using borderscan::test::find_file;
using borderscan::test::has_finding;
using borderscan::test::run_command;
using borderscan::test::scratch_dir;
using borderscan::test::shell_quote;
using nlohmann::json;

namespace {

void sh(const std::string& cmd) {
  const auto res = run_command(cmd);
  ASSERT_EQ(res.exit_code, 0) << cmd << "\n" << res.err;
}

// Builds an ext4 image holding everything in `content` (a directory).
fs::path make_ext4(const scratch_dir& tmp, const fs::path& content, const std::string& size = "32M") {
  const fs::path img = tmp / "disk.img";
  sh("mke2fs -q -t ext4 -d " + shell_quote(content.string()) + " " + shell_quote(img.string()) + " " + size);
  return img;
}

// Runs a Python script (written to a file in tmp) with `dir` as working directory.
void python(const scratch_dir& tmp, const fs::path& dir, const std::string& script) {
  const fs::path file = tmp / "make_archives.py";
  std::ofstream(file) << script;
  sh("cd " + shell_quote(dir.string()) + " && python3 " + shell_quote(file.string()));
}

// Errors of a report with `code`, or whose message contains `text`.
std::vector<json> errors_where(const json& r, const std::string& code, const std::string& text = "") {
  std::vector<json> out;
  for (const auto& e : r.at("errors")) {
    const std::string message = e.at("message");
    if (e.at("code") == code || (!text.empty() && message.find(text) != std::string::npos)) {
      out.push_back(e);
    }
  }
  return out;
}

// UTF-8 member names: Latin accents, Cyrillic (also as a directory), CJK.
const std::vector<std::string> utf8_member_names = {"résumé.txt", "файл.txt", "日本語.txt", "папка/отчёт.txt"};

// An ext4 image holding names.zip (Python's zipfile sets the zip UTF-8 flag),
// names.tar (pax: UTF-8 path records) and names.7z (UTF-16 names), each with
// utf8_member_names; every member holds "content of <name>\n".
fs::path make_utf8_names_image(const scratch_dir& tmp) {
  const fs::path w = tmp / "work";
  const fs::path content = tmp / "content";
  fs::create_directories(w / "src");
  fs::create_directories(content);
  python(tmp, w, R"py(
import io, os, tarfile, zipfile
names = ["r\u00e9sum\u00e9.txt", "\u0444\u0430\u0439\u043b.txt", "\u65e5\u672c\u8a9e.txt",
         "\u043f\u0430\u043f\u043a\u0430/\u043e\u0442\u0447\u0451\u0442.txt"]
def body(n):
    return ("content of " + n + "\n").encode("utf-8")
with zipfile.ZipFile("names.zip", "w") as z:
    for n in names:
        z.writestr(n, body(n))
with tarfile.open("names.tar", "w", format=tarfile.PAX_FORMAT) as t:
    for n in names:
        info = tarfile.TarInfo(n)
        info.size = len(body(n))
        t.addfile(info, io.BytesIO(body(n)))
for n in names:
    path = os.path.join(b"src", n.encode("utf-8"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(body(n))
)py");
  sh("cd " + shell_quote((w / "src").string()) + " && LC_ALL=C.UTF-8 7z a -bd -bso0 -bsp0 ../names.7z *");
  for (const char* f : {"names.zip", "names.tar", "names.7z"}) {
    fs::copy_file(w / f, content / f);
  }
  return make_ext4(tmp, content, "8M");
}

// The members of make_utf8_names_image() carry their exact names, and no
// name was lost to a charset conversion.
void expect_utf8_names_kept(const json& r) {
  for (const char* archive : {"names.zip", "names.tar", "names.7z"}) {
    for (const auto& name : utf8_member_names) {
      const std::string path = std::string("/") + archive + "!" + name;
      const json* member = find_file(r, 0, path);
      if (member == nullptr) {
        ADD_FAILURE() << path << " missing; members:\n" << r.at("files").dump(1).substr(0, 4000);
        continue;
      }
      EXPECT_EQ(member->at("size"), std::string("content of " + name + "\n").size()) << path;
      EXPECT_EQ(member->at("container"), std::string("/") + archive);
    }
    EXPECT_EQ(find_file(r, 0, std::string("/") + archive + "!data"), nullptr) << archive;
  }
  EXPECT_TRUE(errors_where(r, "archive_member_unnamed", "converted").empty()) << r.at("errors").dump(2);
  EXPECT_TRUE(errors_where(r, "archive_warning").empty()) << r.at("errors").dump(2);
}

bool limit_hit(const json& r, const std::string& limit) {
  for (const auto& l : r.at("limits_hit")) {
    if (l.at("limit") == limit) return true;
  }
  return false;
}

}  // namespace

TEST(Archives, FindsEicarThreeLevelsDownWithTheFullPath) {
  scratch_dir tmp;
  const fs::path w = tmp / "work";
  fs::create_directories(w / "inner");
  fs::create_directories(tmp / "content" / "archive");
  std::ofstream(w / "inner" / "test.com") << eicar();
  std::ofstream(w / "readme.txt") << "hello\n";
  const std::string q = shell_quote(w.string());
  sh("cd " + q + " && zip -q -r bundle.zip inner readme.txt");
  sh("cd " + q + " && 7z a -bd -bso0 -bsp0 middle.7z bundle.zip");
  sh("cd " + q + " && tar cf outer.tar middle.7z && xz -k outer.tar && zstd -q -k outer.tar && gzip -k outer.tar");
  for (const char* f : {"outer.tar.xz", "outer.tar.zst", "outer.tar.gz"}) {
    fs::copy_file(w / f, tmp / "content" / "archive" / f);
  }
  const json r = borderscan::test::scan_image(make_ext4(tmp, tmp / "content"));
  EXPECT_EQ(r.at("verdict"), "flagged");
  for (const char* outer : {"outer.tar.xz", "outer.tar.zst", "outer.tar.gz"}) {
    const std::string path = std::string("/archive/") + outer + "!middle.7z!bundle.zip!inner/test.com";
    const json* hit = find_file(r, 0, path);
    ASSERT_NE(hit, nullptr) << path;
    EXPECT_TRUE(has_finding(*hit, "EICAR_Test_File")) << path;
    EXPECT_EQ(hit->at("depth"), 3);
    EXPECT_EQ(hit->at("container"), std::string("/archive/") + outer + "!middle.7z!bundle.zip");
    EXPECT_EQ(hit->at("sha256"), "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f");
    bool top_level = false;
    for (const auto& f : r.at("findings")) {
      top_level = top_level || (f.at("path") == path && f.at("rule") == "EICAR_Test_File");
    }
    EXPECT_TRUE(top_level) << "the finding carries the full ! path";
  }
}

TEST(Archives, CompressedSingleFileIsExpanded) {
  scratch_dir tmp;
  fs::create_directories(tmp / "content");
  std::ofstream(tmp / "content" / "note.txt") << eicar();
  sh("cd " + shell_quote((tmp / "content").string()) + " && gzip note.txt");
  const json r = borderscan::test::scan_image(make_ext4(tmp, tmp / "content", "8M"));
  const json* inner = find_file(r, 0, "/note.txt.gz!note.txt");
  ASSERT_NE(inner, nullptr);
  EXPECT_EQ(inner->at("size"), 68);
  EXPECT_TRUE(has_finding(*inner, "EICAR_Test_File"));
}

TEST(Archives, ZipBombIsDetectedAndNotExpanded) {
  scratch_dir tmp;
  const fs::path w = tmp / "work";
  fs::create_directories(w);
  fs::create_directories(tmp / "content");
  // Highly compressible members, and a second layer of the same.
  sh("cd " + shell_quote(w.string()) +
     " && head -c 50M /dev/zero > src.bin && for i in 1 2 3 4 5 6 7 8; do cp src.bin z$i.bin; done"
     " && zip -q -9 layer1.zip z*.bin && rm z*.bin src.bin"
     " && for i in 1 2 3 4; do cp layer1.zip l$i.zip; done && zip -q -9 bomb.zip l*.zip");
  fs::copy_file(w / "bomb.zip", tmp / "content" / "bomb.zip");
  std::ofstream(tmp / "content" / "innocent.txt") << "still scanned\n";
  const json r = borderscan::test::scan_image(make_ext4(tmp, tmp / "content", "16M"));
  bool bomb = false;
  for (const auto& f : r.at("findings")) {
    bomb = bomb || (f.at("rule") == "archive_bomb" && f.at("source") == "limit" && f.at("severity") == "high");
  }
  EXPECT_TRUE(bomb) << r.at("findings").dump(2);
  EXPECT_TRUE(limit_hit(r, "max_expansion_ratio"));
  EXPECT_EQ(r.at("verdict"), "flagged");
  const json* innocent = find_file(r, 0, "/innocent.txt");
  ASSERT_NE(innocent, nullptr);
  EXPECT_TRUE(innocent->at("content_complete").get<bool>());
  std::uint64_t expanded = 0;
  for (const auto& f : r.at("files")) {
    if (f.at("depth").get<int>() > 0) expanded += f.at("bytes_read").get<std::uint64_t>();
  }
  EXPECT_LT(expanded, 512ull << 20) << "expansion must stop near the ratio, not inflate 1.6 GB";
}

TEST(Archives, EncryptedZipIsAFindingListingMembers) {
  scratch_dir tmp;
  fs::create_directories(tmp / "content");
  std::ofstream(tmp / "secret.txt") << "the plan\n";
  sh("cd " + shell_quote(tmp.path().string()) + " && zip -q -P hunter2 content/locked.zip secret.txt");
  const json r = borderscan::test::scan_image(make_ext4(tmp, tmp / "content", "8M"));
  const json* zip = find_file(r, 0, "/locked.zip");
  ASSERT_NE(zip, nullptr);
  bool found = false;
  for (const auto& f : zip->at("findings")) {
    if (f.at("rule") == "encrypted_archive") {
      found = true;
      EXPECT_EQ(f.at("severity"), "medium");
      EXPECT_EQ(f.at("meta").at("members"), json::array({"secret.txt"}));
    }
  }
  EXPECT_TRUE(found);
  const json* member = find_file(r, 0, "/locked.zip!secret.txt");
  ASSERT_NE(member, nullptr);
  EXPECT_TRUE(member->at("skipped").is_string());
}

TEST(Archives, MacroDocumentFiresTheMacroRule) {
  scratch_dir tmp;
  const fs::path d = tmp / "doc";
  fs::create_directories(d / "word");
  fs::create_directories(d / "_rels");
  fs::create_directories(tmp / "content");
  std::ofstream(d / "[Content_Types].xml")
      << "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Types "
         "xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\"><Default Extension=\"bin\" "
         "ContentType=\"application/vnd.ms-office.vbaProject\"/><Override PartName=\"/word/document.xml\" "
         "ContentType=\"application/vnd.ms-word.document.macroEnabled.main+xml\"/></Types>";
  std::ofstream(d / "_rels" / ".rels") << "<?xml version=\"1.0\"?><Relationships/>";
  std::ofstream(d / "word" / "document.xml") << "<?xml version=\"1.0\"?><w:document/>";
  {
    // A minimal OLE2 compound file header followed by VBA project stream names.
    std::ofstream vba(d / "word" / "vbaProject.bin", std::ios::binary);
    const unsigned char ole[] = {0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1};
    vba.write(reinterpret_cast<const char*>(ole), sizeof ole);
    std::string body(504, '\0');
    vba << body;
    const std::u16string stream = u"_VBA_PROJECT";
    vba.write(reinterpret_cast<const char*>(stream.data()), static_cast<std::streamsize>(stream.size() * 2));
    vba << std::string(64, '\0')
        << "Attribute VB_Name = \"ThisDocument\"\r\nSub AutoOpen()\r\nShell \"cmd\"\r\nEnd Sub\r\n";
  }
  sh("cd " + shell_quote(d.string()) + " && zip -q -r -X " + shell_quote((tmp / "content" / "invoice.docm").string()) +
     " '[Content_Types].xml' _rels word");
  const json r = borderscan::test::scan_image(make_ext4(tmp, tmp / "content", "8M"));
  const json* member = find_file(r, 0, "/invoice.docm!word/vbaProject.bin");
  ASSERT_NE(member, nullptr) << "the document's members are scanned";
  bool macro = false;
  for (const auto& f : member->at("findings")) {
    for (const auto& t : f.at("tags")) macro = macro || t == "macro";
  }
  EXPECT_TRUE(macro) << member->dump(2);
  EXPECT_EQ(r.at("verdict"), "flagged");
}

TEST(Archives, DepthMemberAndSizeLimitsAreRecordedAndScanningGoesOn) {
  scratch_dir tmp;
  const fs::path w = tmp / "work";
  fs::create_directories(w);
  fs::create_directories(tmp / "content");
  const std::string q = shell_quote(w.string());
  sh("cd " + q + " && echo deep > deep.txt && zip -q d1.zip deep.txt && zip -q d2.zip d1.zip && zip -q d3.zip d2.zip");
  sh("cd " + q + " && for i in $(seq 1 30); do echo $i > m$i.txt; done && zip -q many.zip m*.txt");
  sh("cd " + q + " && head -c 300000 /dev/urandom > big.bin && zip -q -0 big.zip big.bin");
  for (const char* f : {"d3.zip", "many.zip", "big.zip"}) {
    fs::copy_file(w / f, tmp / "content" / f);
  }
  std::ofstream(tmp / "content" / "plain.txt") << "plain\n";
  borderscan::scanner::limits lim;
  lim.max_depth = 2;
  lim.max_members = 10;
  lim.max_member_bytes = 100000;
  const json r = borderscan::test::scan_image(make_ext4(tmp, tmp / "content", "8M"), lim);
  EXPECT_TRUE(limit_hit(r, "max_depth"));
  EXPECT_TRUE(limit_hit(r, "max_members"));
  EXPECT_TRUE(limit_hit(r, "max_member_bytes"));
  EXPECT_EQ(r.at("verdict"), "incomplete");
  EXPECT_NE(find_file(r, 0, "/d3.zip!d2.zip!d1.zip"), nullptr);           // depth 2 listed
  EXPECT_EQ(find_file(r, 0, "/d3.zip!d2.zip!d1.zip!deep.txt"), nullptr);  // depth 3 not opened
  int listed = 0;
  for (const auto& f : r.at("files")) {
    listed += f.at("container") == "/many.zip" ? 1 : 0;
  }
  EXPECT_EQ(listed, 10);
  const json* big = find_file(r, 0, "/big.zip!big.bin");
  ASSERT_NE(big, nullptr);
  EXPECT_TRUE(big->at("skipped").is_string());
  const json* plain = find_file(r, 0, "/plain.txt");
  ASSERT_NE(plain, nullptr);
  EXPECT_TRUE(plain->at("content_complete").get<bool>());
}

TEST(Archives, CorruptArchiveIsAnErrorOnThatFileOnly) {
  scratch_dir tmp;
  fs::create_directories(tmp / "content");
  sh("cd " + shell_quote(tmp.path().string()) +
     " && head -c 200000 /dev/urandom > r.bin && zip -q -0 full.zip r.bin && head -c 100000 full.zip > "
     "content/cut.zip");
  std::ofstream(tmp / "content" / "ok.txt") << "fine\n";
  const json r = borderscan::test::scan_image(make_ext4(tmp, tmp / "content", "8M"));
  bool error_on_zip = false;
  for (const auto& e : r.at("errors")) {
    error_on_zip =
        error_on_zip || (e.at("path").get<std::string>().rfind("/cut.zip", 0) == 0 && e.at("stage") != "walk");
  }
  EXPECT_TRUE(error_on_zip) << r.at("errors").dump(2);
  const json* ok = find_file(r, 0, "/ok.txt");
  ASSERT_NE(ok, nullptr);
  EXPECT_TRUE(ok->at("content_complete").get<bool>());
}

TEST(Archives, DiskImagesStoredAsFilesAreWalked) {
  scratch_dir tmp;
  fs::create_directories(tmp / "content" / "backup");
  fs::copy_file(borderscan::test::fixture_dir() / "fat-simple.img", tmp / "content" / "backup" / "stick.img");
  fs::copy_file(borderscan::test::fixture_dir() / "gpt-two-volumes.img", tmp / "content" / "backup" / "disk.dd");
  const json r = borderscan::test::scan_image(make_ext4(tmp, tmp / "content", "32M"));
  // A bare FAT: its files hang directly off the image's path; its deleted file too.
  const json* deleted = find_file(r, 0, "/backup/stick.img!/_ecret.txt");
  ASSERT_NE(deleted, nullptr) << "the deleted file of the embedded FAT appears with a nested path";
  EXPECT_TRUE(deleted->at("deleted").get<bool>());
  EXPECT_EQ(deleted->at("container"), "/backup/stick.img");
  EXPECT_EQ(deleted->at("depth"), 1);
  EXPECT_EQ(deleted->at("sha256"), "30a92ad805201268c3bd2b04f9da1998d208314be72a8e7145e7f4ad145417fa");
  const json* eicar = find_file(r, 0, "/backup/stick.img!/eicar.com");
  ASSERT_NE(eicar, nullptr);
  EXPECT_TRUE(has_finding(*eicar, "EICAR_Test_File"));
  // A partitioned disk: each volume is named.
  const json* tool = find_file(r, 0, "/backup/disk.dd!vol1/bin/tool.jpg");
  ASSERT_NE(tool, nullptr);
  EXPECT_TRUE(has_finding(*tool, "extension_mismatch"));
  EXPECT_NE(find_file(r, 0, "/backup/disk.dd!vol0/docs/Привет мир.txt"), nullptr);
}

TEST(Archives, CompressedStreamStartingWithZerosIsStillRead) {
  // 1 KiB of zeros looks like the end of an empty tar to libarchive; the
  // payload behind it must still be scanned, and a zero-filled stream of
  // 150 MiB is a bomb, not an empty archive.
  scratch_dir tmp;
  fs::create_directories(tmp / "content");
  {
    std::ofstream payload(tmp / "content" / "hidden.bin", std::ios::binary);
    payload << std::string(4096, '\0') << eicar();
  }
  sh("cd " + shell_quote((tmp / "content").string()) +
     " && gzip hidden.bin && head -c 150M /dev/zero | gzip -1 > zeros.gz");
  const json r = borderscan::test::scan_image(make_ext4(tmp, tmp / "content", "8M"));
  const json* inner = find_file(r, 0, "/hidden.bin.gz!hidden.bin");
  ASSERT_NE(inner, nullptr) << r.at("files").dump(1).substr(0, 3000);
  EXPECT_EQ(inner->at("size"), 4096 + 68);
  const json* zeros = find_file(r, 0, "/zeros.gz");
  ASSERT_NE(zeros, nullptr);
  EXPECT_TRUE(has_finding(*zeros, "archive_bomb"));
}

TEST(Archives, OpensEveryPackagedFormat) {
  // One EICAR member in each format Debian's tools can write.
  scratch_dir tmp;
  const fs::path w = tmp / "work";
  fs::create_directories(w);
  fs::create_directories(tmp / "content");
  std::ofstream(w / "payload.com") << eicar();
  const std::string q = shell_quote(w.string());
  sh("cd " + q +
     " && echo payload.com | cpio --quiet -o -H newc > a.cpio && ar rc a.ar payload.com"
     " && gcab -c a.cab payload.com && genisoimage -quiet -o a.iso payload.com"
     " && tar cf a.tar payload.com && bzip2 -k a.tar && lz4 -q a.tar a.tar.lz4 && 7z a -bd -bso0 -bsp0 a.7z payload.com"
     " && cp payload.com b.com && bzip2 b.com");
  const std::vector<std::string> formats = {"a.cpio", "a.ar",      "a.cab",     "a.iso",
                                            "a.7z",   "a.tar.bz2", "a.tar.lz4", "b.com.bz2"};
  for (const auto& f : formats) {
    fs::copy_file(w / f, tmp / "content" / f);
  }
  const json r = borderscan::test::scan_image(make_ext4(tmp, tmp / "content", "8M"));
  for (const auto& f : formats) {
    bool found = false;
    for (const auto& file : r.at("files")) {
      const std::string p = file.at("path");
      if (p.rfind("/" + f + "!", 0) == 0 && has_finding(file, "EICAR_Test_File")) {
        found = true;
      }
    }
    EXPECT_TRUE(found) << "no EICAR member found inside " << f;
  }
}

// libarchive converts member names to the thread's LC_CTYPE; in the "C" locale
// (this test binary never calls setlocale) every UTF-8 name used to be lost as
// "data" with a "cannot be converted" warning.
TEST(Archives, Utf8MemberNamesAreKeptWhateverTheProcessLocale) {
  scratch_dir tmp;
  const json r = borderscan::test::scan_image(make_utf8_names_image(tmp));
  expect_utf8_names_kept(r);
  EXPECT_EQ(r.at("verdict"), "clean");
}

TEST(Archives, CliKeepsUtf8MemberNamesUnderACLocaleEnvironment) {
  scratch_dir tmp;
  const fs::path image = make_utf8_names_image(tmp);
  const auto res =
      run_command("env LC_ALL=C LANG=C " + shell_quote(BORDERSCAN_CLI) + " scan -q " + shell_quote(image.string()));
  ASSERT_EQ(res.exit_code, 0) << res.err;
  const json r = json::parse(res.out);
  borderscan::test::validate_report(r);
  expect_utf8_names_kept(r);
}

// Stored names that are not UTF-8 (latin-1 bytes in a GNU tar, and in a zip
// without the UTF-8 flag) keep their bytes, escaped as \xNN, and the report
// is still valid UTF-8 JSON.
TEST(Archives, NonUtf8MemberNamesAreEscapedIntoValidUtf8) {
  scratch_dir tmp;
  const fs::path w = tmp / "work";
  fs::create_directories(w);
  fs::create_directories(tmp / "content");
  python(tmp, w, R"py(
import io, tarfile, zipfile
with tarfile.open("latin1.tar", "w", format=tarfile.GNU_FORMAT, encoding="latin-1") as t:
    for n in ["r\u00e9sum\u00e9.txt", "na\u00efve/caf\u00e9.txt"]:
        info = tarfile.TarInfo(n)
        info.size = 6
        t.addfile(info, io.BytesIO(b"latin\n"))
with zipfile.ZipFile("latin1.zip", "w") as z:
    z.writestr("rXsumX.txt", b"latin\n")  # ASCII, so no UTF-8 flag; then patched to latin-1
data = open("latin1.zip", "rb").read()
assert data.count(b"rXsumX") == 2
open("latin1.zip", "wb").write(data.replace(b"rXsumX", b"r\xe9sum\xe9"))
)py");
  for (const char* f : {"latin1.tar", "latin1.zip"}) {
    fs::copy_file(w / f, tmp / "content" / f);
  }
  const fs::path image = make_ext4(tmp, tmp / "content", "8M");
  const json r = borderscan::test::scan_image(image);
  EXPECT_NO_THROW((void)r.dump()) << "the report must be valid UTF-8";
  for (const char* path :
       {R"(/latin1.tar!r\xe9sum\xe9.txt)", R"(/latin1.tar!na\xefve/caf\xe9.txt)", R"(/latin1.zip!r\xe9sum\xe9.txt)"}) {
    const json* member = find_file(r, 0, path);
    ASSERT_NE(member, nullptr) << path << " missing; members:\n" << r.at("files").dump(1).substr(0, 4000);
    EXPECT_EQ(member->at("size"), 6) << path;
  }
  EXPECT_TRUE(errors_where(r, "archive_member_unnamed").empty()) << r.at("errors").dump(2);

  // The CLI's output parses: nlohmann's parser rejects invalid UTF-8.
  const auto res = run_command(shell_quote(BORDERSCAN_CLI) + " scan -q " + shell_quote(image.string()));
  ASSERT_EQ(res.exit_code, 0) << res.err;
  json cli_report;
  ASSERT_NO_THROW(cli_report = json::parse(res.out));
  EXPECT_NE(find_file(cli_report, 0, R"(/latin1.tar!r\xe9sum\xe9.txt)"), nullptr);
}

// A zip whose UTF-8 flag is set on names that are not UTF-8: libarchive keeps
// no form of them. Each gets its own synthetic name from its ordinal (they
// used to share "data"), its content is still scanned, and the warnings stay.
TEST(Archives, MembersWithoutAReadableNameGetDistinctSyntheticNames) {
  scratch_dir tmp;
  const fs::path w = tmp / "work";
  fs::create_directories(w);
  fs::create_directories(tmp / "content");
  python(tmp, w, R"py(
import zipfile
with zipfile.ZipFile("bad-names.zip", "w") as z:
    z.writestr("AA\u00e91.txt", b"one")  # non-ASCII, so the UTF-8 flag is set
    z.writestr("ok.txt", b"fine")
    z.writestr("AA\u00e92.txt", b"two")
data = open("bad-names.zip", "rb").read()
assert data.count("AA\u00e9".encode()) == 4
open("bad-names.zip", "wb").write(data.replace("AA\u00e9".encode(), b"A\xff\xfe\xfd"))
)py");
  fs::copy_file(w / "bad-names.zip", tmp / "content" / "bad-names.zip");
  const json r = borderscan::test::scan_image(make_ext4(tmp, tmp / "content", "8M"));
  EXPECT_NO_THROW((void)r.dump());
  for (const auto& [path, sha256] :
       {std::pair{"/bad-names.zip!member-1", "7692c3ad3540bb803c020b3aee66cd8887123234ea0c6e7143c0add73ff431ed"},
        std::pair{"/bad-names.zip!member-3", "3fc4ccfe745870e2c0d99f71f30ff0656c8dedd41cc1d7d3d376b0dbe685e2f3"}}) {
    const json* member = find_file(r, 0, path);
    ASSERT_NE(member, nullptr) << path << " missing; members:\n" << r.at("files").dump(1);
    EXPECT_EQ(member->at("sha256"), sha256) << path;
  }
  EXPECT_NE(find_file(r, 0, "/bad-names.zip!ok.txt"), nullptr);
  EXPECT_EQ(find_file(r, 0, "/bad-names.zip!data"), nullptr);
  std::vector<std::string> unnamed_paths;
  for (const auto& e : errors_where(r, "archive_member_unnamed")) {
    unnamed_paths.push_back(e.at("path"));
    EXPECT_FALSE(e.at("affects_verdict").get<bool>());
    EXPECT_NE(e.at("message").get<std::string>().find("cannot be converted"), std::string::npos) << e.dump();
  }
  EXPECT_EQ(unnamed_paths, (std::vector<std::string>{"/bad-names.zip!member-1", "/bad-names.zip!member-3"}));
  // libarchive's own warnings are kept too: reports are evidence.
  const auto warnings = errors_where(r, "archive_warning");
  EXPECT_EQ(warnings.size(), 2u) << r.at("errors").dump(2);
  for (const auto& e : warnings) {
    EXPECT_EQ(e.at("path"), "/bad-names.zip");
  }
}
