// The `borderscan scan` command: exit codes, output, rule errors.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>

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
  EXPECT_NE(res.err.find("verdict   CLEAN"), std::string::npos) << res.err;  // human summary on stderr
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

// --rules and --hashset take one value per occurrence, so the image may stand
// anywhere: before, between or after them (they used to swallow it).
namespace {

std::string arg(const fs::path& p) {
  return shell_quote(p.string());
}

// Two rules, each matching one file of fat-simple.img.
void write_two_rules(const fs::path& dir) {
  std::ofstream(dir / "a.yar") << "rule cli_eicar_body { strings: $a = \"STANDARD-ANTIVIRUS-TEST-FILE\" "
                                  "condition: $a }\n";
  std::ofstream(dir / "b.yar") << "rule cli_readme_text { strings: $a = \"Borderscan FAT12 fixture\" "
                                  "condition: $a }\n";
}

std::set<std::string> yara_rules_found(const json& report) {
  std::set<std::string> rules;
  for (const auto& f : report.at("findings")) {
    if (f.at("source") == "yara") {
      rules.insert(f.at("rule").get<std::string>());
    }
  }
  return rules;
}

json read_report(const fs::path& file) {
  std::ifstream in(file);
  return json::parse(in);
}

}  // namespace

TEST(Cli, ImageAfterRulesIsTheImage) {
  borderscan::test::scratch_dir tmp;
  write_two_rules(tmp.path());
  const fs::path out = tmp / "report.json";
  const auto res = run_command(cli() + " scan -q --rules " + arg(tmp / "a.yar") + " " +
                               arg(borderscan::test::fixture_dir() / "fat-simple.img") + " -o " + arg(out));
  ASSERT_EQ(res.exit_code, 1) << res.err;
  EXPECT_TRUE(res.out.empty());
  const json r = read_report(out);
  borderscan::test::validate_report(r);
  EXPECT_EQ(yara_rules_found(r), std::set<std::string>{"cli_eicar_body"});
}

TEST(Cli, RulesRepeatedUsesEveryRuleFile) {
  borderscan::test::scratch_dir tmp;
  write_two_rules(tmp.path());
  const std::string image = arg(borderscan::test::fixture_dir() / "fat-simple.img");
  const std::string rules = " --rules " + arg(tmp / "a.yar") + " --rules " + arg(tmp / "b.yar");
  const std::set<std::string> both{"cli_eicar_body", "cli_readme_text"};

  const fs::path out1 = tmp / "image-first.json";
  const auto first = run_command(cli() + " scan -q " + image + rules + " -o " + arg(out1));
  ASSERT_EQ(first.exit_code, 1) << first.err;
  EXPECT_EQ(yara_rules_found(read_report(out1)), both);

  const fs::path out2 = tmp / "image-between.json";
  const auto between = run_command(cli() + " scan -q" + rules + " " + image + " -o " + arg(out2));
  ASSERT_EQ(between.exit_code, 1) << between.err;
  EXPECT_EQ(yara_rules_found(read_report(out2)), both);
}

TEST(Cli, ImageAfterHashsetIsTheImage) {
  borderscan::test::scratch_dir tmp;
  std::ofstream(tmp / "case.txt") << "30a92ad805201268c3bd2b04f9da1998d208314be72a8e7145e7f4ad145417fa case-4711\n";
  const fs::path out = tmp / "report.json";
  const auto res = run_command(cli() + " scan -q --hashset " + arg(tmp / "case.txt") + " " +
                               arg(borderscan::test::fixture_dir() / "ext4-simple.img") + " -o " + arg(out));
  ASSERT_EQ(res.exit_code, 1) << res.err;
  const json r = read_report(out);
  bool hit = false;
  for (const auto& f : r.at("findings")) {
    hit = hit || (f.at("source") == "hashset" && f.at("rule") == "case-4711");
  }
  EXPECT_TRUE(hit);
}

