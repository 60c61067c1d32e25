// Encrypted volumes where no file system opens: LUKS 1 and 2 made by
// cryptsetup, BitLocker and FileVault 2 headers written here, a partition of
// AES-CTR keystream (no header: the entropy rule) and a partition of xz
// output (compressed, not encrypted). Each encrypted one is an
// `encrypted_volume` finding and keeps the verdict from `clean`.
#include <gtest/gtest.h>

#include <array>
#include <fstream>
#include <string>
#include <vector>

#include "support/test_support.hpp"

namespace fs = std::filesystem;
using borderscan::test::find_file;
using borderscan::test::run_command;
using nlohmann::json;

namespace {

std::string q(const fs::path& p) {
  return borderscan::test::shell_quote(p.string());
}

// Fast key derivation: the tests read headers, they never unlock.
std::string luks_format(const std::string& type, const fs::path& file, const std::string& size) {
  return "truncate -s " + size + " " + q(file) + "; printf pw | cryptsetup luksFormat --type " + type +
         " --batch-mode --pbkdf pbkdf2 --pbkdf-force-iterations 1000 " +
         (type == "luks2" ? "--luks2-metadata-size 16k --luks2-keyslots-size 512k " : "") + "-d - " + q(file) +
         " 2>/dev/null; ";
}

std::string uuid_of(const fs::path& luks) {
  const auto r = run_command("cryptsetup luksUUID " + q(luks));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::string s = r.out;
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) {
    s.pop_back();
  }
  return s;
}

const json* finding_on(const json& report, int volume, const std::string& rule) {
  for (const auto& f : report.at("findings")) {
    if (f.at("rule") == rule && f.at("volume") == volume) {
      return &f;
    }
  }
  return nullptr;
}

bool has_error(const json& report, int volume, const std::string& code) {
  for (const auto& e : report.at("errors")) {
    if (e.at("code") == code && e.at("volume") == volume) {
      return true;
    }
  }
  return false;
}

// Checks one encrypted volume: its `encryption`, its finding (meta in step
// with it) and that the raw head is still scanned and the volume still named
// as holding no file system.
void expect_encrypted(const json& r, int volume, const std::string& type, const std::string& detected_by) {
  SCOPED_TRACE("volume " + std::to_string(volume) + " " + type);
  const json& v = r.at("volumes").at(volume);
  ASSERT_TRUE(v.at("encryption").is_object()) << v.dump(1);
  EXPECT_EQ(v["encryption"]["type"], type);
  EXPECT_EQ(v["encryption"]["detected_by"], detected_by);
  const json* f = finding_on(r, volume, "encrypted_volume");
  ASSERT_NE(f, nullptr) << r.at("findings").dump(1);
  EXPECT_EQ(f->at("source"), "volume");
  EXPECT_EQ(f->at("path"), "$volume-head");
  EXPECT_EQ(f->at("severity"), "low");
  for (const char* key : {"type", "cipher", "identifiers", "key_protectors"}) {
    EXPECT_EQ(f->at("meta").at(key), v["encryption"].at(key)) << key;
  }
  EXPECT_NE(find_file(r, volume, "$volume-head"), nullptr);
  EXPECT_TRUE(has_error(r, volume, "no_filesystem"));
}

// Flag only at `high`: the shipped YARA rules already flag LUKS and BitLocker
// headers at `medium`; what is checked here is the verdict without them.
borderscan::scanner::limits high_threshold() {
  borderscan::scanner::limits lim;
  lim.flag_threshold = borderscan::scanner::severity::high;
  return lim;
}

}  // namespace

