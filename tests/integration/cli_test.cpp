// The `borderscan scan` command: exit codes, output, rule errors.
#include <gtest/gtest.h>

#include <fstream>

#include "support/test_support.hpp"

namespace fs = std::filesystem;
using borderscan::test::run_command;
using borderscan::test::shell_quote;
using nlohmann::json;

namespace {

std::string cli() {
  return shell_quote(BORDERSCAN_CLI);
}

}  // namespace

TEST(Cli, CleanImageExitsZeroWithReportOnStdout) {
  const auto res = run_command(cli() + " scan " + shell_quote(borderscan::test::clean_image().string()));
  EXPECT_EQ(res.exit_code, 0) << res.err;
  const json r = json::parse(res.out);
  borderscan::test::validate_report(r);
  EXPECT_EQ(r.at("verdict"), "clean");
  EXPECT_NE(res.err.find("verdict:  clean"), std::string::npos) << res.err;  // human summary on stderr
}

TEST(Cli, FlaggedImageExitsOneAndWritesOutputFile) {
  borderscan::test::scratch_dir tmp;
  const fs::path out = tmp / "report.json";
  const auto res = run_command(cli() + " scan -q -o " + shell_quote(out.string()) + " " +
                               shell_quote((borderscan::test::fixture_dir() / "fat-simple.img").string()));
  EXPECT_EQ(res.exit_code, 1) << res.err;
  EXPECT_TRUE(res.out.empty());
  std::ifstream in(out);
  const json r = json::parse(in);
  borderscan::test::validate_report(r);
  EXPECT_EQ(r.at("verdict"), "flagged");
}

TEST(Cli, IncompleteImageExitsThree) {
  // 256 KiB of noise: no partition table, no file system.
  borderscan::test::scratch_dir tmp;
  const fs::path noise = tmp / "noise.img";
  {
    std::ofstream out(noise, std::ios::binary);
    std::uint32_t x = 2463534242U;
    for (int i = 0; i < 256 * 1024; ++i) {
      x ^= x << 13;
      x ^= x >> 17;
      x ^= x << 5;
      out.put(static_cast<char>(x));
    }
  }
  const auto res = run_command(cli() + " scan -q " + shell_quote(noise.string()));
  EXPECT_EQ(res.exit_code, 3) << res.err;
}

TEST(Cli, UnusableImageOrBadArgumentsExitTwoWithOneLineReason) {
  borderscan::test::scratch_dir tmp;
  std::ofstream(tmp / "empty.img").flush();
  const auto empty = run_command(cli() + " scan -q " + shell_quote((tmp / "empty.img").string()));
  EXPECT_EQ(empty.exit_code, 2);
  EXPECT_NE(empty.err.find("image is empty"), std::string::npos) << empty.err;

  const auto missing = run_command(cli() + " scan -q /nonexistent/image.dd");
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("/nonexistent/image.dd"), std::string::npos) << missing.err;

  EXPECT_EQ(run_command(cli() + " scan").exit_code, 2);
  EXPECT_EQ(run_command(cli() + " scan --no-such-flag x.img").exit_code, 2);
}

TEST(Cli, RuleCompileErrorStopsWithFileAndLine) {
  borderscan::test::scratch_dir tmp;
  std::ofstream(tmp / "bad.yar") << "rule ok { condition: true }\nrule broken { condition: nosuchthing }\n";
  const auto res = run_command(cli() + " scan --rules " + shell_quote((tmp / "bad.yar").string()) + " " +
                               shell_quote((borderscan::test::fixture_dir() / "fat-simple.img").string()));
  EXPECT_EQ(res.exit_code, 2);
  EXPECT_NE(res.err.find("bad.yar:2:"), std::string::npos) << res.err;
  EXPECT_TRUE(res.out.empty());
}

TEST(Cli, ExtraHashSetFlagsAFileAsKnownBad) {
  borderscan::test::scratch_dir tmp;
  // SHA-256 of "hello from ext4\n" in ext4-simple.img? Use the deleted-file content shared by all fixtures.
  std::ofstream(tmp / "case.txt") << "30a92ad805201268c3bd2b04f9da1998d208314be72a8e7145e7f4ad145417fa case-4711\n";
  const auto res = run_command(cli() + " scan -q --rules " + shell_quote((tmp / "none").string() + ".yar") +
                               " --hashset " + shell_quote((tmp / "case.txt").string() + ":known-bad") + " " +
                               shell_quote((borderscan::test::fixture_dir() / "ext4-simple.img").string()));
  // The rules path does not exist: that is a usage error, reported before scanning.
  EXPECT_EQ(res.exit_code, 2);

  std::ofstream(tmp / "empty.yar") << "";
  const auto ok = run_command(cli() + " scan -q --rules " + shell_quote((tmp / "empty.yar").string()) + " --hashset " +
                              shell_quote((tmp / "case.txt").string()) + " " +
                              shell_quote((borderscan::test::fixture_dir() / "ext4-simple.img").string()));
  EXPECT_EQ(ok.exit_code, 1) << ok.err;
  const json r = json::parse(ok.out);
  bool hit = false;
  for (const auto& f : r.at("findings")) {
    hit = hit || (f.at("source") == "hashset" && f.at("rule") == "case-4711");
  }
  EXPECT_TRUE(hit) << ok.out.substr(0, 2000);
}

TEST(Cli, OutputToDevNullOrAPipeWorks) {
  const std::string image = shell_quote(borderscan::test::clean_image().string());
  EXPECT_EQ(run_command(cli() + " scan -q -o /dev/null " + image).exit_code, 0);
  const auto piped = run_command(cli() + " scan -q -o /dev/stdout " + image + " | wc -c");
  EXPECT_EQ(piped.exit_code, 0) << piped.err;
  EXPECT_GT(std::stoul(piped.out), 1000U);
}
