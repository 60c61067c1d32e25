// Archive members larger than limits.member_memory_bytes (32 MiB) are streamed
// once, front to back: each must still get its hashes, type and YARA scan, and
// the report must stay complete. Archives are built at test time by real tools
// (zip, tar + gzip/xz, 7z, gzip) and put on an ext4 image with mke2fs -d.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <map>

#include "support/test_support.hpp"

namespace fs = std::filesystem;
namespace sc = borderscan::scanner;
using borderscan::test::eicar;
using borderscan::test::find_file;
using borderscan::test::has_finding;
using borderscan::test::run_command;
using borderscan::test::scratch_dir;
using borderscan::test::shell_quote;
using nlohmann::json;

namespace {

constexpr std::uint64_t mib = 1 << 20;

void sh(const std::string& cmd) {
  const auto res = run_command(cmd);
  ASSERT_EQ(res.exit_code, 0) << cmd << "\n" << res.err;
}

std::string sha256_of(const fs::path& file) {
  const auto res = run_command("sha256sum " + shell_quote(file.string()));
  EXPECT_EQ(res.exit_code, 0) << res.err;
  return res.out.substr(0, 64);
}

// Shell commands writing `bytes` zeros, or `bytes` of incompressible noise
// that is the same on every run (AES-CTR of zeros under a key from `seed`), so
// what libmagic makes of it never depends on chance.
std::string zeros(std::uint64_t bytes, const fs::path& out) {
  return "head -c " + std::to_string(bytes) + " /dev/zero > " + shell_quote(out.string());
}
std::string noise(std::uint64_t bytes, std::uint64_t seed, const fs::path& out) {
  char key[33];
  std::snprintf(key, sizeof key, "%032llx", static_cast<unsigned long long>(seed));
  return std::string("openssl enc -aes-128-ctr -nosalt -K ") + key + " -iv 0 -in /dev/zero 2>/dev/null | head -c " +
         std::to_string(bytes) + " > " + shell_quote(out.string());
}

// Shows YARA ran over a member, with its true size.
const char* const seen_rule = R"(
rule large_member_seen {
  meta: severity = "low" description = "YARA saw a member of 33 to 300 MiB"
  condition: filesize >= 33MB and filesize <= 300MB
}
)";

// The shipped rules plus `extra` YARA source.
std::shared_ptr<const sc::rule_set> rules_with(const scratch_dir& tmp, const std::string& extra) {
  borderscan::test::shipped_rules();  // initialises libyara for this process
  std::ofstream(tmp / "extra.yar") << extra;
  sc::rule_sources src;
  src.rule_paths = {borderscan::test::rules_dir(), tmp / "extra.yar"};
  return sc::rule_set::load(src);
}

// Puts `archive` alone on an ext4 image big enough for it; the archive itself is then removed.
fs::path image_holding(const scratch_dir& tmp, const fs::path& archive) {
  const fs::path content = tmp / "content";
  fs::create_directories(content);
  fs::rename(archive, content / archive.filename());
  const std::uint64_t size_mib = fs::file_size(content / archive.filename()) / mib * 21 / 20 + 32;
  const fs::path img = tmp / "disk.img";
  sh("mke2fs -q -t ext4 -d " + shell_quote(content.string()) + " " + shell_quote(img.string()) + " " +
     std::to_string(size_mib) + "M");
  fs::remove_all(content);
  return img;
}

// Members of 33, 64 and 300 MiB, of zeros and of random bytes, in `format`
// (a shell command run in the members' folder that writes ../<archive>).
// Returns the image and each member's SHA-256 by name.
std::pair<fs::path, std::map<std::string, std::string>> archive_image(const scratch_dir& tmp,
                                                                      const std::string& archive,
                                                                      const std::string& format) {
  const fs::path dir = tmp / "members";
  fs::create_directories(dir);
  std::map<std::string, std::string> sha256;
  for (const std::uint64_t size : {33, 64, 300}) {
    for (const char* kind : {"zeros", "random"}) {
      const std::string name = std::string(kind) + "-" + std::to_string(size) + ".bin";
      sh(std::string(kind) == "zeros" ? zeros(size * mib, dir / name) : noise(size * mib, size, dir / name));
      sha256[name] = sha256_of(dir / name);
    }
  }
  sh("cd " + shell_quote(dir.string()) + " && " + format);
  fs::remove_all(dir);
  return {image_holding(tmp, tmp / archive), sha256};
}

