#include "borderscan/scanner/rule_set.hpp"

#include <gtest/gtest.h>

#include <fstream>

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

TEST(RuleSet, CommunityRuleSetWithExternalsCompiles) {
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