TEST(FixturesEncryptedVolumes, LuksWholeImagesNameCipherUuidAndKeySlots) {
  borderscan::test::scratch_dir tmp;
  const fs::path luks1 = tmp / "luks1.img", luks2 = tmp / "luks2.img";
  const fs::path token = tmp / "token.json";
  std::ofstream(token) << R"({"type":"systemd-fido2","keyslots":["0"],"fido2-credential":"AA==",)"
                       << R"("fido2-salt":"AA==","fido2-rp":"io.systemd.cryptsetup"})";
  const auto made = run_command("set -e; " + luks_format("luks1", luks1, "4M") + luks_format("luks2", luks2, "4M") +
                                "cryptsetup token import --json-file " + q(token) + " " + q(luks2) +
                                "; cryptsetup config --label EVIDENCE " + q(luks2));
  ASSERT_EQ(made.exit_code, 0) << made.err;

  const json r1 = borderscan::test::scan_image(luks1, high_threshold());
  expect_encrypted(r1, 0, "luks1", "signature");
  const json& e1 = r1["volumes"][0]["encryption"];
  EXPECT_EQ(e1["cipher"], "aes-xts-plain64");
  EXPECT_EQ(e1["identifiers"]["uuid"], uuid_of(luks1));
  EXPECT_EQ(e1["identifiers"]["hash"], "sha256");
  EXPECT_EQ(e1["key_protectors"], json::array({"keyslot-0:pbkdf2-passphrase"}));
  EXPECT_EQ(r1.at("verdict"), "incomplete");
  EXPECT_EQ(r1.at("verdict_reason"), "encrypted volume not examined");

  const json r2 = borderscan::test::scan_image(luks2, high_threshold());
  expect_encrypted(r2, 0, "luks2", "signature");
  const json& e2 = r2["volumes"][0]["encryption"];
  EXPECT_EQ(e2["cipher"], "aes-xts-plain64");
  EXPECT_EQ(e2["identifiers"]["uuid"], uuid_of(luks2));
  EXPECT_EQ(e2["identifiers"]["label"], "EVIDENCE");
  EXPECT_EQ(e2["key_protectors"], json::array({"keyslot-0:pbkdf2-passphrase", "token-0:systemd-fido2"}));
  EXPECT_EQ(r2.at("verdict"), "incomplete");
  EXPECT_EQ(r2.at("verdict_reason"), "encrypted volume not examined");

  // At the default threshold the shipped LUKS rule flags it: flagged is never weaker than incomplete.
  EXPECT_EQ(borderscan::test::scan_image(luks1).at("verdict"), "flagged");
}

// One MBR disk: a FAT file system, LUKS1, LUKS2 and 8 MiB of AES-256-CTR
// keystream under a fixed key (random-looking, deterministic). The FAT is
// still walked. Then xz output as an image of its own: compressed, not
// encrypted.
TEST(FixturesEncryptedVolumes, PartitionsOfOneDiskAreJudgedEachOnItsOwn) {
  borderscan::test::scratch_dir tmp;
  const fs::path disk = tmp / "disk.img", fat = tmp / "fat.img", hello = tmp / "hello.txt";
  std::ofstream(hello) << "hello from the clean partition\n";
  const std::string keystream =
      "head -c 8M /dev/zero | openssl enc -aes-256-ctr -nosalt -K "
      "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f -iv 000102030405060708090a0b0c0d0e0f";
  std::string cmd =
      "set -e; cd " + q(tmp.path()) + "; mkfs.vfat -C " + q(fat) + " 4096 >/dev/null; mcopy -i " + q(fat) + " " +
      q(hello) + " ::/hello.txt; " + luks_format("luks1", tmp / "l1.img", "4M") +
      luks_format("luks2", tmp / "l2.img", "4M") + keystream + " > random.bin; " +
      // Compressible text (base64 of keystream), so that xz really compresses: dense output behind a header.
      keystream + " | head -c 3M | base64 | xz -0 -T1 > data.xz; truncate -s 32M " + q(disk) + "; " +
      "printf 'label: dos\\nstart=2048,size=8192,type=c\\nstart=10240,size=8192,type=83\\n"
      "start=18432,size=8192,type=83\\nstart=26624,size=16384,type=83\\n' | sfdisk -q " +
      q(disk) + "; ";
  const std::vector<std::pair<std::string, int>> parts = {
      {"fat.img", 2048}, {"l1.img", 10240}, {"l2.img", 18432}, {"random.bin", 26624}};
  for (const auto& [file, sector] : parts) {
    cmd +=
        "dd if=" + file + " of=" + q(disk) + " bs=512 seek=" + std::to_string(sector) + " conv=notrunc status=none; ";
  }
  const auto made = run_command(cmd + "test $(stat -c %s data.xz) -gt 1100000");
  ASSERT_EQ(made.exit_code, 0) << made.err;

  const json r = borderscan::test::scan_image(disk, high_threshold());
  ASSERT_EQ(r.at("volumes").size(), 4u);
  EXPECT_EQ(r["volumes"][0]["filesystem"], "fat12");
  EXPECT_TRUE(r["volumes"][0]["encryption"].is_null());
  const json* clean = find_file(r, 0, "/hello.txt");
  ASSERT_NE(clean, nullptr);
  EXPECT_TRUE(clean->at("content_complete").get<bool>());

  expect_encrypted(r, 1, "luks1", "signature");
  EXPECT_EQ(r["volumes"][1]["encryption"]["identifiers"]["uuid"], uuid_of(tmp / "l1.img"));
  expect_encrypted(r, 2, "luks2", "signature");
  EXPECT_EQ(r["volumes"][2]["encryption"]["identifiers"]["uuid"], uuid_of(tmp / "l2.img"));
  expect_encrypted(r, 3, "unknown", "entropy");
  const json& guess = r["volumes"][3]["encryption"];
  EXPECT_TRUE(guess["cipher"].is_null());
  ASSERT_EQ(guess["notes"].size(), 1u);
  EXPECT_NE(guess["notes"][0].get<std::string>().find("possibly encrypted (VeraCrypt/TrueCrypt-like)"),
            std::string::npos);
  EXPECT_EQ(r.at("verdict"), "incomplete");
  EXPECT_EQ(r.at("verdict_reason"), "encrypted volume not examined");

  // Compressed is not encrypted: xz output is as dense, but it starts with a header libmagic names.
  const json x = borderscan::test::scan_image(tmp / "data.xz", high_threshold());
  EXPECT_TRUE(x["volumes"][0]["encryption"].is_null()) << x["volumes"][0].dump(1);
  EXPECT_EQ(finding_on(x, 0, "encrypted_volume"), nullptr);
  EXPECT_TRUE(has_error(x, 0, "no_filesystem"));
  EXPECT_EQ(x.at("verdict_reason"), "part of the image could not be read");
}

