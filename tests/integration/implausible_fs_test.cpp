// File systems whose metadata claims more than the volume holds (found by
// fuzz_image, 2026-11-30): libtsk reads a directory as long as its inode says,
// one block at a time, so a crafted size costs minutes and gigabytes. Images
// are made by mke2fs -d and changed only through debugfs (set_inode_field).
// Files mapped by block pointers (ext2/3) are bounded the same way.
#include <gtest/gtest.h>

#include <fstream>

#include "support/test_support.hpp"

namespace fs = std::filesystem;
using borderscan::test::run_command;
using borderscan::test::scratch_dir;
using borderscan::test::shell_quote;
using nlohmann::json;

namespace {

void sh(const std::string& cmd) {
  const auto res = run_command("set -e; " + cmd);
  ASSERT_EQ(res.exit_code, 0) << cmd << "\n" << res.err;
}

// ext2 of 2 MiB holding big/ (the directory made to lie) and keep/ beside it.
fs::path ext2_with_dirs(const scratch_dir& tmp) {
  const fs::path dir = tmp / "content";
  fs::create_directories(dir / "big");
  fs::create_directories(dir / "keep");
  std::ofstream(dir / "big" / "inside.txt") << "inside\n";
  std::ofstream(dir / "keep" / "ok.txt") << "ok\n";
  const fs::path img = tmp / "ext2.img";
  sh("mke2fs -q -F -t ext2 -b 1024 -d " + shell_quote(dir.string()) + " " + shell_quote(img.string()) + " 2M");
  return img;
}

void debugfs(const fs::path& img, const std::string& request) {
  sh("debugfs -w -R " + shell_quote(request) + " " + shell_quote(img.string()) + " 2>/dev/null");
}

std::vector<json> errors_with(const json& r, const std::string& code) {
  std::vector<json> out;
  for (const auto& e : r.at("errors")) {
    if (e.at("code") == code) {
      out.push_back(e);
    }
  }
  return out;
}

bool lists(const json& r, const std::string& path) {
  for (const auto& f : r.at("files")) {
    if (f.at("path") == path) {
      return true;
    }
  }
  return false;
}

}  // namespace

TEST(ImplausibleFs, DirectoryClaimingMoreThanItsFileSystemIsAnErrorAndTheRestIsListed) {
  scratch_dir tmp;
  const fs::path img = ext2_with_dirs(tmp);
  debugfs(img, "sif /big size 0xF0000000");  // 3.75 GiB in a 2 MiB file system

  const json r = borderscan::test::scan_image(img);
  const auto bad = errors_with(r, "directory_implausible");
  ASSERT_EQ(bad.size(), 1u) << r.at("errors").dump(1);
  EXPECT_EQ(bad[0].at("path"), "/big");
  EXPECT_NE(bad[0].at("message").get<std::string>().find("4026531840 bytes"), std::string::npos);
  EXPECT_TRUE(lists(r, "/big")) << "the directory itself is still listed";
  EXPECT_FALSE(lists(r, "/big/inside.txt"));
  EXPECT_TRUE(lists(r, "/keep/ok.txt"));
  // The orphan search would read /big again: skipped, and said so.
  const auto skipped = errors_with(r, "orphan_search_skipped");
  ASSERT_EQ(skipped.size(), 1u) << r.at("errors").dump(1);
  EXPECT_NE(skipped[0].at("message").get<std::string>().find("/big"), std::string::npos);
  EXPECT_NE(r.at("verdict"), "clean");
}

TEST(ImplausibleFs, UnallocatedDirectoryInodeClaimingTooMuchStopsOnlyTheOrphanSearch) {
  scratch_dir tmp;
  const fs::path img = ext2_with_dirs(tmp);
  // A free inode no name points at, written to look like a deleted
  // directory claiming 3.75 GiB: only libtsk's orphan search would read it.
  const std::string ino = "40";
  debugfs(img, "sif <" + ino + "> mode 040755");
  debugfs(img, "sif <" + ino + "> size 0xF0000000");
  debugfs(img, "sif <" + ino + "> dtime 1700000000");

  const json r = borderscan::test::scan_image(img);
  EXPECT_TRUE(errors_with(r, "directory_implausible").empty()) << r.at("errors").dump(1);
  const auto skipped = errors_with(r, "orphan_search_skipped");
  ASSERT_EQ(skipped.size(), 1u) << r.at("errors").dump(1);
  EXPECT_NE(skipped[0].at("message").get<std::string>().find("unallocated directory inode " + ino), std::string::npos)
      << skipped[0].dump();
  EXPECT_TRUE(lists(r, "/big/inside.txt"));
  EXPECT_TRUE(lists(r, "/keep/ok.txt"));
  EXPECT_NE(r.at("verdict"), "clean");
}

TEST(ImplausibleFs, SoundExt2StillGetsItsOrphanSearch) {
  scratch_dir tmp;
  const fs::path img = ext2_with_dirs(tmp);
  debugfs(img, "rm /keep/ok.txt");
  const json r = borderscan::test::scan_image(img);
  EXPECT_TRUE(errors_with(r, "orphan_search_skipped").empty()) << r.at("errors").dump(1);
  EXPECT_TRUE(errors_with(r, "directory_implausible").empty());
  EXPECT_TRUE(lists(r, "/$OrphanFiles")) << "libtsk's orphan folder is walked";
}

TEST(ImplausibleFs, FileMappedByBlockPointersPastTheVolumeIsListedWithAnErrorNotRead) {
  scratch_dir tmp;
  const fs::path dir = tmp / "content";
  fs::create_directories(dir);
  std::ofstream(dir / "a.txt") << "hello\n";
  fs::resize_file((std::ofstream(dir / "sparse.bin"), dir / "sparse.bin"), std::uint64_t{64} << 20);
  const fs::path ext2 = tmp / "ext2.img";
  const fs::path ext4 = tmp / "ext4.img";
  sh("mke2fs -q -F -t ext2 -b 1024 -d " + shell_quote(dir.string()) + " " + shell_quote(ext2.string()) + " 4M");
  sh("mke2fs -q -F -t ext4 -b 1024 -d " + shell_quote(dir.string()) + " " + shell_quote(ext4.string()) + " 4M");

  // ext2: 64 MiB in block pointers on a 4 MiB volume. libtsk would build its
  // block list pointer by pointer; crafted indirect blocks make that hang.
  const json r = borderscan::test::scan_image(ext2);
  const auto bad = errors_with(r, "file_implausible");
  ASSERT_EQ(bad.size(), 1u) << r.at("errors").dump(1);
  EXPECT_EQ(bad[0].at("path"), "/sparse.bin");
  bool listed = false;
  for (const auto& f : r.at("files")) {
    if (f.at("path") == "/sparse.bin") {
      listed = true;
      EXPECT_EQ(f.at("size"), std::uint64_t{64} << 20);
      EXPECT_FALSE(f.at("skipped").is_null()) << f.dump();
    }
  }
  EXPECT_TRUE(listed);
  EXPECT_TRUE(lists(r, "/a.txt"));
  EXPECT_NE(r.at("verdict"), "clean");

  // ext4 maps the same file with an extent: compact, read as usual.
  const json r4 = borderscan::test::scan_image(ext4);
  EXPECT_TRUE(errors_with(r4, "file_implausible").empty()) << r4.at("errors").dump(1);
}
