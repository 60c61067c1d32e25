// Report signatures (evidence/report_signature.hpp): made in place on a
// report file, checked while streaming it, broken by any changed byte.
#include "borderscan/evidence/report_signature.hpp"

#include <sys/stat.h>

#include <gtest/gtest.h>

#include <fstream>

#include "borderscan/scanner/digest.hpp"
#include "server_test_support.hpp"

namespace borderscan::evidence {
namespace {

namespace fs = std::filesystem;
using server::test_support::read_file;

const std::string canonical = "{\n  \"schema\": \"borderscan.report/v1\",\n  \"files\": [],\n  \"warnings\": []\n}\n";

fs::path write(const fs::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
  return p;
}

TEST(ReportSignature, SignsInPlaceAndTheCanonicalFormComesBackByteForByte) {
  test::scratch_dir dir;
  const auto key = signing_key::load_or_create(dir / "keys" / "k.pem");
  const fs::path report = write(dir / "r.json", canonical);
  sign_report_file(report, key, scanner::sha256_hex(canonical));
  const std::string signed_text = read_file(report);
  const auto member_at =
      signed_text.find(",\"signature\":{\"alg\":\"Ed25519\",\"key_id\":\"" + key.public_part().key_id());
  ASSERT_NE(member_at, std::string::npos) << signed_text;
  EXPECT_TRUE(signed_text.ends_with("}}\n"));
  const auto parsed = nlohmann::json::parse(signed_text);
  EXPECT_EQ(parsed.at("signature").at("alg"), "Ed25519");
  std::string without = signed_text;
  without.erase(member_at, signed_text.size() - 2 - member_at);  // the member, up to the closing brace
  EXPECT_EQ(without, canonical);

  const auto outcome = verify_report_file(report, key.public_part());
  EXPECT_EQ(outcome.result, verification::valid) << outcome.detail;
  EXPECT_EQ(outcome.key_id, key.public_part().key_id());
}

TEST(ReportSignature, AnyChangedByteOrAnotherKeyFails) {
  test::scratch_dir dir;
  const auto key = signing_key::load_or_create(dir / "k.pem");
  const fs::path report = write(dir / "r.json", canonical);
  sign_report_file(report, key, scanner::sha256_hex(canonical));
  const std::string good = read_file(report);
  for (std::size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    write(report, bad);
    EXPECT_NE(verify_report_file(report, key.public_part()).result, verification::valid) << "byte " << i;
  }
  write(report, good);
  const auto other = signing_key::load_or_create(dir / "other.pem");
  const auto outcome = verify_report_file(report, other.public_part());
  EXPECT_EQ(outcome.result, verification::invalid);
  EXPECT_NE(outcome.detail.find("not with the given key"), std::string::npos) << outcome.detail;
  write(report, canonical);
  EXPECT_EQ(verify_report_file(report, key.public_part()).result, verification::not_signed);
}

TEST(ReportSignature, TheKeyIsMadeOnceOwnerOnlyAndReloaded) {
  test::scratch_dir dir;
  const mode_t old = ::umask(022);
  const fs::path file = dir / "keys" / "report-signing.pem";
  const auto made = signing_key::load_or_create(file);
  ::umask(old);
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600U);
  ASSERT_EQ(::stat(file.parent_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700U);
  const auto again = signing_key::load_or_create(file);
  EXPECT_EQ(again.public_part().key_id(), made.public_part().key_id());
  EXPECT_EQ(again.public_part().key_id().size(), 16U);
  const auto from_pem = public_key::from_pem(made.public_part().pem());
  EXPECT_EQ(from_pem.key_id(), made.public_part().key_id());
  EXPECT_THROW(public_key::from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"), key_error);
  write(dir / "junk.pem", "not a key");
  EXPECT_THROW(signing_key::load_or_create(dir / "junk.pem"), key_error);
}

}  // namespace
}  // namespace borderscan::evidence