// A disk image stored as a file on a stick, its one partition LUKS: the
// finding lands on the image file, and the verdict is still not clean.
TEST(FixturesEncryptedVolumes, EncryptedPartitionOfAnEmbeddedDiskImageIsNamed) {
  borderscan::test::scratch_dir tmp;
  const fs::path stick = tmp / "stick.img";
  const auto made = run_command(
      "set -e; cd " + q(tmp.path()) + "; " + luks_format("luks1", tmp / "l1.img", "4M") +
      "truncate -s 6M backup.img; printf 'label: dos\\nstart=2048,size=8192,type=83\\n' | sfdisk -q backup.img; "
      "dd if=l1.img of=backup.img bs=512 seek=2048 conv=notrunc status=none; mkfs.vfat -C " +
      q(stick) + " 16384 >/dev/null; mcopy -i " + q(stick) + " backup.img ::/backup.img");
  ASSERT_EQ(made.exit_code, 0) << made.err;

  const json r = borderscan::test::scan_image(stick, high_threshold());
  const json* backup = find_file(r, 0, "/backup.img");
  ASSERT_NE(backup, nullptr);
  const json* f = nullptr;
  for (const auto& fi : backup->at("findings")) {
    f = fi.at("rule") == "encrypted_volume" ? &fi : f;
  }
  ASSERT_NE(f, nullptr) << backup->dump(1);
  EXPECT_EQ(f->at("path"), "/backup.img");
  EXPECT_EQ(f->at("meta").at("type"), "luks1");
  EXPECT_EQ(f->at("meta").at("embedded_volume"), "vol0");
  EXPECT_EQ(f->at("meta").at("identifiers").at("uuid"), uuid_of(tmp / "l1.img"));
  EXPECT_EQ(r.at("verdict"), "incomplete");
  EXPECT_EQ(r.at("verdict_reason"), "encrypted volume not examined");
}

namespace {

// Writes `size` zero bytes with `header` at the start.
void write_image(const fs::path& path, const std::vector<std::uint8_t>& header, std::size_t size) {
  std::vector<char> bytes(size, 0);
  std::copy(header.begin(), header.end(), bytes.begin());
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void put(std::vector<std::uint8_t>& b, std::size_t at, std::initializer_list<std::uint8_t> bytes) {
  std::copy(bytes.begin(), bytes.end(), b.begin() + static_cast<std::ptrdiff_t>(at));
}

void put_le(std::vector<std::uint8_t>& b, std::size_t at, std::uint64_t v, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    b[at + i] = static_cast<std::uint8_t>(v >> (8 * i));
  }
}

}  // namespace

