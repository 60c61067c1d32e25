#include "borderscan/scanner/limits.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

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
  EXPECT_THROW(nlohmann::json::parse(R"({"flag_threshold": "severe"})").get<sc::limits>(), std::invalid_argument);
  EXPECT_THROW(nlohmann::json::parse(R"([1])").get<sc::limits>(), std::invalid_argument);
}
