// Images built at test time by real tools (tests/data/make-fixtures.sh).
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "support/test_support.hpp"

namespace fs = std::filesystem;
using borderscan::test::find_file;
using borderscan::test::fixture_dir;
using borderscan::test::has_finding;
using nlohmann::json;

namespace {

const std::string eicar_sha256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f";
const std::string deleted_sha256 = "30a92ad805201268c3bd2b04f9da1998d208314be72a8e7145e7f4ad145417fa";

void expect_gpt_two_volumes(const json& r) {
  ASSERT_EQ(r.at("volumes").size(), 2u);
  EXPECT_EQ(r["volumes"][0]["scheme"], "gpt");
  EXPECT_EQ(r["volumes"][0]["filesystem"], "fat16");
  EXPECT_EQ(r["volumes"][0]["offset"], 2048 * 512);
  EXPECT_EQ(r["volumes"][0]["label"], "BSGPTFAT");
  EXPECT_EQ(r["volumes"][1]["filesystem"], "ext4");
  EXPECT_EQ(r["volumes"][1]["offset"], 8192 * 512);

  const json* reunion = find_file(r, 0, "/docs/Réunion année.txt");
  ASSERT_NE(reunion, nullptr);
  EXPECT_EQ(reunion->at("sha256"), "9cec0af545144159bac85c7b908d5e0b9b0ef961497401c5ad8da26f065ad926");
  EXPECT_NE(find_file(r, 0, "/docs/Привет мир.txt"), nullptr);
  EXPECT_NE(find_file(r, 1, "/home/user/ünïcödé.txt"), nullptr);

  const json* eicar = find_file(r, 0, "/eicar.com");
  ASSERT_NE(eicar, nullptr);
  EXPECT_EQ(eicar->at("sha256"), eicar_sha256);
  EXPECT_TRUE(has_finding(*eicar, "EICAR_Test_File") || has_finding(*eicar, "eicar-test-file")) << eicar->dump(2);

  for (auto [vol, path] : {std::pair{0, "/photos/holiday.jpg"}, std::pair{1, "/bin/tool.jpg"}}) {
    const json* elf = find_file(r, vol, path);
    ASSERT_NE(elf, nullptr) << path;
    EXPECT_EQ(elf->at("mime"), "application/x-executable");
    EXPECT_TRUE(elf->at("extension_mismatch").get<bool>()) << path;
    EXPECT_TRUE(has_finding(*elf, "extension_mismatch")) << path;
  }

  for (auto [vol, path] : {std::pair{0, "/deleted-secret.txt"}, std::pair{1, "/home/user/gone.txt"}}) {
    const json* gone = find_file(r, vol, path);
    ASSERT_NE(gone, nullptr) << path;
    EXPECT_TRUE(gone->at("deleted").get<bool>()) << path;
    EXPECT_EQ(gone->at("sha256"), deleted_sha256) << path;
  }
  const json* link = find_file(r, 1, "/home/user/link");
  ASSERT_NE(link, nullptr);
  EXPECT_EQ(link->at("type"), "symlink");
  EXPECT_EQ(r.at("verdict"), "flagged");
}

}  // namespace

TEST(Fixtures, GptDiskWithTwoVolumesShowsEverything) {
  const json r = borderscan::test::scan_image(fixture_dir() / "gpt-two-volumes.img");
  expect_gpt_two_volumes(r);
  EXPECT_EQ(r["image"]["format"], "raw");
}

TEST(Fixtures, E01OfTheSameDiskGivesTheSameFiles) {
  const json raw = borderscan::test::scan_image(fixture_dir() / "gpt-two-volumes.img");
  const json ewf = borderscan::test::scan_image(fixture_dir() / "gpt-two-volumes.E01");
  expect_gpt_two_volumes(ewf);
  EXPECT_EQ(ewf["image"]["format"], "ewf");
  ASSERT_EQ(raw["files"].size(), ewf["files"].size());
  for (std::size_t i = 0; i < raw["files"].size(); ++i) {
    EXPECT_EQ(raw["files"][i]["path"], ewf["files"][i]["path"]);
    EXPECT_EQ(raw["files"][i]["sha256"], ewf["files"][i]["sha256"]);
  }
}