// No tool on Debian writes BitLocker or CoreStorage volumes, so the test
// writes their headers. What libbde and libfvde take as the signature:
// - BitLocker (libyal/libbde, documentation "BitLocker Drive Encryption (BDE)
//   format", section "Volume header", Windows 7 layout): boot entry point
//   EB 58 90, "-FVE-FS-" at offset 3, bytes per sector at 11, and the BitLocker
//   identifier GUID 4967d63b-2e29-4ad8-8399-f6a339e3d001 at offset 160.
// - FileVault 2 (libyal/libfvde, documentation "FileVault Drive Encryption
//   (FVDE) format", section "Physical volume header"): format version 1 at 8,
//   block type 0x0010 at 10, "CS" at 88, block size at 96, encryption method
//   2 (AES-XTS) at 172, physical volume and volume group UUIDs at 304 and 320.
// Headers alone carry no FVE metadata block and no valid CoreStorage checksum:
// both libraries recognise the signature and then cannot read further, which
// the report says in the volume's encryption notes.
TEST(FixturesEncryptedVolumes, BitLockerAndFileVaultHeadersAreRecognised) {
  borderscan::test::scratch_dir tmp;
  std::vector<std::uint8_t> bde(512, 0);
  put(bde, 0, {0xeb, 0x58, 0x90, '-', 'F', 'V', 'E', '-', 'F', 'S', '-'});
  put_le(bde, 11, 512, 2);
  put(bde, 160, {0x3b, 0xd6, 0x67, 0x49, 0x29, 0x2e, 0xd8, 0x4a, 0x83, 0x99, 0xf6, 0xa3, 0x39, 0xe3, 0xd0, 0x01});
  put(bde, 510, {0x55, 0xaa});
  write_image(tmp / "bitlocker.img", bde, 2 << 20);

  std::vector<std::uint8_t> cs(512, 0);
  put_le(cs, 8, 1, 2);
  put_le(cs, 10, 0x0010, 2);
  put_le(cs, 48, 512, 4);
  put(cs, 88, {'C', 'S'});
  put_le(cs, 90, 1, 4);
  put_le(cs, 96, 4096, 4);
  put_le(cs, 168, 16, 4);
  put_le(cs, 172, 2, 4);
  for (std::uint8_t i = 0; i < 16; ++i) {
    cs[304 + i] = static_cast<std::uint8_t>(0x10 + i);
    cs[320 + i] = static_cast<std::uint8_t>(0xa0 + i);
  }
  write_image(tmp / "filevault.img", cs, 2 << 20);

  const json b = borderscan::test::scan_image(tmp / "bitlocker.img", high_threshold());
  expect_encrypted(b, 0, "bitlocker", "signature");
  const json& be = b["volumes"][0]["encryption"];
  ASSERT_FALSE(be["notes"].empty());
  EXPECT_NE(be["notes"][0].get<std::string>().find("libbde recognised the signature but cannot read the FVE metadata"),
            std::string::npos)
      << be.dump(1);
  EXPECT_EQ(b.at("verdict"), "incomplete");
  EXPECT_EQ(b.at("verdict_reason"), "encrypted volume not examined");

  const json f = borderscan::test::scan_image(tmp / "filevault.img");
  expect_encrypted(f, 0, "filevault2", "signature");
  const json& fe = f["volumes"][0]["encryption"];
  EXPECT_EQ(fe["cipher"], "aes-128-xts");
  EXPECT_EQ(fe["identifiers"]["physical_volume_uuid"], "10111213-1415-1617-1819-1a1b1c1d1e1f");
  EXPECT_EQ(fe["identifiers"]["volume_group_uuid"], "a0a1a2a3-a4a5-a6a7-a8a9-aaabacadaeaf");
  ASSERT_FALSE(fe["notes"].empty());
  EXPECT_NE(fe["notes"][0].get<std::string>().find("libfvde recognised the CoreStorage signature"), std::string::npos);
  EXPECT_EQ(f.at("verdict"), "incomplete");  // no shipped YARA rule names CoreStorage
  EXPECT_EQ(f.at("verdict_reason"), "encrypted volume not examined");
}