TEST(Cli, SegmentsAfterRulesAreTheImage) {
  borderscan::test::scratch_dir tmp;
  std::ofstream(tmp / "empty.yar") << "";
  const fs::path split = borderscan::test::fixture_dir() / "split";
  const fs::path out = tmp / "report.json";
  const auto res = run_command(cli() + " scan -q --rules " + arg(tmp / "empty.yar") + " " +
                               arg(split / "gpt-two-volumes.img.001") + " " + arg(split / "gpt-two-volumes.img.002") +
                               " " + arg(split / "gpt-two-volumes.img.003") + " -o " + arg(out));
  ASSERT_EQ(res.exit_code, 1) << res.err;  // its two .jpg files are not JPEGs
  const json r = read_report(out);
  EXPECT_EQ(r.at("image").at("segments").size(), 3U);
  EXPECT_EQ(r.at("volumes").size(), 2U);
}

TEST(Cli, MissingImageAfterRulesIsAUsageError) {
  borderscan::test::scratch_dir tmp;
  std::ofstream(tmp / "empty.yar") << "";
  const fs::path out = tmp / "report.json";
  for (const std::string& args : {" scan --rules " + arg(tmp / "empty.yar") + " -o " + arg(out),
                                  " scan -o " + arg(out) + " --rules " + arg(tmp / "empty.yar"),
                                  " scan --hashset " + arg(tmp / "set.txt") + " -o " + arg(out)}) {
    const auto res = run_command(cli() + args);
    EXPECT_EQ(res.exit_code, 2) << args;
    EXPECT_NE(res.err.find("image is required"), std::string::npos) << args << "\n" << res.err;
    EXPECT_FALSE(fs::exists(out)) << args;
  }
}

TEST(Cli, HelpSaysToRepeatRulesAndHashset) {
  const auto res = run_command(cli() + " scan --help");
  EXPECT_EQ(res.exit_code, 0) << res.err;
  for (const char* option : {"--rules", "--hashset"}) {
    const auto at = res.out.find(option);
    ASSERT_NE(at, std::string::npos) << res.out;
    const auto line_end = res.out.find("\n  -", at);  // the next option's line
    EXPECT_NE(res.out.substr(at, line_end - at).find("repeat the option for several"), std::string::npos)
        << option << "\n"
        << res.out;
  }
}

TEST(Cli, RuleFileWhereTheImageGoesIsAUsageErrorNamingIt) {
  borderscan::test::scratch_dir tmp;
  std::ofstream(tmp / "a.yar") << "rule a { condition: false }\n";
  std::ofstream(tmp / "b.yar") << "rule b { condition: false }\n";
  // The old several-files-per-flag form: b.yar lands among the image segments.
  const auto r = run_command(cli() + " scan -q --rules " + arg(tmp / "a.yar") + " " + arg(tmp / "b.yar") + " " +
                             arg(borderscan::test::fixture_dir() / "fat-simple.img") + " -o " + arg(tmp / "out.json"));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("b.yar looks like a YARA rule file"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(tmp / "out.json"));
}

TEST(Cli, VersionNamesTheLibrariesAndReportsRecordThem) {
  const auto version = run_command(cli() + " --version");
  ASSERT_EQ(version.exit_code, 0) << version.err;
  for (const char* library : {"libtsk ", "libyara ", "libmagic ", "libarchive "}) {
    EXPECT_NE(version.out.find(std::string("\n") + library), std::string::npos) << version.out;
  }
  const auto scanned = run_command(cli() + " scan -q " + shell_quote(borderscan::test::clean_image().string()));
  ASSERT_EQ(scanned.exit_code, 0) << scanned.err;
  const json report = json::parse(scanned.out);
  EXPECT_TRUE(borderscan::test::validate_report(report));
  const json& libraries = report.at("libraries");
  for (const char* library : {"libtsk", "libyara", "libmagic", "libarchive"}) {
    ASSERT_TRUE(libraries.contains(library)) << libraries.dump();
    // The same text --version prints.
    EXPECT_NE(version.out.find(std::string(library) + " " + libraries.at(library).get<std::string>()),
              std::string::npos)
        << library;
  }
}