TEST(Fixtures, SplitRawFromFirstSegmentOrAllSegments) {
  const fs::path split = fixture_dir() / "split";
  const json first_only = borderscan::test::scan_image(split / "gpt-two-volumes.img.001");
  expect_gpt_two_volumes(first_only);
  // libtsk finds the other segments; the image hash and size cover all of them.
  EXPECT_EQ(first_only["image"]["segments"].size(), 3u);
  EXPECT_EQ(first_only["image"]["size"], 9u * 1024 * 1024);
  const json all = borderscan::test::scan_image(std::vector<fs::path>{
      split / "gpt-two-volumes.img.001", split / "gpt-two-volumes.img.002", split / "gpt-two-volumes.img.003"});
  expect_gpt_two_volumes(all);
  EXPECT_EQ(all["image"]["segments"].size(), 3u);
  EXPECT_EQ(all["image"]["sha256"], first_only["image"]["sha256"]);
  const json whole = borderscan::test::scan_image(fixture_dir() / "gpt-two-volumes.img");
  EXPECT_EQ(all["image"]["sha256"], whole["image"]["sha256"]);
}

TEST(Fixtures, MbrWithLogicalPartitionAndEmptyPartition) {
  const json r = borderscan::test::scan_image(fixture_dir() / "mbr-ext.img");
  ASSERT_EQ(r.at("volumes").size(), 3u);
  std::vector<std::string> systems;
  for (const auto& v : r["volumes"]) {
    EXPECT_EQ(v["scheme"], "mbr");
    systems.push_back(v["filesystem"].is_null() ? "none" : v["filesystem"].get<std::string>());
  }
  // libtsk lists partitions by start sector: primary FAT, logical ext2, empty primary.
  EXPECT_EQ(systems, (std::vector<std::string>{"fat12", "ext2", "none"}));
  EXPECT_NE(find_file(r, 0, "/PRIMARY.TXT"), nullptr);
  const json* eicar = find_file(r, 1, "/data/eicar.com");
  ASSERT_NE(eicar, nullptr);
  EXPECT_EQ(eicar->at("sha256"), eicar_sha256);
  EXPECT_EQ(r.at("verdict"), "flagged");
}

TEST(Fixtures, BareFatExtIsoAndExfat) {
  const json fat = borderscan::test::scan_image(fixture_dir() / "fat-simple.img");
  EXPECT_EQ(fat["volumes"][0]["scheme"], "none");
  EXPECT_EQ(fat["volumes"][0]["filesystem"], "fat12");
  const json* deleted = find_file(fat, 0, "/_ecret.txt");
  ASSERT_NE(deleted, nullptr);
  EXPECT_TRUE(deleted->at("deleted").get<bool>());

  const json ext = borderscan::test::scan_image(fixture_dir() / "ext4-simple.img");
  EXPECT_EQ(ext["volumes"][0]["filesystem"], "ext4");
  const json* old = find_file(ext, 0, "/old.txt");
  ASSERT_NE(old, nullptr);
  EXPECT_TRUE(old->at("deleted").get<bool>());
  EXPECT_NE(find_file(ext, 0, "/docs/deep/nested.txt"), nullptr);

  const json iso = borderscan::test::scan_image(fixture_dir() / "iso-simple.iso");
  EXPECT_EQ(iso["volumes"][0]["filesystem"], "iso9660");
  EXPECT_EQ(iso.at("verdict"), "flagged");  // EICAR

  const json exfat = borderscan::test::scan_image(fixture_dir() / "exfat-simple.img");
  EXPECT_EQ(exfat["volumes"][0]["filesystem"], "exfat");
  EXPECT_EQ(exfat["volumes"][0]["label"], "BSEXFAT");
  EXPECT_EQ(exfat.at("verdict"), "clean");
}

