// A full disk while a report is stored (issue #17, item 6), with the real
// daemon on loopback. The data folder (database, reports) is a small tmpfs
// that the test fills; the spool stays on the scratch disk so that the scan
// itself runs and only storing its report meets the full disk. Mounting needs
// root (CI runs as root); without it the tests skip and say so.
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "daemon_harness.hpp"
#include "server_test_support.hpp"
#include "support/test_support.hpp"

namespace borderscan::server {
namespace {

using namespace test_support;
using nlohmann::json;
namespace http = boost::beast::http;
namespace fs = std::filesystem;

// A tmpfs of `megabytes` at `dir`, unmounted when the guard goes.
class tmpfs_mount {
 public:
  tmpfs_mount(const fs::path& dir, unsigned megabytes) : dir_(dir) {
    fs::create_directories(dir);
    const std::string options = "size=" + std::to_string(megabytes) + "m,mode=0700";
    if (::mount("tmpfs", dir.c_str(), "tmpfs", 0, options.c_str()) != 0) {
      error_ = std::strerror(errno);
    }
  }
  ~tmpfs_mount() {
    if (error_.empty()) {
      ::umount2(dir_.c_str(), MNT_DETACH);
    }
  }
  tmpfs_mount(const tmpfs_mount&) = delete;
  tmpfs_mount& operator=(const tmpfs_mount&) = delete;
  const std::string& error() const { return error_; }

 private:
  fs::path dir_;
  std::string error_;
};

// Writes `file` until the file system says ENOSPC: the disk is full.
void fill(const fs::path& file) {
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  const std::vector<char> block(1 << 16, 'f');
  int err = 0;
  while (err == 0) {
    if (::write(fd, block.data(), block.size()) < 0) {
      err = errno;
    }
  }
  // Smaller writes take the last partial pages too.
  while (::write(fd, block.data(), 512) > 0) {
  }
  ::close(fd);
  EXPECT_EQ(err, ENOSPC);
}

class FullDisk : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = std::make_unique<tmpfs_mount>(scratch_ / "data", 24);
    if (!data_->error().empty()) {
      GTEST_SKIP() << "cannot mount a tmpfs for the data folder (" << data_->error()
                   << "); the full-disk tests need root, as CI has";
    }
  }
  void TearDown() override { daemon_.reset(); }  // before the mount goes

  // Backoff 0.3 s, 1.2 s, 4.8 s: the same path as the defaults (1 s, 4 s, 16 s), shorter.
  daemon& start(const std::string& jobs = "store_attempts = 4\nstore_retry_first_delay_ms = 300\n") {
    daemon_ = std::make_unique<daemon>(
        scratch_ / "data", daemon_options{.workers = 1,
                                          .debug_scan_delay_ms = 1500,
                                          .storage_extra = "spool_dir = \"" + (scratch_ / "spool").string() + "\"\n",
                                          .jobs_extra = jobs});
    daemon_->start();
    return *daemon_;
  }

  std::string submit(daemon& d) {
    const auto res =
        http_call(d.port(), http::verb::post, "/api/v1/scans", read_file(test::fixture_dir() / "fat-simple.img"),
                  {{"Authorization", "Bearer " + d.token("k1")}});
    EXPECT_EQ(res.status, 202U) << res.body;
    return res.status == 202U ? res.json().at("id").get<std::string>() : std::string();
  }

  fs::path data_filler() const { return scratch_ / "data" / "filler"; }

  // A scan that has started; then the data folder is filled. Its id, empty if none.
  std::string running_scan_then_fill(daemon& d) {
    const std::string id = submit(d);
    if (id.empty() || !eventually([&] { return scan(d, id).value("status", "") == "running"; })) {
      ADD_FAILURE() << "no running scan\n" << d.log();
      return {};
    }
    fill(data_filler());
    return id;
  }

  json scan(const daemon& d, const std::string& id) { return http_get(d.port(), "/api/v1/scans/" + id).json(); }

  test::scratch_dir scratch_;
  std::unique_ptr<tmpfs_mount> data_;
  std::unique_ptr<daemon> daemon_;
};