namespace {

// One FVE metadata entry: size, entry type, value type, version 1, data
// ("FVE metadata entry (version 1)").
std::vector<std::uint8_t> fve_entry(std::uint16_t type, std::uint16_t value_type,
                                    const std::vector<std::uint8_t>& data) {
  std::vector<std::uint8_t> e(8);
  put_le(e, 0, 8 + data.size(), 2);
  put_le(e, 2, type, 2);
  put_le(e, 4, value_type, 2);
  put_le(e, 6, 1, 2);
  e.insert(e.end(), data.begin(), data.end());
  return e;
}

// A volume master key entry (value type 0x0008): key identifier, FILETIME, protection type.
std::vector<std::uint8_t> fve_vmk(std::uint8_t id_byte, std::uint16_t protection) {
  std::vector<std::uint8_t> d(28, id_byte);
  put_le(d, 16, 132000000000000000ULL, 8);
  put_le(d, 24, 0, 2);
  put_le(d, 26, protection, 2);
  return fve_entry(0x0002, 0x0008, d);
}

}  // namespace

// A BitLocker (Windows 7) volume with FVE metadata that libbde reads without a
// key, laid out from libbde's "BitLocker Drive Encryption (BDE) format"
// (sections "Volume header", "FVE metadata block header version 2", "FVE
// metadata header (version 1)", "FVE metadata entry", "FVE Volume Master Key"):
// three metadata blocks, each a description, a password and a recovery-password
// protected VMK and the volume header block entry. No key material: the
// volume stays locked, and its kind of protection is what the report names.
TEST(FixturesEncryptedVolumes, BitLockerMetadataNamesMethodAndKeyProtectors) {
  borderscan::test::scratch_dir tmp;
  constexpr std::size_t size = 4 << 20;
  const std::array<std::uint64_t, 3> blocks = {0x100000, 0x180000, 0x200000};
  constexpr std::uint64_t header_copy = 0x280000;
  std::vector<std::uint8_t> img(size, 0);
  put(img, 0, {0xeb, 0x58, 0x90, '-', 'F', 'V', 'E', '-', 'F', 'S', '-'});
  put_le(img, 11, 512, 2);
  img[13] = 8;
  put(img, 160, {0x3b, 0xd6, 0x67, 0x49, 0x29, 0x2e, 0xd8, 0x4a, 0x83, 0x99, 0xf6, 0xa3, 0x39, 0xe3, 0xd0, 0x01});
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    put_le(img, 176 + 8 * i, blocks[i], 8);
  }
  put(img, 510, {0x55, 0xaa});

  std::vector<std::uint8_t> description;
  for (const char c : std::string("BORDER-PC E: 17.04.2019")) {
    description.insert(description.end(), {static_cast<std::uint8_t>(c), 0});  // UTF-16LE
  }
  description.insert(description.end(), {0, 0});
  std::vector<std::uint8_t> entries = fve_entry(0x0007, 0x0002, description);
  for (const auto& e : {fve_vmk(0x11, 0x2000), fve_vmk(0x66, 0x0800)}) {
    entries.insert(entries.end(), e.begin(), e.end());
  }
  std::vector<std::uint8_t> where(16);
  put_le(where, 0, header_copy, 8);
  put_le(where, 8, 8192, 8);
  const auto header_block = fve_entry(0x000f, 0x000f, where);
  entries.insert(entries.end(), header_block.begin(), header_block.end());

  std::vector<std::uint8_t> meta(48, 0);
  put_le(meta, 0, 48 + entries.size(), 4);
  put_le(meta, 4, 1, 4);
  put_le(meta, 8, 48, 4);
  put_le(meta, 12, 48 + entries.size(), 4);
  const std::array<std::uint8_t, 16> volume_guid = {0xde, 0xc0, 0xad, 0x0b, 0x34, 0x12, 0x78, 0x56,
                                                    0x9a, 0xbc, 0xde, 0xf0, 0x12, 0x34, 0x56, 0x78};
  std::copy(volume_guid.begin(), volume_guid.end(), meta.begin() + 16);
  put_le(meta, 32, 1, 4);
  put_le(meta, 36, 0x8004, 4);  // AES-XTS 128-bit
  put_le(meta, 40, 132000000000000000ULL, 8);
  meta.insert(meta.end(), entries.begin(), entries.end());
  for (const std::uint64_t at : blocks) {
    std::vector<std::uint8_t> block_header(64, 0);
    put(block_header, 0, {'-', 'F', 'V', 'E', '-', 'F', 'S', '-'});
    put_le(block_header, 10, 2, 2);
    put_le(block_header, 12, 4, 2);
    put_le(block_header, 14, 4, 2);
    put_le(block_header, 16, size, 8);
    put_le(block_header, 28, 16, 4);
    for (std::size_t i = 0; i < blocks.size(); ++i) {
      put_le(block_header, 32 + 8 * i, blocks[i], 8);
    }
    put_le(block_header, 56, header_copy, 8);
    std::copy(block_header.begin(), block_header.end(), img.begin() + static_cast<std::ptrdiff_t>(at));
    std::copy(meta.begin(), meta.end(), img.begin() + static_cast<std::ptrdiff_t>(at + 64));
  }
  write_image(tmp / "bitlocker.img", img, size);

  const json r = borderscan::test::scan_image(tmp / "bitlocker.img", high_threshold());
  expect_encrypted(r, 0, "bitlocker", "signature");
  const json& e = r["volumes"][0]["encryption"];
  EXPECT_EQ(e["cipher"], "aes-128-xts");
  EXPECT_EQ(e["identifiers"]["volume_guid"], "0badc0de-1234-5678-9abc-def012345678");
  EXPECT_EQ(e["identifiers"]["created"], "2019-04-17T18:40:00Z");
  EXPECT_EQ(e["identifiers"]["description"], "BORDER-PC E: 17.04.2019");
  EXPECT_EQ(e["key_protectors"], json::array({"password", "recovery-password"}));
  EXPECT_TRUE(e["notes"].empty()) << e.dump(1);
  EXPECT_EQ(r.at("verdict_reason"), "encrypted volume not examined");
}

