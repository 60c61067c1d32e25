#include "borderscan/server/blocking_pool.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <thread>

namespace borderscan::server {
namespace {

using namespace std::chrono_literals;

TEST(BlockingPool, RefusesNewWorkWhenFullButNeverContinuations) {
  blocking_pool pool(1, 2);
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  std::atomic<int> ran{0};
  EXPECT_TRUE(pool.try_post([gate, &ran] {
    gate.wait();
    ++ran;
  }));
  EXPECT_TRUE(pool.try_post([&ran] { ++ran; }));
  EXPECT_FALSE(pool.try_post([&ran] { ran += 100; })) << "a third task was admitted past max_queued = 2";
  pool.post([&ran] { ++ran; });  // continuations are never refused
  EXPECT_EQ(pool.pending(), 3U);
  release.set_value();
  pool.wait_idle();
  EXPECT_EQ(ran.load(), 3);
  EXPECT_EQ(pool.pending(), 0U);
  EXPECT_TRUE(pool.try_post([&ran] { ++ran; }));  // room again
  pool.wait_idle();
  EXPECT_EQ(ran.load(), 4);
}

TEST(BlockingPool, RunsMoveOnlyTasksOnItsOwnThreads) {
  blocking_pool pool(2, 8);
  auto value = std::make_unique<int>(7);
  std::promise<std::pair<int, std::thread::id>> seen;
  auto result = seen.get_future();
  pool.post([value = std::move(value), &seen] { seen.set_value({*value, std::this_thread::get_id()}); });
  ASSERT_EQ(result.wait_for(30s), std::future_status::ready);
  const auto [v, thread] = result.get();
  EXPECT_EQ(v, 7);
  EXPECT_NE(thread, std::this_thread::get_id());
}

TEST(BlockingPool, ATaskThatThrowsIsContainedAndTheRestRun) {
  blocking_pool pool(1, 8);
  std::atomic<int> ran{0};
  pool.post([] { throw std::runtime_error("disk on fire"); });
  pool.post([&ran] { ++ran; });
  pool.wait_idle();
  EXPECT_EQ(ran.load(), 1);
}

TEST(BlockingPool, DestructionRunsWhatIsQueued) {
  std::atomic<int> ran{0};
  {
    blocking_pool pool(1, 8);
    for (int i = 0; i < 5; ++i) {
      pool.post([&ran] {
        std::this_thread::sleep_for(5ms);
        ++ran;
      });
    }
  }
  EXPECT_EQ(ran.load(), 5);
}

}  // namespace
}  // namespace borderscan::server
