// Evidence hand-over (evidence/evidence_zip.hpp, evidence/preview.hpp): the
// AES-256 zip a reviewer downloads with the password "infected", checked by
// decrypting it again (libarchive, and 7-Zip or bsdtar when installed), and
// the bounded hex/text preview of hostile bytes.
#include "borderscan/evidence/evidence_zip.hpp"
#include "borderscan/evidence/preview.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <locale.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "support/test_support.hpp"

namespace borderscan::evidence {
namespace {

namespace fs = std::filesystem;

constexpr std::int64_t sample_mtime = 1'700'000'000;  // 2023-11-14T22:13:20Z

fs::path write_file(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
  return p;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// EICAR, then every byte value: text an antivirus knows, and binary.
std::string eicar_and_binary() {
  std::string s = test::eicar();
  for (int b = 0; b < 256; ++b) s += static_cast<char>(b);
  return s;
}

std::string random_bytes(std::size_t n) {
  std::mt19937_64 rng(20240229);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

// Writes the zip to a file and returns its bytes.
std::string zip_to_file(const fs::path& zip, std::string_view member, const fs::path& content,
                        std::string_view password = "infected") {
  const int fd = ::open(zip.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "open " + zip.string());
  try {
    write_encrypted_zip(fd, member, content, password, sample_mtime);
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
  return slurp(zip);
}

struct unzipped {
  bool ok = false;  // one member, read to its end without any error or warning
  std::string name, data, error;
  std::int64_t mtime = 0;
  bool encrypted = false;
};

unzipped unzip(const std::string& zip_bytes, const char* passphrase) {
  unzipped r;
  archive* a = archive_read_new();
  archive_read_support_format_zip(a);
  if (passphrase != nullptr) archive_read_add_passphrase(a, passphrase);
  archive_entry* e = nullptr;
  if (archive_read_open_memory(a, zip_bytes.data(), zip_bytes.size()) != ARCHIVE_OK ||
      archive_read_next_header(a, &e) != ARCHIVE_OK) {
    r.error = archive_error_string(a) != nullptr ? archive_error_string(a) : "?";
    archive_read_free(a);
    return r;
  }
  r.name = archive_entry_pathname_utf8(e) != nullptr ? archive_entry_pathname_utf8(e) : "";
  r.mtime = archive_entry_mtime(e);
  r.encrypted = archive_entry_is_data_encrypted(e) != 0;
  char buf[16384];
  la_ssize_t n = 0;
  while ((n = archive_read_data(a, buf, sizeof buf)) > 0) r.data.append(buf, static_cast<std::size_t>(n));
  if (n < 0) {
    r.error = archive_error_string(a) != nullptr ? archive_error_string(a) : "?";
  } else if (archive_read_next_header(a, &e) != ARCHIVE_EOF) {
    r.error = "more than one member";
  } else {
    r.ok = true;
  }
  archive_read_free(a);
  return r;
}

bool have_tool(const std::string& name) {
  return test::run_command("command -v " + name).exit_code == 0;
}

std::uint16_t le16(const std::string& s, std::size_t at) {
  return static_cast<std::uint16_t>(static_cast<unsigned char>(s[at]) | static_cast<unsigned char>(s[at + 1]) << 8);
}

TEST(EvidenceZip, EicarRoundTripsWithThePasswordInfected) {
  test::scratch_dir dir;
  const std::string content = eicar_and_binary();
  const fs::path file = write_file(dir / "content", content);
  const std::string zip = zip_to_file(dir / "e.zip", "disk.E01!/Users/ana/Downloads/eicar.com", file);

  const auto r = unzip(zip, "infected");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.name, "eicar.com");
  EXPECT_EQ(r.mtime, sample_mtime);
  EXPECT_TRUE(r.encrypted);
  EXPECT_EQ(r.data, content);  // byte for byte, all 256 values included

  // Encrypted: neither the EICAR string nor any long run of the content is in the zip.
  EXPECT_EQ(zip.find(test::eicar()), std::string::npos);
  EXPECT_EQ(zip.find(test::eicar().substr(0, 16)), std::string::npos);

  // Local header: encrypted flag, method 99 (WinZip AES), and the 0x9901
  // extra field saying AES-256 (strength 3) over deflate (8).
  ASSERT_EQ(zip.compare(0, 4, "PK\x03\x04"), 0);
  EXPECT_EQ(le16(zip, 6) & 0x1, 0x1);
  EXPECT_EQ(le16(zip, 8), 99);
  const std::size_t extra_at = 30 + le16(zip, 26);
  const std::string extra = zip.substr(extra_at, le16(zip, 28));
  const auto aes = extra.find("\x01\x99\x07\x00", 0, 4);
  ASSERT_NE(aes, std::string::npos);
  EXPECT_TRUE(le16(extra, aes + 4) == 1 || le16(extra, aes + 4) == 2);  // AE-1 or AE-2
  EXPECT_EQ(extra.substr(aes + 6, 2), "AE");
  EXPECT_EQ(extra[aes + 8], 3);
  EXPECT_EQ(le16(extra, aes + 9), 8);

  // Nothing after the end of central directory (no block padding).
  ASSERT_GE(zip.size(), 22u);
  EXPECT_EQ(zip.compare(zip.size() - 22, 4, "PK\x05\x06"), 0);
}

TEST(EvidenceZip, FiveMiBStreamsThroughAPipeAndRoundTrips) {
  // A pipe cannot seek: the daemon writes the zip straight into a response.
  test::scratch_dir dir;
  const std::string content = random_bytes(5 * 1024 * 1024);
  const fs::path file = write_file(dir / "big.bin", content);
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  std::string zip;
  std::thread reader([&] {
    char buf[65536];
    for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) zip.append(buf, static_cast<std::size_t>(n));
    ::close(fds[0]);
  });
  try {
    write_encrypted_zip(fds[1], "big.bin", file, "infected", sample_mtime);
  } catch (const std::exception& e) {
    ADD_FAILURE() << e.what();
  }
  ::close(fds[1]);
  reader.join();

  const auto r = unzip(zip, "infected");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.name, "big.bin");
  EXPECT_EQ(r.data.size(), content.size());
  EXPECT_TRUE(r.data == content);  // not EXPECT_EQ: no 5 MiB diff on failure
}

TEST(EvidenceZip, AWrongOrMissingPasswordDoesNotDecrypt) {
  test::scratch_dir dir;
  const std::string content = eicar_and_binary();
  const std::string zip = zip_to_file(dir / "e.zip", "eicar.com", write_file(dir / "content", content));
  for (const char* wrong : {"Infected", "wrong password", static_cast<const char*>(nullptr)}) {
    const auto r = unzip(zip, wrong);
    EXPECT_FALSE(r.ok) << (wrong != nullptr ? wrong : "(no password)");
    EXPECT_EQ(r.data.find(test::eicar()), std::string::npos);
  }
}

TEST(EvidenceZip, SevenZipExtractsItWithInfected) {
  if (!have_tool("7z")) GTEST_SKIP() << "7z not installed (apt-get install p7zip-full): skipped";
  test::scratch_dir dir;
  const std::string content = eicar_and_binary() + random_bytes(300'000);
  zip_to_file(dir / "e.zip", "sample.exe", write_file(dir / "content", content));
  const std::string zip = test::shell_quote((dir / "e.zip").string());

  const auto listing = test::run_command("7z l -slt -pinfected " + zip);
  ASSERT_EQ(listing.exit_code, 0) << listing.out << listing.err;
  EXPECT_NE(listing.out.find("Method = AES-256 Deflate"), std::string::npos) << listing.out;
  EXPECT_NE(listing.out.find("Encrypted = +"), std::string::npos) << listing.out;

  const auto x = test::run_command("7z x -y -pinfected -o" + test::shell_quote((dir / "out").string()) + " " + zip);
  ASSERT_EQ(x.exit_code, 0) << x.out << x.err;
  EXPECT_TRUE(slurp(dir / "out" / "sample.exe") == content);

  const auto bad = test::run_command("7z t -pnot-infected " + zip);
  EXPECT_NE(bad.exit_code, 0) << bad.out;
}

TEST(EvidenceZip, BsdtarExtractsItWithInfected) {
  if (!have_tool("bsdtar")) GTEST_SKIP() << "bsdtar not installed (apt-get install libarchive-tools): skipped";
  test::scratch_dir dir;
  const std::string content = eicar_and_binary();
  zip_to_file(dir / "e.zip", "sample.exe", write_file(dir / "content", content));
  fs::create_directory(dir / "out");
  const auto x = test::run_command("bsdtar -x --passphrase infected -C " + test::shell_quote((dir / "out").string()) +
                                   " -f " + test::shell_quote((dir / "e.zip").string()));
  ASSERT_EQ(x.exit_code, 0) << x.out << x.err;
  EXPECT_EQ(slurp(dir / "out" / "sample.exe"), content);
}

TEST(EvidenceZip, NonAsciiNamesAreStoredAsUtf8) {
  test::scratch_dir dir;
  const std::string name = "\xD0\xA1\xD1\x87\xD1\x91\xD1\x82.pdf.exe";  // "Счёт.pdf.exe"
  const std::string zip = zip_to_file(dir / "e.zip", "img!/" + name, write_file(dir / "content", test::eicar()));
  EXPECT_EQ(le16(zip, 6) & 0x800, 0x800);  // the UTF-8 name flag
  EXPECT_EQ(zip.substr(30, le16(zip, 26)), name);

  // libarchive hands names out in the thread's locale: read under a UTF-8 one,
  // as an extracting tool on the reviewer's machine would.
  const locale_t utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", locale_t{});
  if (utf8 == locale_t{}) GTEST_SKIP() << "no C.UTF-8 locale to read the name back: skipped";
  const locale_t previous = uselocale(utf8);
  const auto r = unzip(zip, "infected");
  uselocale(previous);
  freelocale(utf8);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.name, name);
}

TEST(EvidenceZip, SafeMemberNames) {
  EXPECT_EQ(safe_member_name("disk.E01!/Windows/Temp/dropper.exe"), "dropper.exe");
  EXPECT_EQ(safe_member_name("mail.pst!attachments/invoice.zip!inner.js"), "inner.js");
  EXPECT_EQ(safe_member_name("C:\\Users\\x\\evil.doc"), "evil.doc");
  EXPECT_EQ(safe_member_name("plain.bin"), "plain.bin");
  EXPECT_EQ(safe_member_name(""), "content.bin");
  EXPECT_EQ(safe_member_name("dir/"), "content.bin");
  EXPECT_EQ(safe_member_name("a!"), "content.bin");
  EXPECT_EQ(safe_member_name("x/.."), "content.bin");
  EXPECT_EQ(safe_member_name("."), "content.bin");
  EXPECT_EQ(safe_member_name("bad\x1b[31mname\x7f\n.txt"), "bad_[31mname__.txt");
  EXPECT_EQ(safe_member_name(std::string("nul\0byte", 8)), "nul_byte");
  EXPECT_EQ(safe_member_name("\xC2\x9B"
                             "c1.txt"),
            "_c1.txt");  // C1 CSI
  EXPECT_EQ(safe_member_name("invoice\xE2\x80\xAE"
                             "fdp.exe"),
            "invoice_fdp.exe");                                // RLO
  EXPECT_EQ(safe_member_name("\xFF\xC0\xAF.bin"), "___.bin");  // not UTF-8, overlong '/'
  EXPECT_EQ(safe_member_name("\xE6\x97\xA5\xE6\x9C\xAC.txt"), "\xE6\x97\xA5\xE6\x9C\xAC.txt");

  EXPECT_EQ(safe_member_name(std::string(300, 'a')), std::string(255, 'a'));
  // 254 ASCII bytes then a 3-byte character: cut before it, not inside it.
  const std::string cut = safe_member_name(std::string(254, 'a') +
                                           "\xE6\x97\xA5"
                                           "b");
  EXPECT_EQ(cut, std::string(254, 'a'));
}

TEST(EvidenceZip, FailuresThrow) {
  test::scratch_dir dir;
  const fs::path file = write_file(dir / "content", eicar_and_binary());
  EXPECT_THROW(zip_to_file(dir / "a.zip", "x", dir / "missing"), std::system_error);
  EXPECT_THROW(zip_to_file(dir / "b.zip", "x", dir.path()), std::runtime_error);  // a directory
  try {
    zip_to_file(dir / "c.zip", "x", file, "");
    ADD_FAILURE() << "an empty password was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("passphrase"), std::string::npos) << e.what();  // libarchive's words
  }
  EXPECT_THROW(zip_to_file(dir / "d.zip", "x", file, std::string_view("in\0fected", 9)), std::runtime_error);

  // An output that refuses writes (read-only descriptor): the error surfaces,
  // at the end for a small member and mid-member for a large one (that path
  // abandons libarchive's deflate stream; valgrind finds no leak).
  const fs::path big = write_file(dir / "big", random_bytes(1024 * 1024));
  for (const fs::path& content : {file, big}) {
    const int ro = ::open(content.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(ro, 0);
    EXPECT_THROW(write_encrypted_zip(ro, "x", content, "infected", sample_mtime), std::system_error);
    ::close(ro);
  }
}

// --- preview ---

TEST(EvidencePreview, HexLinesWithOffsetsAndAnAsciiColumn) {
  test::scratch_dir dir;
  const std::string content = test::eicar() + std::string("\x00\x1b\x7f\xff", 4);  // 68 + 4 = 72 bytes
  const auto p = preview_file(write_file(dir / "c", content), "hex");
  EXPECT_EQ(p.at("view"), "hex");
  EXPECT_EQ(p.at("size"), 72);
  EXPECT_EQ(p.at("shown_bytes"), 72);
  EXPECT_EQ(p.at("truncated"), false);
  const auto& lines = p.at("lines");
  ASSERT_EQ(lines.size(), 5u);  // 4 full lines and 8 bytes
  EXPECT_EQ(lines[0].at("offset"), 0);
  EXPECT_EQ(lines[0].at("hex"), "58 35 4f 21 50 25 40 41 50 5b 34 5c 50 5a 58 35");
  EXPECT_EQ(lines[0].at("text"), "X5O!P%@AP[4\\PZX5");
  EXPECT_EQ(lines[1].at("offset"), 16);
  EXPECT_EQ(lines[4].at("offset"), 64);
  EXPECT_EQ(lines[4].at("hex"), "48 2b 48 2a 00 1b 7f ff");
  EXPECT_EQ(lines[4].at("text"), "H+H*....");
  std::string joined;
  for (const auto& l : lines) joined += l.at("text").get<std::string>();
  EXPECT_EQ(joined.substr(0, 68), test::eicar());

  const auto empty = preview_file(write_file(dir / "empty", ""), "hex");
  EXPECT_EQ(empty.at("size"), 0);
  EXPECT_EQ(empty.at("shown_bytes"), 0);
  EXPECT_EQ(empty.at("truncated"), false);
  EXPECT_TRUE(empty.at("lines").empty());
}

TEST(EvidencePreview, ShowsAtMostMaxBytesOfALargeFile) {
  test::scratch_dir dir;
  const fs::path file = write_file(dir / "big", random_bytes(1024 * 1024));
  const auto hex = preview_file(file, "hex");
  EXPECT_EQ(hex.at("size"), 1024 * 1024);
  EXPECT_EQ(hex.at("shown_bytes"), 65536);
  EXPECT_EQ(hex.at("truncated"), true);
  ASSERT_EQ(hex.at("lines").size(), 4096u);
  EXPECT_EQ(hex.at("lines").back().at("offset"), 65536 - 16);

  const auto text = preview_file(file, "text");
  EXPECT_EQ(text.at("shown_bytes"), 65536);
  EXPECT_EQ(text.at("truncated"), true);
  EXPECT_NO_THROW((void)text.dump());  // dump() throws on invalid UTF-8

  const auto small = preview_file(file, "hex", 10);
  EXPECT_EQ(small.at("shown_bytes"), 10);
  EXPECT_EQ(small.at("lines").size(), 1u);
  EXPECT_EQ(small.at("lines")[0].at("hex").get<std::string>().size(), 10u * 3 - 1);
}

TEST(EvidencePreview, TextKeepsUtf8AndReplacesInvalidBytesAndControls) {
  test::scratch_dir dir;
  const std::string fffd = "\xEF\xBF\xBD";
  const std::string content = std::string("h\xC3\xA9llo\n\tok\r\n") +  // valid UTF-8 and allowed whitespace
                              "\x1b[31mred\x07" +                      // ESC sequence, BEL
                              "\xC2\x9B"
                              "2J" +  // C1 CSI
                              "\xE2\x80\xAE"
                              "txt" +  // RLO
                              "\xFF"
                              "\xC0\xAF"
                              "\xED\xA0\x80" +                  // not UTF-8, overlong, surrogate
                              "\xE6\x97\xA5\xF0\x9F\x98\x80" +  // 日 😀 kept
                              "\xE6\x97"
                              "x" +
                              std::string(1, '\0') + "<b>&amp;";
  const auto p = preview_file(write_file(dir / "t", content), "text");
  EXPECT_EQ(p.at("view"), "text");
  EXPECT_EQ(p.at("size"), content.size());
  EXPECT_EQ(p.at("truncated"), false);
  const std::string expected = std::string("h\xC3\xA9llo\n\tok\r\n") + fffd + "[31mred" + fffd + fffd + "2J" + fffd +
                               "txt" + fffd + fffd + fffd + fffd + fffd + fffd + "\xE6\x97\xA5\xF0\x9F\x98\x80" + fffd +
                               "x" + fffd + "<b>&amp;";
  EXPECT_EQ(p.at("text"), expected);
  const std::string dumped = p.dump();  // throws on invalid UTF-8
  EXPECT_EQ(dumped.find('\x1b'), std::string::npos);
  EXPECT_EQ(nlohmann::json::parse(dumped).at("text"), expected);

  // A character cut by the bound becomes one U+FFFD.
  const auto cut = preview_file(write_file(dir / "u", "ab\xF0\x9F\x98\x80"), "text", 5);
  EXPECT_EQ(cut.at("text"), "ab" + fffd);
  EXPECT_EQ(cut.at("truncated"), true);
}

TEST(EvidencePreview, UnknownViewOrMissingFileThrows) {
  test::scratch_dir dir;
  const fs::path file = write_file(dir / "c", "abc");
  EXPECT_THROW(preview_file(file, "html"), std::invalid_argument);
  EXPECT_THROW(preview_file(file, ""), std::invalid_argument);
  EXPECT_THROW(preview_file(file, "HEX"), std::invalid_argument);
  EXPECT_THROW(preview_file(dir / "missing", "hex"), std::system_error);
  EXPECT_THROW(preview_file(dir.path(), "text"), std::runtime_error);
}

}  // namespace
}  // namespace borderscan::evidence