// APFS containers made by mkapfs (apfsprogs), as the whole image and inside a
// GPT partition beside a FAT one. Linux has no APFS writer outside the kernel
// (mounting needs the out-of-tree module and root), so the volume holds no
// files: what is tested is that the container's volume is listed, opened
// through libtsk's pool API and its (empty) root walked, and that the scan is
// clean rather than "no file system" (tests/data/README.md).
TEST(FixturesApfs, ContainersAreListedAndTheirVolumesWalked) {
  borderscan::test::scratch_dir tmp;
  const fs::path whole = tmp / "apfs.img", disk = tmp / "gpt-apfs.img", fat = tmp / "fat.img";
  const fs::path hello = tmp / "hello.txt";
  std::ofstream(hello) << "beside the APFS container\n";
  const auto made = run_command(
      "set -e; truncate -s 128M " + q(whole) + "; mkapfs -L BORDERVOL " + q(whole) + " >/dev/null; truncate -s 140M " +
      q(disk) +
      "; printf 'label: gpt\\nstart=2048,size=262144,type=7C3457EF-0000-11AA-AA11-00306543ECAC\\n"
      "start=264192,size=8192,type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7\\n' | sfdisk -q " +
      q(disk) + "; dd if=" + q(whole) + " of=" + q(disk) + " bs=512 seek=2048 conv=notrunc,sparse status=none; " +
      "mkfs.vfat -C " + q(fat) + " 4096 >/dev/null; mcopy -i " + q(fat) + " " + q(hello) +
      " ::/hello.txt; dd if=" + q(fat) + " of=" + q(disk) + " bs=512 seek=264192 conv=notrunc status=none");
  ASSERT_EQ(made.exit_code, 0) << made.err;

  const json r = borderscan::test::scan_image(whole);
  ASSERT_EQ(r.at("volumes").size(), 1u);
  const json& v = r["volumes"][0];
  EXPECT_EQ(v["scheme"], "apfs");
  EXPECT_EQ(v["filesystem"], "apfs");
  EXPECT_EQ(v["description"], "APFS volume BORDERVOL");
  EXPECT_TRUE(v["encryption"].is_null());
  EXPECT_TRUE(r.at("errors").empty()) << r.at("errors").dump(1);
  EXPECT_EQ(r.at("verdict"), "clean");

  const json g = borderscan::test::scan_image(disk);
  ASSERT_EQ(g.at("volumes").size(), 2u);
  EXPECT_EQ(g["volumes"][0]["scheme"], "apfs");
  EXPECT_EQ(g["volumes"][0]["filesystem"], "apfs");
  EXPECT_EQ(g["volumes"][0]["offset"], 2048 * 512);
  EXPECT_NE(g["volumes"][0]["notes"][0].get<std::string>().find("in the APFS container of"), std::string::npos);
  EXPECT_EQ(g["volumes"][1]["scheme"], "gpt");
  EXPECT_NE(find_file(g, 1, "/hello.txt"), nullptr);
  EXPECT_TRUE(g.at("errors").empty()) << g.at("errors").dump(1);
  EXPECT_EQ(g.at("verdict"), "clean");
}