TEST(Fixtures, VhdAndVmdkOfTheSameDiskGiveTheSameFiles) {
  borderscan::test::scratch_dir tmp;
  const fs::path raw = fixture_dir() / "gpt-two-volumes.img";
  const json expected = borderscan::test::scan_image(raw);
  for (const auto& [format, options, file] :
       {std::tuple{"vpc", "-o subformat=fixed", "fixed.vhd"}, std::tuple{"vpc", "", "dynamic.vhd"},
        std::tuple{"vmdk", "", "disk.vmdk"}}) {
    const fs::path out = tmp / file;
    const auto res = borderscan::test::run_command(std::string("qemu-img convert -O ") + format + " " + options + " " +
                                                   borderscan::test::shell_quote(raw.string()) + " " +
                                                   borderscan::test::shell_quote(out.string()));
    ASSERT_EQ(res.exit_code, 0) << res.err;
    const json r = borderscan::test::scan_image(out);
    EXPECT_EQ(r["image"]["format"], std::string(format) == "vpc" ? "vhd" : "vmdk") << file;
    expect_gpt_two_volumes(r);
    ASSERT_EQ(r["files"].size(), expected["files"].size()) << file;
    for (std::size_t i = 0; i < r["files"].size(); ++i) {
      EXPECT_EQ(r["files"][i]["sha256"], expected["files"][i]["sha256"]) << file << " " << r["files"][i]["path"];
    }
  }
}

namespace {

// A FAT disk holding EICAR, and copies of it in the virtual-disk formats
// the scanner reads, made by the tools that write them (ewfacquire, qemu-img;
// the VHD keeps the exact size rather than qemu's CHS rounding).
struct virtual_disks {
  fs::path inner;
  std::map<std::string, fs::path> by_format;  // "E01", "qcow2", "vhd", "vhdx", "vmdk", "vdi"
};

std::string quoted(const fs::path& p) {
  return borderscan::test::shell_quote(p.string());
}

virtual_disks make_virtual_disks(const fs::path& dir) {
  virtual_disks d{dir / "inner.img", {}};
  const fs::path eicar = dir / "eicar.com";
  std::ofstream(eicar) << borderscan::test::eicar();
  std::string cmd = "set -e; mkfs.vfat -C " + quoted(d.inner) + " 2048 >/dev/null; mcopy -i " + quoted(d.inner) + " " +
                    quoted(eicar) + " ::/eicar.com; cd " + quoted(dir / "") +
                    "; ewfacquire -q -u -t disk -c none -S 1G " + quoted(d.inner) + " >/dev/null; ";
  d.by_format["E01"] = dir / "disk.E01";
  const std::vector<std::pair<std::string, std::string>> qemu = {
      {"qcow2", "qcow2"}, {"vpc -o force_size=on", "vhd"}, {"vhdx", "vhdx"}, {"vmdk", "vmdk"}, {"vdi", "vdi"}};
  for (const auto& [format, ext] : qemu) {
    d.by_format[ext] = dir / ("disk." + ext);
    cmd += "qemu-img convert -O " + format + " " + quoted(d.inner) + " " + quoted(d.by_format[ext]) + "; ";
  }
  const auto made = borderscan::test::run_command(cmd);
  EXPECT_EQ(made.exit_code, 0) << made.err;
  return d;
}

std::string file_digest(const char* tool, const fs::path& file) {
  const auto r = borderscan::test::run_command(std::string(tool) + " " + quoted(file));
  return r.out.substr(0, r.out.find(' '));
}

}  // namespace

// Virtual disks stored as files on a stick: each is spooled, opened with its
// libyal library and walked, so the EICAR inside is found under its `!` path.
// VDI, which no Debian library reads, stays an error on its path.
TEST(Fixtures, VirtualDisksInsideTheDeviceAreOpened) {
  borderscan::test::scratch_dir tmp;
  const virtual_disks disks = make_virtual_disks(tmp.path());
  const fs::path stick = tmp / "stick.img";
  std::string cmd = "set -e; mkfs.vfat -C " + quoted(stick) + " 65536 >/dev/null; mcopy -i " + quoted(stick);
  for (const auto& [format, file] : disks.by_format) {
    cmd += " " + quoted(file);
  }
  const auto made = borderscan::test::run_command(cmd + " ::/");
  ASSERT_EQ(made.exit_code, 0) << made.err;

  const json r = borderscan::test::scan_image(stick);
  EXPECT_EQ(r.at("verdict"), "flagged") << r.at("verdict_reason");
  std::set<std::string> found;
  for (const auto& f : r.at("findings")) {
    if (f.at("rule").get<std::string>().find("EICAR") != std::string::npos) {
      found.insert(f.at("path").get<std::string>());
    }
  }
  EXPECT_EQ(found, (std::set<std::string>{"/disk.E01!/eicar.com", "/disk.qcow2!/eicar.com", "/disk.vhd!/eicar.com",
                                          "/disk.vhdx!/eicar.com", "/disk.vmdk!/eicar.com"}))
      << r.at("findings").dump(1) << r.at("errors").dump(1);
  std::set<std::string> not_opened;
  for (const auto& e : r.at("errors")) {
    if (e.at("code") == "embedded_image_not_opened") {
      not_opened.insert(e.at("path").get<std::string>());
      EXPECT_TRUE(e.at("affects_verdict").get<bool>());
    }
  }
  EXPECT_EQ(not_opened, std::set<std::string>{"/disk.vdi"}) << r.at("errors").dump(1);
}

