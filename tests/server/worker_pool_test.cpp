#include "borderscan/server/worker_pool.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <thread>

#include "borderscan/scanner/report_file.hpp"
#include "borderscan/server/retention.hpp"
#include "server_test_support.hpp"

namespace borderscan::server {
namespace {

using namespace test_support;

// Writes the report where a runner does, named for the request's scan.
report_file write_report_for(const scan_request& request, scanner::report r) {
  r.scan_id = request.scan.id;
  r.image.sha256 = request.scan.image_sha256;
  r.ruleset.digest = "sha256:scripted";
  const auto path = report_path_for(request.scan);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    throw std::runtime_error("cannot write " + path.string());
  }
  const auto written = scanner::write_report_file(fd, r);
  ::close(fd);
  return {path, written.size, written.sha256, r.ruleset.digest, {}};
}

// A runner whose behaviour each test scripts.
class scripted_runner final : public scan_runner {
 public:
  explicit scripted_runner(std::function<scanner::report(const scan_request&)> fn) : fn_(std::move(fn)) {}
  report_file run(const scan_request& request) override {
    ++calls;
    return write_report_for(request, fn_(request));
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

std::string submit(wired& w, const std::string& file_name = "x.img") {
  const auto path = w.spool / file_name;
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
  worker_pool pool(w.queue, runner, w.store, w.ingest, w.stats, w.clk, {2, 3, {}});
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
  worker_pool pool(w.queue, runner, w.store, w.ingest, w.stats, w.clk, {1, 3, {}});
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
  const auto report = stored_report_json(w.store, s.id);
  EXPECT_TRUE(test::validate_report(report));
  EXPECT_EQ(report.at("station"), "k9");
  EXPECT_EQ(report.at("image").at("sha256"), std::string(64, 'b'));
  EXPECT_FALSE(std::filesystem::exists(image));
}

TEST(WorkerPool, CancelStopsARunningScanAsCancelledNamingWhoAsked) {
  wired w;
  scripted_runner runner(wait_for_cancel);
  worker_pool pool(w.queue, runner, w.store, w.ingest, w.stats, w.clk, {1, 3, {}});
  pool.start();
  const std::string id = submit(w);
  ASSERT_TRUE(wait_until([&] { return w.queue.running() == 1; }));
  EXPECT_EQ(w.queue.cancel(id, {"reviewer-3", "admin", "rid-c", "127.0.0.1:1"}), cancel_result::stopping);
  ASSERT_TRUE(wait_until([&] { return w.store.find_scan(id)->status == scan_status::cancelled; }));
  EXPECT_EQ(w.store.find_scan(id)->cancelled_by->name, "reviewer-3");
}

TEST(WorkerPool, DrainPutsScansPastTheGracePeriodBackInTheQueue) {
  wired w;
  scripted_runner runner(wait_for_cancel);
  worker_pool pool(w.queue, runner, w.store, w.ingest, w.stats, w.clk, {1, 3, {}});
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
  worker_pool pool(w.queue, runner, w.store, w.ingest, w.stats, w.clk, {1, 3, {}});
  pool.start();
  const std::string id = submit(w);
  ASSERT_TRUE(wait_until([&] { return w.queue.running() == 1; }));
  pool.drain(std::chrono::seconds(60));
  EXPECT_EQ(w.store.find_scan(id)->status, scan_status::done);
}

// A report that is what finalize() makes of it: flagged ones hold a finding.
scanner::report report_with(scanner::verdict v) {
  scanner::report r;
  scanner::file_entry f;
  f.path = "/a.com";
  f.type = "regular";
  if (v == scanner::verdict::flagged) {
    scanner::finding hit;
    hit.path = f.path;
    hit.source = "yara";
    hit.rule = "test";
    hit.level = scanner::severity::high;
    f.findings.push_back(hit);
  }
  r.files.push_back(f);
  scanner::finalize(r, scanner::severity::medium);
  return r;
}

std::vector<std::string> audit_events(sqlite_report_store& store, const std::string& id) {
  audit_filter f;
  f.scan_id = id;
  std::vector<std::string> out;
  for (const auto& e : store.list_audit(f).items) {
    out.insert(out.begin(), e.event);  // oldest first
  }
  return out;
}

TEST(WorkerPool, KeepsTheImageOfAFencedFailureForExaminationAndAuditsIt) {
  wired w;
  scripted_runner runner([](const scan_request&) -> scanner::report { throw scan_failed("crashed: SIGSEGV"); });
  worker_settings settings{1, 3, {}};
  settings.retention.keep_failed_ms = 3'600'000;
  worker_pool pool(w.queue, runner, w.store, w.ingest, w.stats, w.clk, settings);
  pool.start();
  const std::string id = submit(w);
  ASSERT_TRUE(wait_until([&] { return w.store.find_scan(id)->status == scan_status::failed; }));
  ASSERT_TRUE(wait_until([&] { return w.store.find_scan(id)->image_kept_until.has_value(); }));
  const auto s = w.store.find_scan(id);
  EXPECT_EQ(s->error, "crashed: SIGSEGV");
  EXPECT_EQ(runner.calls.load(), 1);  // a fenced failure is not retried
  EXPECT_EQ(*s->image_kept_until, w.clk.now + 3'600'000);
  EXPECT_TRUE(std::filesystem::exists(s->spool_path));
  EXPECT_EQ(audit_events(w.store, id), (std::vector<std::string>{"scan_submitted", "scan_failed", "image_kept"}));
}

TEST(WorkerPool, DeletesAFailedImageAtOnceWhenNothingIsKept) {
  wired w;
  scripted_runner runner([](const scan_request&) -> scanner::report { throw scan_failed("timed out after 5 s"); });
  worker_pool pool(w.queue, runner, w.store, w.ingest, w.stats, w.clk, {1, 3, {}});
  pool.start();
  const std::string id = submit(w);
  ASSERT_TRUE(wait_until([&] { return w.store.find_scan(id)->status == scan_status::failed; }));
  ASSERT_TRUE(wait_until([&] { return !std::filesystem::exists(w.store.find_scan(id)->spool_path); }));
  EXPECT_FALSE(w.store.find_scan(id)->image_kept_until);
}

TEST(WorkerPool, KeepsFlaggedImagesOnlyAndTheSweepDeletesThemWhenTheirTimeComes) {
  wired w;
  std::atomic<int> n{0};
  scripted_runner runner(
      [&](const scan_request&) { return report_with(n++ == 0 ? scanner::verdict::flagged : scanner::verdict::clean); });
  worker_settings settings{1, 3, {}};
  settings.retention.keep_flagged_ms = 86'400'000;
  worker_pool pool(w.queue, runner, w.store, w.ingest, w.stats, w.clk, settings);
  pool.start();
  const std::string flagged = submit(w, "flagged.img");
  ASSERT_TRUE(wait_until([&] { return w.store.find_scan(flagged)->image_kept_until.has_value(); }));
  const std::string clean = submit(w, "clean.img");
  ASSERT_TRUE(wait_until([&] { return w.store.find_scan(clean)->status == scan_status::done; }));
  ASSERT_TRUE(wait_until([&] { return !std::filesystem::exists(w.spool / "clean.img"); }));
  EXPECT_FALSE(w.store.find_scan(clean)->image_kept_until);
  EXPECT_TRUE(std::filesystem::exists(w.spool / "flagged.img"));

  retention_sweeper sweeper(w.store, w.clk, std::chrono::hours(1));
  w.clk.now += 86'400'000 - 1;
  EXPECT_EQ(sweeper.sweep_once(), 0U);
  EXPECT_TRUE(std::filesystem::exists(w.spool / "flagged.img"));
  w.clk.now += 1;
  EXPECT_EQ(sweeper.sweep_once(), 1U);
  EXPECT_FALSE(std::filesystem::exists(w.spool / "flagged.img"));
  EXPECT_FALSE(w.store.find_scan(flagged)->image_kept_until);
  EXPECT_EQ(audit_events(w.store, flagged),
            (std::vector<std::string>{"scan_submitted", "scan_done", "image_kept", "image_deleted"}));
  EXPECT_EQ(sweeper.sweep_once(), 0U);
}

TEST(WorkerPool, KeepAllLeavesEveryImageAndMarksNone) {
  wired w;
  scripted_runner runner([](const scan_request&) { return report_with(scanner::verdict::flagged); });
  worker_settings settings{1, 3, {}};
  settings.retention.keep_all = true;
  settings.retention.keep_flagged_ms = 1000;
  worker_pool pool(w.queue, runner, w.store, w.ingest, w.stats, w.clk, settings);
  pool.start();
  const std::string id = submit(w);
  ASSERT_TRUE(wait_until([&] { return w.store.find_scan(id)->status == scan_status::done; }));
  pool.drain(std::chrono::seconds(60));
  EXPECT_TRUE(std::filesystem::exists(w.store.find_scan(id)->spool_path));
  EXPECT_FALSE(w.store.find_scan(id)->image_kept_until);
}

TEST(WorkerPool, KeepsEvidenceOfAFlaggedFileUntilKeepDaysPassThenTheSweepDeletesIt) {
  wired w;
  in_process_runner runner({}, w.rules, 1, scanner::evidence_limits{});
  worker_settings settings{1, 3, {}};
  settings.evidence_keep_ms = 30LL * 86'400'000;
  worker_pool pool(w.queue, runner, w.store, w.ingest, w.stats, w.clk, settings);
  pool.start();
  const auto image = w.spool / "img.img";
  std::filesystem::copy_file(test::fixture_dir() / "fat-simple.img", image);
  scan_record s;
  s.id = w.ids.next();
  s.spool_path = image.string();
  w.queue.submit(w.queue.reserve(), s);
  ASSERT_TRUE(wait_until([&] { return w.store.find_scan(s.id)->status == scan_status::done; }));
  const std::string eicar_sha256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f";
  const auto copy = w.store.find_evidence(s.id, eicar_sha256);
  ASSERT_TRUE(copy);
  EXPECT_EQ(read_file(copy->path), test::eicar());
  EXPECT_EQ(copy->kept_until, w.clk.now + 30LL * 86'400'000);
  EXPECT_FALSE(std::filesystem::exists(evidence_pack_path_for(s))) << "the pack is gone once taken";

  retention_sweeper sweeper(w.store, w.clk, std::chrono::hours(1));
  w.clk.now += 30LL * 86'400'000 - 1;
  EXPECT_EQ(sweeper.sweep_once(), 0U);
  w.clk.now += 1;
  EXPECT_EQ(sweeper.sweep_once(), 1U);
  EXPECT_FALSE(std::filesystem::exists(copy->path));
  EXPECT_EQ(w.store.find_evidence(s.id, eicar_sha256)->state, "expired");
  const auto events = audit_events(w.store, s.id);
  EXPECT_NE(std::find(events.begin(), events.end(), "evidence_kept"), events.end());
  EXPECT_EQ(events.back(), "evidence_purged");
}

}  // namespace
}  // namespace borderscan::server
