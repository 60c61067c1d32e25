// Unallocated space and partition anomalies (issue #16): content that no
// directory entry names any more, unpartitioned gaps, overlapping partitions.
// Images are built at test time by real tools (mkfs.vfat, mtools, mke2fs,
// debugfs, sfdisk); the only bytes written by hand are the test signature in
// a gap and one partition-table field that sfdisk refuses to write (an
// overlapping start).
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "support/test_support.hpp"

namespace fs = std::filesystem;
namespace sc = borderscan::scanner;
using borderscan::test::eicar;
using borderscan::test::run_command;
using borderscan::test::scratch_dir;
using borderscan::test::shell_quote;
using nlohmann::json;

namespace {

constexpr std::uint64_t mib = 1 << 20;

void sh(const std::string& cmd) {
  const auto res = run_command("set -e; export MTOOLS_SKIP_CHECK=1; " + cmd);
  ASSERT_EQ(res.exit_code, 0) << cmd << "\n" << res.err;
}

std::string q(const fs::path& p) {
  return shell_quote(p.string());
}

// The shipped EICAR rule wants the string at offset 0 of a file of at most
// 128 bytes; in unallocated space it can be anywhere.
std::shared_ptr<const sc::rule_set> eicar_anywhere(const scratch_dir& tmp) {
  borderscan::test::shipped_rules();  // initialises libyara for this process
  std::string hex;
  for (const unsigned char c : eicar()) {
    char b[4];
    std::snprintf(b, sizeof b, "%02X ", c);
    hex += b;
  }
  std::ofstream(tmp / "anywhere.yar") << "rule eicar_anywhere { meta: severity = \"high\" strings: $e = { " << hex
                                      << "} condition: $e }\n";
  sc::rule_sources src;
  src.rule_paths = {tmp / "anywhere.yar"};
  return sc::rule_set::load(src);
}

void write_at(const fs::path& image, std::uint64_t offset, const std::string& bytes) {
  std::fstream f(image, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(f.good()) << image;
}

std::vector<json> findings_of(const json& r, const std::string& rule) {
  std::vector<json> out;
  for (const auto& f : r.at("findings")) {
    if (f.at("rule") == rule) {
      out.push_back(f);
    }
  }
  return out;
}

bool any_contains(const json& strings, const std::string& part) {
  for (const auto& s : strings) {
    if (s.get<std::string>().find(part) != std::string::npos) {
      return true;
    }
  }
  return false;
}

// FAT12 where EICAR.TXT was copied, deleted, and its directory slot taken by
// an empty file: only the free cluster 3 (bytes 25088...) still holds it.
fs::path fat_with_overwritten_name(const scratch_dir& tmp) {
  const fs::path img = tmp / "fat.img";
  std::ofstream(tmp / "eicar.txt") << eicar();
  std::ofstream(tmp / "keep.txt") << "hello\n";
  std::ofstream(tmp / "empty.txt").flush();
  sh("mkfs.vfat -C " + q(img) + " 4096 >/dev/null; mcopy -i " + q(img) + " " + q(tmp / "keep.txt") +
     " ::/KEEP.TXT; mcopy -i " + q(img) + " " + q(tmp / "eicar.txt") + " ::/EICAR.TXT; mdel -i " + q(img) +
     " ::/EICAR.TXT; mcopy -i " + q(img) + " " + q(tmp / "empty.txt") + " ::/NEW.TXT");
  return img;
}

}  // namespace

TEST(Unallocated, FatContentWithoutDirectoryEntryIsFoundAtItsOffset) {
  scratch_dir tmp;
  const fs::path img = fat_with_overwritten_name(tmp);
  const json r = borderscan::test::scan_image(img, {}, eicar_anywhere(tmp));
  for (const auto& f : r.at("files")) {
    EXPECT_TRUE(f.at("findings").empty()) << "the name must be gone: " << f.dump();
  }
  const auto hits = findings_of(r, "eicar_anywhere");
  ASSERT_EQ(hits.size(), 1u) << r.at("findings").dump(1);
  // Data area at sector 45, 4 sectors a cluster: cluster 3 starts at sector 49.
  const std::uint64_t at = 49 * 512;
  EXPECT_EQ(hits[0].at("path"), "/$Unallocated@" + std::to_string(at));
  EXPECT_EQ(hits[0].at("volume"), 0);
  EXPECT_EQ(hits[0].at("meta").at("offset"), at);
  EXPECT_EQ(hits[0].at("meta").at("length"), eicar().size());
  EXPECT_EQ(hits[0].at("matches").at(0).at("offset"), at);
  EXPECT_EQ(r.at("verdict"), "flagged");
  const json& unalloc = r.at("volumes").at(0).at("unallocated");
  EXPECT_GT(unalloc.at("bytes").get<std::uint64_t>(), 3 * mib);
  EXPECT_EQ(unalloc.at("scanned_bytes"), unalloc.at("bytes"));
}

TEST(Unallocated, Ext4BlockOfAClearedInodeIsFound) {
  scratch_dir tmp;
  const fs::path dir = tmp / "content";
  fs::create_directories(dir);
  std::ofstream(dir / "eicar.txt") << eicar();
  std::ofstream(dir / "keep.txt") << "hello\n";
  const fs::path img = tmp / "ext4.img";
  // Deleted, then its inode cleared (as a wipe or a reformat leaves it): the
  // name points nowhere and only the free block holds the bytes.
  sh("mke2fs -q -F -t ext4 -b 1024 -d " + q(dir) + " " + q(img) + " 4M; debugfs -w -R 'rm eicar.txt' " + q(img) +
     " 2>/dev/null; debugfs -w -R 'clri <12>' " + q(img) + " 2>/dev/null");
  const auto where = run_command("grep -boa 'X5O!P%@AP' " + q(img) + " | head -1 | cut -d: -f1");
  ASSERT_EQ(where.exit_code, 0);
  const std::uint64_t at = std::stoull(where.out);
  ASSERT_EQ(at % 1024, 0u) << "the content starts a block";

  const json r = borderscan::test::scan_image(img, {}, eicar_anywhere(tmp));
  for (const auto& f : r.at("files")) {
    EXPECT_TRUE(f.at("findings").empty()) << f.dump();
  }
  const auto hits = findings_of(r, "eicar_anywhere");
  ASSERT_EQ(hits.size(), 1u) << r.at("findings").dump(1);
  EXPECT_EQ(hits[0].at("path"), "/$Unallocated@" + std::to_string(at));
  EXPECT_EQ(hits[0].at("volume"), 0);
  EXPECT_EQ(hits[0].at("meta").at("offset"), at);
  EXPECT_EQ(r.at("volumes").at(0).at("filesystem"), "ext4");
}

TEST(Unallocated, LimitStopsTheLookAndIsRecorded) {
  scratch_dir tmp;
  const fs::path img = fat_with_overwritten_name(tmp);
  sc::limits lim;
  lim.max_unallocated_bytes = 1024;  // the first free cluster's first half: EICAR's start
  const json r = borderscan::test::scan_image(img, lim, eicar_anywhere(tmp));
  EXPECT_EQ(findings_of(r, "eicar_anywhere").size(), 1u);
  ASSERT_EQ(r.at("limits_hit").size(), 1u) << r.at("limits_hit").dump();
  EXPECT_EQ(r.at("limits_hit")[0].at("limit"), "max_unallocated_bytes");
  EXPECT_EQ(r.at("limits_hit")[0].at("volume"), 0);
  EXPECT_EQ(r.at("limits_hit")[0].at("path"), "/$Unallocated@" + std::to_string(49 * 512 + 1024));
  EXPECT_EQ(r.at("volumes")[0].at("unallocated").at("scanned_bytes"), 1024);
  EXPECT_GT(r.at("volumes")[0].at("unallocated").at("bytes").get<std::uint64_t>(), 1024u);

  lim.max_unallocated_bytes = 0;  // off: said so, not a limit hit
  const json off = borderscan::test::scan_image(img, lim, eicar_anywhere(tmp));
  EXPECT_TRUE(off.at("limits_hit").empty());
  EXPECT_TRUE(off.at("volumes")[0].at("unallocated").is_null());
  EXPECT_TRUE(any_contains(off.at("warnings"), "max_unallocated_bytes is 0")) << off.at("warnings").dump();
  EXPECT_EQ(off.at("verdict"), "clean");
}

// An MBR image with partitions at `starts` (sectors), each a FAT of 2 MiB.
fs::path mbr_with_fats(const scratch_dir& tmp, const std::vector<int>& starts) {
  const fs::path img = tmp / "disk.img";
  std::string table = "label: dos\\n";
  std::string format;
  for (const int s : starts) {
    table += "start=" + std::to_string(s) + ", size=4096, type=6\\n";
    format += "; mkfs.vfat --offset=" + std::to_string(s) + " " + q(img) + " 2048 >/dev/null";
  }
  sh("truncate -s 12M " + q(img) + "; printf '" + table + "' | sfdisk -q " + q(img) + format);
  return img;
}

// MBR: FAT 1-3 MiB, a 4 MiB gap with EICAR in it, FAT 7-9 MiB, then 3 MiB of
// zeros up to the end of the image.
TEST(Unallocated, GapWithDataIsScannedAndAZeroGapIsOnlyNoted) {
  scratch_dir tmp;
  const fs::path img = mbr_with_fats(tmp, {2048, 14336});
  const std::uint64_t at = 4 * mib + 1000;
  write_at(img, at, eicar());

  const json r = borderscan::test::scan_image(img, {}, eicar_anywhere(tmp));
  const auto hits = findings_of(r, "eicar_anywhere");
  ASSERT_EQ(hits.size(), 1u) << r.at("findings").dump(1);
  EXPECT_EQ(hits[0].at("path"), "$Gap@" + std::to_string(at));
  EXPECT_TRUE(hits[0].at("volume").is_null());
  EXPECT_EQ(hits[0].at("meta").at("offset"), at);
  EXPECT_EQ(r.at("verdict"), "flagged");

  ASSERT_EQ(r.at("gaps").size(), 2u) << r.at("gaps").dump(1);
  const json& data = r["gaps"][0];
  EXPECT_EQ(data.at("offset"), 3 * mib);
  EXPECT_EQ(data.at("length"), 4 * mib);
  EXPECT_EQ(data.at("after_volume"), 0);
  EXPECT_EQ(data.at("before_volume"), 1);
  EXPECT_EQ(data.at("content"), "data");
  EXPECT_EQ(data.at("scanned_bytes"), 4 * mib);
  const json& zero = r["gaps"][1];
  EXPECT_EQ(zero.at("offset"), 9 * mib);
  EXPECT_EQ(zero.at("content"), "zero");
  EXPECT_TRUE(zero.at("before_volume").is_null());

  EXPECT_TRUE(any_contains(r["volumes"][0]["notes"], "holds data")) << r["volumes"][0]["notes"].dump();
  EXPECT_TRUE(any_contains(r["volumes"][1]["notes"], "holds data"));
  EXPECT_TRUE(any_contains(r["volumes"][1]["notes"], "all zeros"));
  EXPECT_TRUE(any_contains(r.at("warnings"), "holds data"));
  EXPECT_FALSE(any_contains(r.at("warnings"), "all zeros")) << "a zero gap is a note, not a warning";
}

// The 9 MiB after the only partition is read in 4 MiB chunks that overlap by
// 64 KiB: a signature across the first edge is found by the first chunk, one
// wholly inside the overlap by the second only; each is reported once.
TEST(Unallocated, SignaturesAtAChunkEdgeAreFoundOnce) {
  scratch_dir tmp;
  const fs::path img = mbr_with_fats(tmp, {2048});
  const std::uint64_t edge = 3 * mib + 4 * mib;
  write_at(img, edge - 30, eicar());
  write_at(img, edge + 100, eicar());
  const json r = borderscan::test::scan_image(img, {}, eicar_anywhere(tmp));
  std::vector<std::string> paths;
  for (const auto& f : findings_of(r, "eicar_anywhere")) {
    paths.push_back(f.at("path").get<std::string>());
  }
  EXPECT_EQ(paths,
            (std::vector<std::string>{"$Gap@" + std::to_string(edge - 30), "$Gap@" + std::to_string(edge + 100)}))
      << "findings are sorted by path";
}

// sfdisk refuses overlapping partitions: it writes two apart, then the second
// entry's start LBA (MBR entry 2, bytes 8-11) is moved into the first.
TEST(Unallocated, OverlappingPartitionsAreWarnedAndNotedOnBoth) {
  scratch_dir tmp;
  const fs::path img = tmp / "overlap.img";
  std::ofstream(tmp / "b.txt") << "on the second volume\n";
  sh("truncate -s 12M " + q(img) +
     "; printf 'label: dos\\nstart=2048, size=8192, type=6\\nstart=10240, size=8192, "
     "type=6\\n' | sfdisk -q " +
     q(img) + "; mkfs.vfat --offset=2048 " + q(img) + " 4096 >/dev/null");
  write_at(img, 0x1be + 16 + 8, std::string("\x00\x18\x00\x00", 4));  // 6144, little-endian
  sh("mkfs.vfat --offset=6144 " + q(img) + " 4096 >/dev/null; mcopy -i " + q(img) + "@@" + std::to_string(6144 * 512) +
     " " + q(tmp / "b.txt") + " ::/B.TXT");

  const json r = borderscan::test::scan_image(img);
  ASSERT_EQ(r.at("volumes").size(), 2u);
  const std::string range = "bytes 3145728-5242879";
  EXPECT_TRUE(any_contains(r.at("warnings"), "volumes 0 and 1 overlap over " + range)) << r.at("warnings").dump(1);
  EXPECT_TRUE(any_contains(r["volumes"][0]["notes"], "overlaps volume 1 over " + range)) << r["volumes"][0].dump();
  EXPECT_TRUE(any_contains(r["volumes"][1]["notes"], "overlaps volume 0 over " + range));
  EXPECT_TRUE(any_contains(r["volumes"][0]["notes"], "$OrphanFiles")) << "the note explains orphan duplicates";
  EXPECT_NE(borderscan::test::find_file(r, 1, "/B.TXT"), nullptr);
}

// A partition whose start LBA (set to 0 after sfdisk) takes in the MBR itself:
// the table is inconsistent, and the volume's note says so.
TEST(Unallocated, PartitionCoveringItsOwnTableIsNoted) {
  scratch_dir tmp;
  const fs::path img = mbr_with_fats(tmp, {2048});
  write_at(img, 0x1be + 8, std::string("\x00\x00\x00\x00", 4));
  const json r = borderscan::test::scan_image(img);
  ASSERT_EQ(r.at("volumes").size(), 1u);
  EXPECT_EQ(r["volumes"][0].at("offset"), 0);
  EXPECT_TRUE(any_contains(r["volumes"][0]["notes"], "covers the partition table itself at bytes 0-511"))
      << r["volumes"][0].dump(1);
  EXPECT_TRUE(any_contains(r.at("warnings"), "volume 0 covers the partition table")) << r.at("warnings").dump(1);
}
