#include "borderscan/scanner/limits.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <set>

namespace sc = borderscan::scanner;

TEST(Limits, RoundTripThroughJson) {
  sc::limits l;
  l.max_depth = 3;
  l.max_expansion_ratio = 50;
  l.flag_threshold = sc::severity::high;
  l.skip_yara_for_known_good = true;
  const nlohmann::json j = l;
  const auto back = j.get<sc::limits>();
  EXPECT_EQ(back.max_depth, 3u);
  EXPECT_EQ(back.max_expansion_ratio, 50u);
  EXPECT_EQ(back.flag_threshold, sc::severity::high);
  EXPECT_TRUE(back.skip_yara_for_known_good);
  EXPECT_EQ(back.max_members, sc::limits{}.max_members);
}

TEST(Limits, PartialJsonKeepsDefaults) {
  const auto l = nlohmann::json::parse(R"({"max_depth": 2})").get<sc::limits>();
  EXPECT_EQ(l.max_depth, 2u);
  EXPECT_EQ(l.max_total_expanded_bytes, sc::limits{}.max_total_expanded_bytes);
}

TEST(Limits, RejectsUnknownKeysAndBadValues) {
  EXPECT_THROW(nlohmann::json::parse(R"({"max_dept": 2})").get<sc::limits>(), std::invalid_argument);
  EXPECT_THROW(nlohmann::json::parse(R"({"max_depth": -1})").get<sc::limits>(), std::invalid_argument);
  EXPECT_THROW(nlohmann::json::parse(R"({"max_depth": 1e99})").get<sc::limits>(), std::invalid_argument);
  EXPECT_THROW(nlohmann::json::parse(R"({"max_depth": 4294967296})").get<sc::limits>(), std::invalid_argument);
  EXPECT_THROW(nlohmann::json::parse(R"({"flag_severity": "severe"})").get<sc::limits>(), std::invalid_argument);
  EXPECT_THROW(nlohmann::json::parse(R"([1])").get<sc::limits>(), std::invalid_argument);
  EXPECT_THROW(nlohmann::json::parse(R"({"yara_timeout_seconds": 0})").get<sc::limits>(), std::invalid_argument);
}

TEST(Limits, EveryFieldHasOneNameAndARangeHoldingItsDefault) {
  sc::limits defaults;
  std::set<std::string> names;
  std::size_t fields = 0;
  sc::for_each_limit(defaults, [&](const sc::limit_field& f, const auto& value) {
    ++fields;
    EXPECT_TRUE(names.insert(f.name).second) << f.name;
    EXPECT_GE(static_cast<std::uint64_t>(value), f.min) << f.name;
    EXPECT_LE(static_cast<std::uint64_t>(value), f.max) << f.name;
    EXPECT_NE(std::string(f.help), "") << f.name;
  });
  const nlohmann::json j = defaults;
  EXPECT_EQ(j.size(), fields + 2) << "the JSON form has the limits and the two policy knobs, nothing else";
}
