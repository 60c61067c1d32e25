#include "borderscan/scanner/rule_set.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

#include "borderscan/scanner/digest.hpp"
#include "borderscan/scanner/error.hpp"
#include "support/test_support.hpp"

namespace sc = borderscan::scanner;
namespace fs = std::filesystem;
using borderscan::test::scratch_dir;

TEST(RuleSet, ShippedRulesCompileAndNameTheirDigest) {
  const auto rules = borderscan::test::shipped_rules();
  EXPECT_GT(rules->info().yara_rules, 5u);
  EXPECT_EQ(rules->info().digest.rfind("sha256:", 0), 0u);
  EXPECT_EQ(rules->info().digest.size(), 7u + 64u);
  EXPECT_FALSE(rules->info().hashsets.empty());
}

TEST(RuleSet, CompileErrorNamesFileAndLine) {
  borderscan::test::shipped_rules();
  scratch_dir tmp;
  fs::create_directories(tmp / "r" / "sub");
  std::ofstream(tmp / "r" / "ok.yar") << "rule ok { condition: true }\n";
  std::ofstream(tmp / "r" / "sub" / "bad.yar")
      << "rule good { condition: true }\n\nrule bad { condition: $undefined }\n";
  sc::rule_sources src;
  src.rule_paths.push_back(tmp / "r");
  try {
    sc::rule_set::load(src);
    FAIL() << "expected a compile error";
  } catch (const sc::scan_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("bad.yar:3:"), std::string::npos) << what;
    EXPECT_NE(what.find("undefined"), std::string::npos) << what;
  }
}

TEST(RuleSet, LoadsDirectoriesRecursivelyAndDigestFollowsContent) {
  borderscan::test::shipped_rules();
  scratch_dir tmp;
  fs::create_directories(tmp / "r" / "deep");
  std::ofstream(tmp / "r" / "deep" / "a.yara") << "rule a { condition: true }\n";
  std::ofstream(tmp / "r" / "b.yar") << "rule b { condition: true }\n";
  std::ofstream(tmp / "r" / "notes.md") << "not a rule\n";
  std::ofstream(tmp / "r" / "x.known-good.txt") << "d41d8cd98f00b204e9800998ecf8427e empty\n";
  sc::rule_sources src;
  src.rule_paths.push_back(tmp / "r");
  const auto first = sc::rule_set::load(src);
  EXPECT_EQ(first->info().yara_rules, 2u);
  ASSERT_EQ(first->info().hashsets.size(), 1u);
  EXPECT_EQ(first->info().hashsets[0].kind, "known-good");
  EXPECT_EQ(sc::rule_set::load(src)->info().digest, first->info().digest);

  std::ofstream(tmp / "r" / "b.yar") << "rule b { condition: false }\n";
  EXPECT_NE(sc::rule_set::load(src)->info().digest, first->info().digest);
}

TEST(RuleSet, MissingPathIsAClearError) {
  borderscan::test::shipped_rules();
  sc::rule_sources src;
  src.rule_paths.emplace_back("/nonexistent/rules");
  EXPECT_THROW(sc::rule_set::load(src), sc::scan_error);
}

TEST(RuleSet, CorpusCommunityRuleSetWithExternalsCompiles) {
  BORDERSCAN_REQUIRE_CORPUS();
  borderscan::test::shipped_rules();
  const fs::path base = borderscan::test::corpus_dir() / "yara-community" / "signature-base";
  std::ifstream list(base / "compile-together.txt");
  ASSERT_TRUE(list) << "compile-together.txt missing";
  sc::rule_sources src;
  std::string line;
  while (std::getline(list, line)) {
    if (!line.empty()) src.rule_paths.push_back(base / line);
  }
  ASSERT_GT(src.rule_paths.size(), 700u);
  const auto rules = sc::rule_set::load(src);
  EXPECT_GT(rules->info().yara_rules, 5000u);
}

