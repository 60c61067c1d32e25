// kill -9 of the daemon during an upload, a scan and a report store, and of
// a worker mid-scan (issue #17), with the real daemon on loopback: after a
// restart nothing is lost, nothing half-made stays, nothing is done twice.
#include <signal.h>
#include <sys/types.h>

#include <array>
#include <string>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

#include "daemon_harness.hpp"
#include "server_test_support.hpp"
#include "support/test_support.hpp"

namespace borderscan::server {
namespace {

using namespace test_support;
using nlohmann::json;
namespace http = boost::beast::http;
namespace net = boost::asio;
namespace fs = std::filesystem;

std::size_t files_under(const fs::path& dir) {
  std::size_t n = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    n += e.is_regular_file() ? 1 : 0;
  }
  return n;
}

// The daemon's fenced workers: processes whose command line names its spool.
std::vector<pid_t> workers_of(const daemon& d) {
  std::vector<pid_t> found;
  const std::string needle = d.spool_dir().string();
  for (const auto& e : fs::directory_iterator("/proc")) {
    const auto pid = e.path().filename().string();
    if (pid.find_first_not_of("0123456789") != std::string::npos) {
      continue;
    }
    std::error_code ec;
    const std::string cmdline = fs::exists(e.path() / "cmdline", ec) ? read_file(e.path() / "cmdline") : "";
    if (cmdline.find(needle) != std::string::npos && cmdline.find("worker") != std::string::npos) {
      found.push_back(static_cast<pid_t>(std::stol(pid)));
    }
  }
  return found;
}

class Crash : public ::testing::Test {
 protected:
  daemon& start(daemon_options options = {.workers = 1}) {
    daemon_ = std::make_unique<daemon>(scratch_ / "data", options);
    daemon_->start();
    return *daemon_;
  }

  std::string upload(daemon& d, const fs::path& image) {
    const auto res = http_call(d.port(), http::verb::post, "/api/v1/scans", read_file(image),
                               {{"Authorization", "Bearer " + d.token("k1")}});
    EXPECT_EQ(res.status, 202U) << res.body;
    return res.status == 202U ? res.json().at("id").get<std::string>() : std::string();
  }

  json scan(const daemon& d, const std::string& id) { return http_get(d.port(), "/api/v1/scans/" + id).json(); }
  bool ends_as(const daemon& d, const std::string& id, const std::string& status) {
    return eventually([&] { return scan(d, id).value("status", "") == status; });
  }
  std::size_t audited(const daemon& d, const std::string& event, const std::string& id) {
    return http_get(d.port(), "/api/v1/audit?event=" + event + "&scan=" + id).json().at("items").size();
  }

  // An empty qcow2 disk of 1 GiB: 200 KiB to upload, a few seconds of a
  // worker reading and hashing its zeros; time to kill something mid-scan.
  fs::path slow_image() {
    const fs::path image = scratch_ / "empty-1g.qcow2";
    if (!fs::exists(image)) {
      const auto made = test::run_command("qemu-img create -q -f qcow2 " + test::shell_quote(image.string()) + " 1G");
      EXPECT_EQ(made.exit_code, 0) << made.err;
    }
    return image;
  }