TEST_F(FullDisk, AReportStoreRetriesWhileReadyzSaysWhyAndSucceedsWhenSpaceReturns) {
  auto& d = start();
  const std::string id = running_scan_then_fill(d);
  ASSERT_FALSE(id.empty());

  // The store fails and is tried again; the scan stays running meanwhile and
  // /readyz answers 503 with the store's reason.
  ASSERT_TRUE(eventually([&] { return d.log().find("state=storing attempt=1 of 4") != std::string::npos; })) << d.log();
  const auto not_ready = http_get(d.port(), "/readyz");
  EXPECT_EQ(not_ready.status, 503U) << not_ready.body;
  EXPECT_NE(not_ready.body.find("reports cannot be stored"), std::string::npos) << not_ready.body;
  EXPECT_EQ(scan(d, id).at("status"), "running");

  fs::remove(data_filler());
  ASSERT_TRUE(eventually([&] { return scan(d, id).value("status", "") == "done"; })) << d.log();
  EXPECT_EQ(http_get(d.port(), "/readyz").status, 200U);
  EXPECT_EQ(http_get(d.port(), "/api/v1/scans/" + id + "/report").status, 200U);
  EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();
}

TEST_F(FullDisk, AFailureThatCannotBeRecordedIsTriedAgainUntilItLandsAndTheScanEndsFailed) {
  // Two store attempts; then the failure record is tried 0.3 s, 1.2 s, 4.8 s ... apart.
  auto& d = start("store_attempts = 2\nstore_retry_first_delay_ms = 300\n");
  const std::string id = running_scan_then_fill(d);
  ASSERT_FALSE(id.empty());

  // Both store attempts fail, and so do the first records of the failure:
  // the scan stays running, owned, and /readyz says why.
  ASSERT_TRUE(eventually([&] { return d.log().find("state=recording attempt=2") != std::string::npos; })) << d.log();
  EXPECT_NE(d.log().find("state=storing attempt=1 of 2"), std::string::npos) << d.log();
  EXPECT_EQ(scan(d, id).at("status"), "running");
  const auto not_ready = http_get(d.port(), "/readyz");
  EXPECT_EQ(not_ready.status, 503U) << not_ready.body;
  EXPECT_NE(not_ready.body.find("recording the outcome of scan " + id), std::string::npos) << not_ready.body;

  fs::remove(data_filler());
  ASSERT_TRUE(eventually([&] { return scan(d, id).value("status", "") == "failed"; })) << d.log();
  const std::string reason = scan(d, id).at("error");
  EXPECT_EQ(reason.rfind("storing the report failed 2 times; last: ", 0), 0U) << reason;
  EXPECT_EQ(scan(d, id).at("attempts"), 1) << "the scan worked; it is not run again";
  EXPECT_EQ(http_get(d.port(), "/api/v1/audit?event=scan_failed&scan=" + id).json().at("items").size(), 1U);
  EXPECT_TRUE(eventually([&] { return http_get(d.port(), "/readyz").status == 200U; })) << d.log();
  // The daemon serves on: the next scan is stored.
  const std::string next = submit(d);
  ASSERT_TRUE(eventually([&] { return scan(d, next).value("status", "") == "done"; })) << d.log();
  EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();
}

// Files in `dir` and below but `except`: what an upload left behind.
std::size_t files_in(const fs::path& dir, const fs::path& except) {
  std::size_t n = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    n += e.is_regular_file() && e.path() != except ? 1 : 0;
  }
  return n;
}

TEST_F(FullDisk, AnUploadToAFullSpoolGets507KeepsNothingAndUploadsWorkOnceSpaceReturns) {
  const fs::path spool = scratch_ / "spool";
  const tmpfs_mount spool_disk(spool, 8);
  ASSERT_TRUE(spool_disk.error().empty()) << spool_disk.error();
  auto& d = start();
  const fs::path filler = spool / "filler";
  fill(filler);
  const std::string image = read_file(test::fixture_dir() / "fat-simple.img");
  for (const bool chunked : {false, true}) {
    const auto res = http_call(d.port(), http::verb::post, "/api/v1/scans", image,
                               {{"Authorization", "Bearer " + d.token("k1")}}, chunked);
    EXPECT_EQ(res.status, 507U) << res.body;
    EXPECT_EQ(res.header("content-type"), "application/problem+json");
    EXPECT_EQ(res.json().value("type", ""), "urn:borderscan:problem:spool-full") << res.body;
    EXPECT_EQ(files_in(spool, filler), 0U) << "nothing half-written stays";
  }
  EXPECT_EQ(http_get(d.port(), "/healthz").status, 200U);
  EXPECT_TRUE(http_get(d.port(), "/api/v1/scans").json().at("items").empty());

  fs::remove(filler);
  const std::string id = submit(d);
  ASSERT_TRUE(eventually([&] { return scan(d, id).value("status", "") == "done"; })) << d.log();
  EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();
  daemon_.reset();  // before the spool's mount goes
}

}  // namespace
}  // namespace borderscan::server