// A qcow2 overlay holds only the blocks written after its base image: without
// the base it is named as not opened, never walked as if it were whole.
TEST(Fixtures, QcowOverlayWithoutItsBaseIsNotOpened) {
  borderscan::test::scratch_dir tmp;
  const virtual_disks disks = make_virtual_disks(tmp.path());
  const fs::path stick = tmp / "stick.img";
  const auto made = borderscan::test::run_command(
      "set -e; cd " + quoted(tmp / "") + "; qemu-img create -q -f qcow2 -b disk.qcow2 -F qcow2 overlay.qcow2; " +
      "mkfs.vfat -C " + quoted(stick) + " 8192 >/dev/null; mcopy -i " + quoted(stick) + " overlay.qcow2 ::/");
  ASSERT_EQ(made.exit_code, 0) << made.err;
  const json r = borderscan::test::scan_image(stick);
  EXPECT_EQ(r.at("verdict"), "incomplete") << r.at("verdict_reason");
  bool named = false;
  for (const auto& e : r.at("errors")) {
    if (e.at("code") == "embedded_image_not_opened" && e.at("path") == "/overlay.qcow2") {
      named = e.at("message").get<std::string>().find("backing image") != std::string::npos;
    }
  }
  EXPECT_TRUE(named) << r.at("errors").dump(1);
}

// The same disk uploaded as an E01, a qcow2, a VHD, a VHDX or a VMDK: walked,
// the report's media hash is the inner disk's, and the E01's acquisition
// hashes are checked against what was read.
TEST(Fixtures, VirtualDiskUploadsAreReadAsTheDeviceInside) {
  borderscan::test::scratch_dir tmp;
  const virtual_disks disks = make_virtual_disks(tmp.path());
  const std::string inner_sha256 = file_digest("sha256sum", disks.inner);
  const std::string inner_md5 = file_digest("md5sum", disks.inner);
  const std::map<std::string, std::string> expected_format = {
      {"E01", "ewf"}, {"qcow2", "qcow"}, {"vhd", "vhd"}, {"vhdx", "vhdx"}, {"vmdk", "vmdk"}};
  for (const auto& [ext, format] : expected_format) {
    SCOPED_TRACE(ext);
    const fs::path file = disks.by_format.at(ext);
    const json r = borderscan::test::scan_image(file);
    EXPECT_EQ(r.at("verdict"), "flagged") << r.at("verdict_reason") << r.at("errors").dump(1);
    const json& img = r.at("image");
    EXPECT_EQ(img.at("format"), format);
    EXPECT_EQ(img.at("sha256"), file_digest("sha256sum", file));
    EXPECT_EQ(img.at("media_sha256"), inner_sha256);
    ASSERT_TRUE(img.at("media").is_object());
    EXPECT_EQ(img.at("media").at("size"), fs::file_size(disks.inner));
    EXPECT_EQ(img.at("media").at("md5"), inner_md5);
    if (ext == "E01") {
      EXPECT_EQ(img.at("media").at("stored_md5"), inner_md5);
      EXPECT_EQ(img.at("media").at("acquisition_verified"), true);
    } else {
      EXPECT_TRUE(img.at("media").at("acquisition_verified").is_null());
    }
  }
  // A raw image received as is: the device's bytes are the bytes received.
  const json raw = borderscan::test::scan_image(disks.inner);
  EXPECT_EQ(raw.at("image").at("media_sha256"), inner_sha256);
  EXPECT_TRUE(raw.at("image").at("media").is_null());
}