  test::scratch_dir scratch_;
  std::unique_ptr<daemon> daemon_;
};

TEST_F(Crash, DaemonKilledMidUploadLeavesNoScanAndNoSpoolFile) {
  auto& d = start();
  net::io_context ioc;
  net::ip::tcp::socket socket(ioc);
  begin_upload(socket, d.port(), d.token("k1"), 1 << 20);  // a quarter of the body
  ASSERT_TRUE(eventually([&] { return files_under(d.spool_dir()) == 1; })) << d.log();
  d.kill_hard();

  // The kiosk learns at once, with no answer: more body meets a reset, and
  // the read ends in a reset (or the close, had the kernel drained it all).
  boost::system::error_code write_error, read_error;
  net::write(socket, net::buffer(std::string(1 << 20, 'x')), write_error);
  std::array<char, 256> answer{};
  const std::size_t got = socket.read_some(net::buffer(answer), read_error);
  EXPECT_EQ(got, 0U) << std::string(answer.data(), got);
  EXPECT_TRUE(read_error == net::error::connection_reset || read_error == net::error::eof) << read_error.message();
  EXPECT_TRUE(write_error == net::error::connection_reset || write_error == net::error::broken_pipe || !write_error)
      << write_error.message();

  d.start();
  EXPECT_EQ(files_under(d.spool_dir()), 0U) << "the start-up sweep removes the half-written upload";
  EXPECT_TRUE(http_get(d.port(), "/api/v1/scans").json().at("items").empty());
  EXPECT_TRUE(http_get(d.port(), "/api/v1/reports").json().at("items").empty());
  const std::string id = upload(d, test::fixture_dir() / "fat-simple.img");
  ASSERT_TRUE(ends_as(d, id, "done")) << d.log();
  EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();
}

TEST_F(Crash, DaemonKilledMidScanRunsItAgainOnceAfterRestart) {
  auto& d = start();
  const std::string id = upload(d, slow_image());
  ASSERT_TRUE(eventually([&] { return !workers_of(d).empty(); })) << d.log();
  d.kill_hard();
  EXPECT_TRUE(eventually([&] { return workers_of(d).empty(); }, std::chrono::seconds(5)))
      << "a worker outlived its daemon";

  d.start();
  ASSERT_TRUE(ends_as(d, id, "done")) << d.log();
  EXPECT_EQ(scan(d, id).at("attempts"), 2);  // the interrupted attempt counts
  EXPECT_EQ(audited(d, "scan_done", id), 1U);
  EXPECT_EQ(http_get(d.port(), "/api/v1/scans/" + id + "/report").status, 200U);
  EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();
}

TEST_F(Crash, DaemonKilledWhileStoringAReportStoresItOnceAfterRestart) {
  // The report is stored (rows, signed file in the reports folder) and held
  // there before its scan is recorded done: the window of a half-made store.
  auto& d = start({.workers = 1, .debug_store_delay_ms = 60'000});
  const std::string id = upload(d, test::fixture_dir() / "fat-simple.img");
  ASSERT_TRUE(eventually([&] {
    return d.log().find("job=" + id + " state=storing report stored, held") != std::string::npos;
  })) << d.log();
  const fs::path stored = d.data_dir() / "reports" / (id + ".json");
  EXPECT_TRUE(fs::exists(stored));
  EXPECT_EQ(scan(d, id).at("status"), "running");
  d.kill_hard();

  d.options().debug_store_delay_ms = 0;
  d.start();
  ASSERT_TRUE(ends_as(d, id, "done")) << d.log();
  // Scanned again (the half-made store is not trusted) and stored once.
  EXPECT_EQ(scan(d, id).at("attempts"), 2);
  const auto done = http_get(d.port(), "/api/v1/audit?event=scan_done&scan=" + id).json().at("items");
  ASSERT_EQ(done.size(), 1U) << done.dump();
  const auto served = http_get(d.port(), "/api/v1/scans/" + id + "/report");
  ASSERT_EQ(served.status, 200U);
  EXPECT_EQ(done.at(0).at("detail").at("report_sha256"), sha256_hex(served.body));
  EXPECT_EQ(read_file(stored), served.body);
  const auto listed = http_get(d.port(), "/api/v1/reports").json().at("items");
  EXPECT_EQ(std::count_if(listed.begin(), listed.end(), [&](const json& r) { return r.value("id", "") == id; }), 1);
  const auto verify =
      test::run_command(test::shell_quote(BORDERSCAND) + " audit verify --config " + d.config_file().string());
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();
}

TEST_F(Crash, AWorkerKilledMidScanIsTriedAgainAndTheAttemptCounts) {
  auto& d = start();
  const std::string id = upload(d, slow_image());
  std::vector<pid_t> workers;
  ASSERT_TRUE(eventually([&] { return !(workers = workers_of(d)).empty(); })) << d.log();
  ASSERT_EQ(::kill(workers.front(), SIGKILL), 0);

  ASSERT_TRUE(ends_as(d, id, "done")) << d.log();
  EXPECT_EQ(scan(d, id).at("attempts"), 2);
  EXPECT_NE(d.log().find("job=" + id + " state=queued attempt=1 failed: worker killed by SIGKILL"), std::string::npos)
      << d.log();
  EXPECT_EQ(audited(d, "scan_done", id), 1U);
  EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();
}

TEST_F(Crash, WithOneAttemptAKilledWorkerFailsTheScanNamingTheSignal) {
  auto& d = start({.workers = 1, .jobs_extra = "max_attempts = 1\n"});
  const std::string id = upload(d, slow_image());
  std::vector<pid_t> workers;
  ASSERT_TRUE(eventually([&] { return !(workers = workers_of(d)).empty(); })) << d.log();
  ASSERT_EQ(::kill(workers.front(), SIGKILL), 0);

  ASSERT_TRUE(ends_as(d, id, "failed")) << d.log();
  EXPECT_EQ(scan(d, id).at("error"), "gave up after 1 attempts; last: worker killed by SIGKILL");
  EXPECT_EQ(audited(d, "scan_failed", id), 1U);
  EXPECT_EQ(http_get(d.port(), "/healthz").status, 200U);
  const std::string next = upload(d, test::fixture_dir() / "fat-simple.img");
  ASSERT_TRUE(ends_as(d, next, "done")) << d.log();
  EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();
}

}  // namespace
}  // namespace borderscan::server
