#include "borderscan/server/worker_pool.hpp"

#include <gtest/gtest.h>

#include <thread>

#include "server_test_support.hpp"

namespace borderscan::server {
namespace {

using namespace test_support;

// A runner whose behaviour each test scripts.
class scripted_runner final : public scan_runner {
 public:
  explicit scripted_runner(std::function<scanner::report(const scan_request&)> fn) : fn_(std::move(fn)) {}
  scanner::report run(const scan_request& request) override {
    ++calls;
    return fn_(request);
  }
  scanner::severity flag_threshold() const override { return scanner::severity::medium; }
  std::atomic<int> calls{0};

 private:
  std::function<scanner::report(const scan_request&)> fn_;
};

scanner::report wait_for_cancel(const scan_request& r) {
  while (!r.cancel.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return {};
}

std::string submit(wired& w) {
  const auto path = w.spool / "x.img";
  std::ofstream(path) << "image";
  scan_record s;
  s.id = w.ids.next();
  s.image_sha256 = std::string(64, 'a');
  s.spool_path = path.string();
  w.queue.submit(w.queue.reserve(), s);
  return s.id;
}

// Polls the store until the predicate holds (bounded, generous).
template <class Pred>
bool wait_until(Pred pred) {
  for (int i = 0; i < 3000; ++i) {
    if (pred()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

TEST(WorkerPool, RetriesAFailingScanThenFailsItAfterMaxAttempts) {
  wired w;
  scripted_runner runner([](const scan_request&) -> scanner::report { throw std::runtime_error("boom"); });
  worker_pool pool(w.queue, runner, w.store, w.stats, w.clk, {2, 3, false});
  pool.start();
  const std::string id = submit(w);
  ASSERT_TRUE(wait_until([&] { return w.store.find_scan(id)->status == scan_status::failed; }));
  const auto s = w.store.find_scan(id);
  EXPECT_EQ(s->attempts, 3U);
  EXPECT_EQ(s->error, "gave up after 3 attempts; last: boom");
  EXPECT_EQ(runner.calls.load(), 3);
  EXPECT_FALSE(std::filesystem::exists(s->spool_path));
}

TEST(WorkerPool, StoresTheReportOfARealScan) {
  wired w;
  in_process_runner runner({}, w.rules, 1);
  worker_pool pool(w.queue, runner, w.store, w.stats, w.clk, {1, 3, false});
  pool.start();
  const auto image = w.spool / "img.img";
  std::filesystem::copy_file(test::fixture_dir() / "fat-simple.img", image);
  scan_record s;
  s.id = w.ids.next();
  s.station = "k9";
  s.image_sha256 = std::string(64, 'b');
  s.spool_path = image.string();
  w.queue.submit(w.queue.reserve(), s);
  ASSERT_TRUE(wait_until([&] { return w.store.find_scan(s.id)->status == scan_status::done; }));
  const auto report = nlohmann::json::parse(*w.store.report_json(s.id));
  EXPECT_TRUE(test::validate_report(report));
  EXPECT_EQ(report.at("station"), "k9");
  EXPECT_EQ(report.at("image").at("sha256"), std::string(64, 'b'));
  EXPECT_FALSE(std::filesystem::exists(image));
}

TEST(WorkerPool, CancelStopsARunningScanAsFailed) {
  wired w;
  scripted_runner runner(wait_for_cancel);
  worker_pool pool(w.queue, runner, w.store, w.stats, w.clk, {1, 3, false});
  pool.start();
  const std::string id = submit(w);
  ASSERT_TRUE(wait_until([&] { return w.queue.running() == 1; }));
  EXPECT_EQ(w.queue.cancel(id), cancel_result::stopping);
  ASSERT_TRUE(wait_until([&] { return w.store.find_scan(id)->status == scan_status::failed; }));
  EXPECT_EQ(w.store.find_scan(id)->error, "cancelled");
}

TEST(WorkerPool, DrainPutsScansPastTheGracePeriodBackInTheQueue) {
  wired w;
  scripted_runner runner(wait_for_cancel);
  worker_pool pool(w.queue, runner, w.store, w.stats, w.clk, {1, 3, false});
  pool.start();
  const std::string id = submit(w);
  ASSERT_TRUE(wait_until([&] { return w.queue.running() == 1; }));
  pool.drain(std::chrono::milliseconds(0));
  const auto s = w.store.find_scan(id);
  EXPECT_EQ(s->status, scan_status::queued);
  EXPECT_EQ(s->attempts, 0U);  // not the scan's fault
  EXPECT_TRUE(std::filesystem::exists(s->spool_path));
}

TEST(WorkerPool, DrainLetsScansWithinTheGracePeriodFinish) {
  wired w;
  scripted_runner runner([](const scan_request&) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    return scanner::report{};
  });
  worker_pool pool(w.queue, runner, w.store, w.stats, w.clk, {1, 3, false});
  pool.start();
  const std::string id = submit(w);
  ASSERT_TRUE(wait_until([&] { return w.queue.running() == 1; }));
  pool.drain(std::chrono::seconds(60));
  EXPECT_EQ(w.store.find_scan(id)->status, scan_status::done);
}

}  // namespace
}  // namespace borderscan::server