// An E01 whose stored data was changed after acquisition: the bytes read no
// longer match the MD5 it stores, a high-severity finding.
TEST(Fixtures, ChangedE01FailsItsAcquisitionHash) {
  borderscan::test::scratch_dir tmp;
  const virtual_disks disks = make_virtual_disks(tmp.path());
  const fs::path e01 = disks.by_format.at("E01");
  // Uncompressed chunks hold the bytes as they are: change one letter of EICAR's string.
  const auto changed = borderscan::test::run_command("set -e; off=$(grep -obUaP 'EICAR-STANDARD' " + quoted(e01) +
                                                     " | head -1 | cut -d: -f1); printf 'X' | dd of=" + quoted(e01) +
                                                     " bs=1 seek=$off conv=notrunc status=none");
  ASSERT_EQ(changed.exit_code, 0) << changed.err;
  const json r = borderscan::test::scan_image(e01);
  EXPECT_EQ(r.at("verdict"), "flagged") << r.at("verdict_reason");
  EXPECT_EQ(r.at("image").at("media").at("acquisition_verified"), false);
  bool mismatch = false;
  for (const auto& f : r.at("findings")) {
    mismatch = mismatch || (f.at("rule") == "acquisition_hash_mismatch" && f.at("severity") == "high");
  }
  EXPECT_TRUE(mismatch) << r.at("findings").dump(1);
}

// Images are often copied compressed: each single-stream compression is
// decompressed once and the device inside walked; the report names both hashes.
TEST(Fixtures, CompressedImagesAreDecompressedOnce) {
  borderscan::test::scratch_dir tmp;
  const virtual_disks disks = make_virtual_disks(tmp.path());
  const std::string inner_sha256 = file_digest("sha256sum", disks.inner);
  const std::vector<std::pair<std::string, std::string>> tools = {
      {"gzip", "gzip -c"}, {"xz", "xz -c -T1"}, {"zstd", "zstd -q -c"}, {"bzip2", "bzip2 -c"}};
  for (const auto& [name, tool] : tools) {
    SCOPED_TRACE(name);
    const fs::path packed = tmp / ("stick.img." + name);
    const auto made = borderscan::test::run_command(tool + " " + quoted(disks.inner) + " > " + quoted(packed));
    ASSERT_EQ(made.exit_code, 0) << made.err;
    const json r = borderscan::test::scan_image(packed);
    EXPECT_EQ(r.at("verdict"), "flagged") << r.at("verdict_reason") << r.at("errors").dump(1);
    EXPECT_EQ(r.at("image").at("compression"), name);
    EXPECT_EQ(r.at("image").at("format"), "raw");
    EXPECT_EQ(r.at("image").at("sha256"), file_digest("sha256sum", packed));
    EXPECT_EQ(r.at("image").at("media_sha256"), inner_sha256);
    EXPECT_EQ(r.at("image").at("media").at("size"), fs::file_size(disks.inner));
    EXPECT_NE(find_file(r, 0, "/eicar.com"), nullptr);
  }
}

// A compressed image cut short fails with the reason; one past the limit is
// walked as far as it was decompressed, the limit recorded.
TEST(Fixtures, CompressedImagesThatAreDamagedOrTooLargeSaySo) {
  borderscan::test::scratch_dir tmp;
  const virtual_disks disks = make_virtual_disks(tmp.path());
  const fs::path whole = tmp / "stick.img.gz";
  const fs::path cut = tmp / "cut.img.gz";
  const auto made = borderscan::test::run_command("set -e; head -c 1000000 /dev/zero | cat " + quoted(disks.inner) +
                                                  " - | gzip -c > " + quoted(whole) + "; head -c 2000 " +
                                                  quoted(whole) + " > " + quoted(cut));
  ASSERT_EQ(made.exit_code, 0) << made.err;

  const json damaged = borderscan::test::scan_image(cut);
  EXPECT_EQ(damaged.at("verdict"), "error");
  EXPECT_NE(damaged.at("verdict_reason").get<std::string>().find("damaged"), std::string::npos)
      << damaged.at("verdict_reason");

  borderscan::scanner::limits lim;
  lim.max_decompressed_image_bytes = fs::file_size(disks.inner);
  const json limited = borderscan::test::scan_image(whole, lim);
  EXPECT_EQ(limited.at("verdict"), "flagged") << limited.at("verdict_reason");
  bool recorded = false;
  for (const auto& l : limited.at("limits_hit")) {
    recorded = recorded || l.at("limit") == "max_decompressed_image_bytes";
  }
  EXPECT_TRUE(recorded) << limited.at("limits_hit").dump(1);
  EXPECT_EQ(limited.at("image").at("media").at("size"), fs::file_size(disks.inner));
}