TEST(RuleSet, ExternalReferencesAreFoundLexically) {
  using sc::detail::yara_source_mentions_external;
  // References in conditions.
  EXPECT_TRUE(yara_source_mentions_external(R"(rule a { condition: filename == "x.exe" })"));
  EXPECT_TRUE(yara_source_mentions_external("rule a {\n condition:\n  extension matches /\\.jpe?g$/ }"));
  EXPECT_TRUE(
      yara_source_mentions_external("rule a { condition: uint16(0) == 0x5a4d and not (filepath contains \"x\") }"));
  EXPECT_TRUE(yara_source_mentions_external("rule a { condition: owner!=\"root\" }"));
  EXPECT_TRUE(yara_source_mentions_external("rule a { condition: filetype\n== \"PE\" }"));
  EXPECT_TRUE(yara_source_mentions_external("rule a { condition: for any i in (1..filename) : (true) }"));
  // When in doubt, yes: an include (not read), a rule or tag with the name, a comment left open.
  EXPECT_TRUE(yara_source_mentions_external("include \"other.yar\"\nrule a { condition: true }"));
  EXPECT_TRUE(yara_source_mentions_external("rule filename { condition: true }"));
  EXPECT_TRUE(yara_source_mentions_external("rule a : owner { condition: true }"));
  // Not references: comments, text strings, regular expressions, string
  // identifiers, module fields, meta keys.
  EXPECT_FALSE(yara_source_mentions_external(R"(
// the filename is not used here
/* nor the extension,
   nor the owner */
import "pe"
rule a {
  meta:
    filetype = "PE"
    owner="someone"
    description = "checks filename \"and\" extension"
  strings:
    $filename = "filename=" ascii
    $re = /filepath\/owner [^"]+ extension/ nocase
    $hex = { 4D 5A [2-4] ?? 00 } // filename
  condition:
    pe.owner == 1 and #filename > 2 and @filename[1] < 100 and !filename[1] == 9 and $re and $hex
    and filesize < 10MB and pe.number_of_sections \ 2 == 1
})"));
  // A quote inside a regular expression does not open a string that hides what follows.
  EXPECT_TRUE(yara_source_mentions_external("rule a { strings: $r = /[^\"]+/ condition: $r and filename == \"a\" }"));
  // ... and an escaped quote does not close one.
  EXPECT_FALSE(yara_source_mentions_external(R"(rule a { strings: $s = "a \" filename" condition: $s })"));
}

TEST(RuleSet, ShippedRulesReadNoExternals) {
  // The shipped rules only mention "extension" in a comment.
  EXPECT_FALSE(borderscan::test::shipped_rules()->uses_externals());
}

TEST(RuleSet, CorpusExternalsAreNotedOnlyWhenRulesReadThem) {
  BORDERSCAN_REQUIRE_CORPUS();
  borderscan::test::shipped_rules();
  const fs::path base = borderscan::test::corpus_dir() / "yara-community" / "signature-base";
  // compile-noext.txt lists the files that compile without the externals; compile-together.txt adds
  // those that need them.
  for (const auto& [list, expected] :
       {std::pair{"compile-noext.txt", false}, std::pair{"compile-together.txt", true}}) {
    std::ifstream in(base / list);
    ASSERT_TRUE(in) << list << " missing";
    sc::rule_sources src;
    for (std::string line; std::getline(in, line);) {
      line.erase(line.find_last_not_of(" \t\r") + 1);
      if (!line.empty()) src.rule_paths.push_back(base / line);
    }
    EXPECT_EQ(sc::rule_set::load(src)->uses_externals(), expected) << list;
  }
}

namespace {

// A rule folder with one rule, and the sources naming it.
sc::rule_sources one_rule(const borderscan::test::scratch_dir& dir, const std::string& text) {
  fs::create_directories(dir / "rules");
  std::ofstream(dir / "rules" / "r.yar") << text;
  sc::rule_sources src;
  src.rule_paths.push_back(dir / "rules");
  return src;
}

std::string file_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace

TEST(RuleSet, CompiledRulesLoadOnlyForTheirOwnSourcesAndBytes) {
  borderscan::test::shipped_rules();
  borderscan::test::scratch_dir dir;
  const auto src = one_rule(dir, "rule a { strings: $a = \"needle\" condition: $a }");
  const auto compiled = sc::rule_set::load(src);
  const fs::path file = dir / "a.yarc";
  const std::string sha = compiled->save_compiled(file);
  EXPECT_EQ(sha, sc::sha256_hex(file_text(file)));
  EXPECT_EQ(fs::status(file).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);

  const auto loaded = sc::rule_set::load(src, {sc::compiled_rules::mode::require, file, sha});
  EXPECT_EQ(loaded->info().digest, compiled->info().digest);
  EXPECT_EQ(loaded->info().yara_rules, 1U);
  EXPECT_EQ(loaded->info().yara_files, compiled->info().yara_files);

  // Not the bytes the daemon wrote.
  try {
    sc::rule_set::load(src, {sc::compiled_rules::mode::require, file, std::string(64, '0')});
    FAIL() << "a changed file was loaded";
  } catch (const sc::scan_error& e) {
    EXPECT_EQ(e.code(), sc::scan_errc::rules_mismatch);
    EXPECT_NE(std::string(e.what()).find("changed since written"), std::string::npos) << e.what();
  }
  // The sources changed since it was compiled.
  std::ofstream(dir / "rules" / "r.yar") << "rule b { condition: true }";
  try {
    sc::rule_set::load(src, {sc::compiled_rules::mode::require, file, sha});
    FAIL() << "rules of other sources were loaded";
  } catch (const sc::scan_error& e) {
    EXPECT_EQ(e.code(), sc::scan_errc::rules_mismatch);
    EXPECT_NE(std::string(e.what()).find("compiled for rule set " + compiled->info().digest), std::string::npos)
        << e.what();
  }
}

TEST(RuleSet, ACompiledRulesCacheIsWrittenOnceAndRebuiltWhenItDoesNotFit) {
  borderscan::test::shipped_rules();
  borderscan::test::scratch_dir dir;
  const auto src = one_rule(dir, "rule a { condition: true }");
  const fs::path cache = dir / "cache.yarc";
  const sc::compiled_rules cached{sc::compiled_rules::mode::cache, cache, {}};
  const auto first = sc::rule_set::load(src, cached);
  ASSERT_TRUE(fs::exists(cache));
  const std::string written = file_text(cache);
  const auto when = fs::last_write_time(cache);
  const auto second = sc::rule_set::load(src, cached);
  EXPECT_EQ(second->info().digest, first->info().digest);
  EXPECT_EQ(fs::last_write_time(cache), when) << "a fitting cache is used, not rewritten";

  // Damaged (the header still fits): compiled again and rewritten.
  std::ofstream(cache, std::ios::binary | std::ios::trunc) << written.substr(0, written.size() / 2);
  EXPECT_EQ(sc::rule_set::load(src, cached)->info().yara_rules, 1U);
  EXPECT_EQ(file_text(cache).size(), written.size());
  // Other sources: compiled and rewritten for them.
  std::ofstream(dir / "rules" / "r.yar") << "rule a { condition: true } rule b { condition: false }";
  const auto third = sc::rule_set::load(src, cached);
  EXPECT_EQ(third->info().yara_rules, 2U);
  EXPECT_NE(file_text(cache).find(third->info().digest), std::string::npos);
}