// Every member is listed whole, hashed, typed and seen by YARA, and the
// report is complete: no error, no limit, verdict clean.
void expect_members_scanned(const json& r, const std::string& archive,
                            const std::map<std::string, std::string>& sha256) {
  for (const auto& [name, digest] : sha256) {
    const std::string path = "/" + archive + "!" + name;
    const json* m = find_file(r, 0, path);
    ASSERT_NE(m, nullptr) << path;
    const std::uint64_t size = std::stoull(name.substr(name.find('-') + 1)) * mib;
    EXPECT_EQ(m->at("size"), size) << path;
    EXPECT_EQ(m->at("bytes_read"), size) << path;
    EXPECT_TRUE(m->at("content_complete").get<bool>()) << path;
    EXPECT_EQ(m->at("sha256"), digest) << path;
    EXPECT_EQ(m->at("mime"), "application/octet-stream") << path;
    EXPECT_TRUE(has_finding(*m, "large_member_seen")) << path;
    EXPECT_EQ(m->at("depth"), 1);
  }
  EXPECT_TRUE(r.at("errors").empty()) << r.at("errors").dump(2).substr(0, 4000);
  EXPECT_TRUE(r.at("limits_hit").empty()) << r.at("limits_hit").dump(2);
  EXPECT_EQ(r.at("verdict"), "clean");
}

void scan_archive(const std::string& archive, const std::string& format) {
  scratch_dir tmp;
  const auto [image, sha256] = archive_image(tmp, archive, format);
  const json r = borderscan::test::scan_image(image, {}, rules_with(tmp, seen_rule));
  expect_members_scanned(r, archive, sha256);
}

}  // namespace

TEST(LargeMembers, ZipStoredMembersAreScannedWhole) {
  scan_archive("big.zip", "zip -q -0 ../big.zip *.bin");
}

TEST(LargeMembers, ZipDeflatedMembersAreScannedWhole) {
  scan_archive("big.zip", "zip -q -1 ../big.zip *.bin");
}

TEST(LargeMembers, TarGzMembersAreScannedWhole) {
  scan_archive("big.tar.gz", "tar cf - *.bin | gzip -1 > ../big.tar.gz");
}

TEST(LargeMembers, TarXzMembersAreScannedWhole) {
  scan_archive("big.tar.xz", "tar cf - *.bin | xz -0 -T2 > ../big.tar.xz");
}

TEST(LargeMembers, SevenZipMembersAreScannedWhole) {
  scan_archive("big.7z", "7z a -bd -bso0 -bsp0 -mx=1 ../big.7z *.bin");
}

TEST(LargeMembers, SingleStreamGzOf100MiBIsScannedWhole) {
  scratch_dir tmp;
  const fs::path file = tmp / "backup.bin";
  sh(noise(100 * mib, 100, file));
  const std::string digest = sha256_of(file);
  sh("gzip -1 " + shell_quote(file.string()));
  const json r = borderscan::test::scan_image(image_holding(tmp, tmp / "backup.bin.gz"), {},
                                              rules_with(tmp, "rule never { condition: false }"));
  const json* m = find_file(r, 0, "/backup.bin.gz!backup.bin");
  ASSERT_NE(m, nullptr) << r.at("files").dump(1).substr(0, 2000);
  EXPECT_EQ(m->at("size"), 100 * mib);
  EXPECT_TRUE(m->at("content_complete").get<bool>());
  EXPECT_EQ(m->at("sha256"), digest);
  EXPECT_TRUE(r.at("errors").empty()) << r.at("errors").dump(2);
  EXPECT_TRUE(r.at("limits_hit").empty()) << r.at("limits_hit").dump(2);
  EXPECT_EQ(r.at("verdict"), "clean");
}

