#include "borderscan/client/progress.hpp"

#include <gtest/gtest.h>

namespace borderscan::client {
namespace {

using namespace std::chrono_literals;

TEST(Progress, WordsSizesAndDurations) {
  EXPECT_EQ(human_bytes(0), "0 B");
  EXPECT_EQ(human_bytes(1023), "1023 B");
  EXPECT_EQ(human_bytes(1536), "1.5 KiB");
  EXPECT_EQ(human_bytes(12'900'000), "12.3 MiB");
  EXPECT_EQ(human_bytes(1'288'490'189), "1.20 GiB");
  EXPECT_EQ(human_duration(7s), "7s");
  EXPECT_EQ(human_duration(185s), "3m05s");
  EXPECT_EQ(human_duration(7440s), "2h04m");
}

TEST(Progress, RateAndEtaFollowTheRecentWindow) {
  rate_meter meter(5s);
  const auto t0 = rate_meter::clock::time_point{};
  meter.add(t0, 0);
  EXPECT_FALSE(meter.per_second().has_value());
  meter.add(t0 + 1s, 10 << 20);
  ASSERT_TRUE(meter.per_second().has_value());
  EXPECT_NEAR(*meter.per_second(), 10 << 20, 1);
  ASSERT_TRUE(meter.eta(100 << 20).has_value());
  EXPECT_EQ(meter.eta(100 << 20)->count(), 9);
  // A stall: ten seconds later only one more MiB. The window forgets the
  // burst, so the rate and ETA say so.
  meter.add(t0 + 11s, 11 << 20);
  meter.add(t0 + 12s, 11 << 20);
  ASSERT_TRUE(meter.per_second().has_value());
  EXPECT_LT(*meter.per_second(), 1 << 20);
  EXPECT_GT(meter.eta(100 << 20)->count(), 60);
}

TEST(Progress, TextShowsBarPercentBytesRateAndEta) {
  rate_meter meter;
  const auto t0 = rate_meter::clock::time_point{};
  meter.add(t0, 0);
  meter.add(t0 + 2s, 4 << 20);
  const std::string text = progress_text(4 << 20, 8 << 20, meter);
  EXPECT_EQ(text, "[##########----------]  50%  4.0 MiB / 8.0 MiB  2.0 MiB/s  ETA 2s");
  EXPECT_EQ(progress_text(5, 0, rate_meter()), "5 B") << "no total: no bar, no ETA";
}

}  // namespace
}  // namespace borderscan::client