// A stick where the traveller deleted a folder: five copies of EICAR, three
// of them in the deleted folder. The report marks the deleted ones, counts
// deleted files and directories apart, and the summary folds the copies
// into one line per rule with a count.
TEST(Cli, SummaryFoldsRepeatedFindingsAndCountsDeletedFilesAndDirectoriesApart) {
  borderscan::test::scratch_dir tmp;
  const fs::path eicar = tmp / "eicar.com";
  std::ofstream(eicar) << borderscan::test::eicar();
  const fs::path image = tmp / "stick.img";
  const std::string img = shell_quote(image.string());
  const std::string e = shell_quote(eicar.string());
  const auto made =
      run_command("mkfs.vfat -C " + img + " 4096 >/dev/null && mmd -i " + img + " ::/trip ::/keep && " + "mcopy -i " +
                  img + " " + e + " ::/trip/a.com && mcopy -i " + img + " " + e + " ::/trip/b.com && mcopy -i " + img +
                  " " + e + " ::/trip/c.com && mcopy -i " + img + " " + e + " ::/keep/d.com && mcopy -i " + img + " " +
                  e + " ::/keep/e.com && mdeltree -i " + img + " ::/trip");
  ASSERT_EQ(made.exit_code, 0) << made.err;
  const fs::path out = tmp / "report.json";
  const auto res = run_command(cli() + " scan -o " + shell_quote(out.string()) + " " + img);
  EXPECT_EQ(res.exit_code, 1) << res.err;
  std::ifstream in(out);
  const json r = json::parse(in);
  borderscan::test::validate_report(r);
  EXPECT_EQ(r.at("summary").at("deleted_directories"), 1) << r.at("summary").dump();
  EXPECT_EQ(r.at("summary").at("deleted"), 4) << "the folder and its three files";
  std::size_t eicar_findings = 0, deleted_findings = 0;
  for (const auto& f : r.at("findings")) {
    if (f.at("rule") == "EICAR_Test_File") {
      ++eicar_findings;
      deleted_findings += f.value("deleted", false) ? 1 : 0;
    }
  }
  EXPECT_EQ(eicar_findings, 5U);
  EXPECT_EQ(deleted_findings, 3U);

  EXPECT_NE(res.err.find("files     5 (3 deleted), 3 directories (1 deleted)"), std::string::npos) << res.err;
  // One line for the five: its count, the first path, how many were deleted.
  std::size_t lines = 0;
  std::string folded;
  std::istringstream err(res.err);
  for (std::string line; std::getline(err, line);) {
    if (line.find("yara:EICAR_Test_File") != std::string::npos) {
      ++lines;
      folded = line;
    }
  }
  EXPECT_EQ(lines, 1U) << res.err;
  EXPECT_NE(folded.find("    5  "), std::string::npos) << folded;
  EXPECT_NE(folded.find("(+4 more; 3 of all 5 deleted)"), std::string::npos) << folded;
}

TEST(Cli, MessagesNameTheProblemInWordsWithoutInternalCodes) {
  borderscan::test::scratch_dir tmp;
  const fs::path set = tmp / "bad.txt";
  std::ofstream(set) << "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f eicar\n";
  const std::string image = shell_quote(borderscan::test::clean_image().string());
  const auto kind =
      run_command(cli() + " scan -o /dev/null --hashset " + shell_quote(set.string() + ":known-evil") + " " + image);
  EXPECT_EQ(kind.exit_code, 2);
  EXPECT_NE(kind.err.find("unknown hash-set kind 'known-evil'"), std::string::npos) << kind.err;
  EXPECT_NE(kind.err.find("FILE:known-bad or FILE:known-good"), std::string::npos) << kind.err;
  const auto missing =
      run_command(cli() + " scan -o /dev/null --hashset " + shell_quote((tmp / "none.txt").string()) + " " + image);
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("cannot open hash set: No such file or directory"), std::string::npos) << missing.err;
  const auto unwritable =
      run_command(cli() + " scan -o " + shell_quote((tmp / "no-such-dir" / "r.json").string()) + " " + image);
  EXPECT_EQ(unwritable.exit_code, 2);
  EXPECT_NE(unwritable.err.find("cannot write"), std::string::npos) << unwritable.err;
  EXPECT_NE(unwritable.err.find("No such file or directory"), std::string::npos) << unwritable.err;
  for (const auto* res : {&kind, &missing, &unwritable}) {
    for (const char* code : {"rules_invalid", "internal", "scan_errc", "errno"}) {
      EXPECT_EQ(res->err.find(code), std::string::npos) << res->err;
    }
  }
}