// The scanner reads 4 MiB blocks that overlap by 64 KiB: block k covers
// [k * (4 MiB - 64 KiB), that + 4 MiB). An EICAR string across the end of the
// first block and one across the end of the eighth, in a 64 MiB member, are
// both found at their offsets; conditions on the member's first and last bytes
// still hold after the blocks went past.
TEST(LargeMembers, EicarAcrossABlockBoundaryInA64MiBMemberIsFound) {
  scratch_dir tmp;
  const std::uint64_t block = 4 * mib, step = block - 64 * 1024;
  const std::uint64_t first_end = block - 30, eighth_end = 7 * step + block - 40;
  const fs::path dir = tmp / "members";
  fs::create_directories(dir);
  const fs::path member = dir / "video.bin";
  sh(noise(64 * mib, 64, member));
  {
    std::fstream f(member, std::ios::in | std::ios::out | std::ios::binary);
    f.write("BORD", 4);
    for (const std::uint64_t at : {first_end, eighth_end}) {
      f.seekp(static_cast<std::streamoff>(at));
      f << eicar();
    }
    f.seekp(static_cast<std::streamoff>(64 * mib - 4));
    f.write("SCAN", 4);
  }
  const std::string digest = sha256_of(member);
  sh("cd " + shell_quote(dir.string()) + " && zip -q -6 ../video.zip video.bin");
  fs::remove_all(dir);
  std::string hex;
  for (const unsigned char c : eicar()) {
    static const char* const digits = "0123456789ABCDEF";
    hex += std::string{digits[c >> 4], digits[c & 15], ' '};
  }
  const std::string rules =
      "rule eicar_across_first_boundary { strings: $e = { " + hex + "} condition: $e at " + std::to_string(first_end) +
      " }\n" + "rule eicar_across_eighth_boundary { strings: $e = { " + hex + "} condition: $e at " +
      std::to_string(eighth_end) + " and #e == 2 }\n" + "rule first_bytes { condition: uint32be(0) == 0x424F5244 }\n" +
      "rule last_bytes { condition: uint32be(filesize - 4) == 0x5343414E }\n";
  const json r = borderscan::test::scan_image(image_holding(tmp, tmp / "video.zip"), {}, rules_with(tmp, rules));
  const json* m = find_file(r, 0, "/video.zip!video.bin");
  ASSERT_NE(m, nullptr);
  EXPECT_TRUE(m->at("content_complete").get<bool>());
  EXPECT_EQ(m->at("sha256"), digest);
  for (const char* rule :
       {"eicar_across_first_boundary", "eicar_across_eighth_boundary", "first_bytes", "last_bytes"}) {
    EXPECT_TRUE(has_finding(*m, rule)) << rule << "\n" << m->at("findings").dump(2);
  }
  EXPECT_TRUE(r.at("errors").empty()) << r.at("errors").dump(2);
  EXPECT_EQ(r.at("verdict"), "flagged");
}

// A disk image of 40 MiB inside a zip is past the 32 MiB held in memory: it
// is streamed once, kept in the scratch folder as it streams (libmagic named
// it a disk image from its first block), and walked from there.
TEST(LargeMembers, DiskImageMemberPastTheMemoryBoundIsOpened) {
  scratch_dir tmp;
  const fs::path members = tmp / "members";
  fs::create_directories(members);
  const fs::path disk = members / "disk.img";
  const fs::path virus = tmp / "eicar.com";
  std::ofstream(virus) << eicar();
  sh("mkfs.vfat -C " + shell_quote(disk.string()) + " 40960 >/dev/null && mcopy -i " + shell_quote(disk.string()) +
     " " + shell_quote(virus.string()) + " ::/eicar.com && cd " + shell_quote(members.string()) +
     " && zip -q -1 ../bundle.zip disk.img");
  const json r = borderscan::test::scan_image(image_holding(tmp, tmp / "bundle.zip"));
  const json* m = find_file(r, 0, "/bundle.zip!disk.img");
  ASSERT_NE(m, nullptr);
  EXPECT_GT(m->at("size").get<std::uint64_t>(), 32 * mib);
  EXPECT_TRUE(m->at("skipped").is_null()) << m->dump();
  const json* inner = find_file(r, 0, "/bundle.zip!disk.img!/eicar.com");
  ASSERT_NE(inner, nullptr) << r.at("limits_hit").dump(1);
  EXPECT_TRUE(has_finding(*inner, "EICAR_Test_File"));
  EXPECT_TRUE(r.at("limits_hit").empty()) << r.at("limits_hit").dump(1);
}
