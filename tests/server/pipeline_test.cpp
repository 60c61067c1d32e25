// The way a report travels, through the real daemon: the worker writes it to
// a file, the daemon checks and stores that file and serves it as it is; the
// worker runs the daemon's compiled rules and dies with the daemon.
#include <signal.h>

#include <gtest/gtest.h>

#include <fstream>

#include <algorithm>
#include <regex>

#include "daemon_fixture.hpp"
#include "daemon_harness.hpp"
#include "server_test_support.hpp"

namespace borderscan::server {
namespace {

using namespace test_support;
using nlohmann::json;
namespace http = boost::beast::http;
namespace fs = std::filesystem;

std::string upload(daemon& d, const fs::path& image, const std::string& station = "k1") {
  const auto res =
      http_call(d.port(), http::verb::post, "/api/v1/scans?filename=" + image.filename().string(), read_file(image),
                {{"Authorization", "Bearer " + d.token(station)}, {"Content-Type", "application/octet-stream"}});
  EXPECT_EQ(res.status, 202U) << res.body;
  return res.status == 202 ? res.json().at("id").get<std::string>() : std::string();
}

// An upload streamed from the file by curl, for images too large to hold.
std::string upload_large(daemon& d, const fs::path& image) {
  const auto res =
      test::run_command("curl -sS --fail -X POST -T " + test::shell_quote(image.string()) +
                        " -H 'Content-Type: application/octet-stream' -H 'Authorization: Bearer " + d.token("k1") +
                        "' "
                        "http://127.0.0.1:" +
                        std::to_string(d.port()) + "/api/v1/scans");
  EXPECT_EQ(res.exit_code, 0) << res.err;
  return res.exit_code == 0 ? json::parse(res.out).at("id").get<std::string>() : std::string();
}

json status_of(const daemon& d, const std::string& id) {
  const auto res = http_get(d.port(), "/api/v1/scans/" + id);
  return res.status == 200 ? res.json() : json::object();
}

bool ends_as(const daemon& d, const std::string& id, const std::string& status) {
  return eventually([&] { return status_of(d, id).value("status", "") == status; });
}

// The command lines of this daemon's worker processes (they name its spool).
std::vector<std::string> workers_of(const daemon& d) {
  std::vector<std::string> found;
  const std::string needle = d.spool_dir().string();
  for (const auto& e : fs::directory_iterator("/proc")) {
    const auto pid = e.path().filename().string();
    if (pid.find_first_not_of("0123456789") != std::string::npos) {
      continue;
    }
    const std::string cmdline = read_file(e.path() / "cmdline");
    if (cmdline.find(needle) != std::string::npos && cmdline.find("worker") != std::string::npos) {
      found.push_back(cmdline);
    }
  }
  return found;
}

// The report text with what differs from run to run blanked: times, the
// scan id, the station and the names the image's files had (the spool's).
// The signature the daemon adds (the CLI's reports carry none) goes too, and
// so do the evidence notes of flagged files (the daemon keeps copies, the CLI
// does not).
std::string without_run_details(const std::string& text) {
  static const std::regex volatile_fields(
      R"re("(started_at|finished_at|scan_id|station)": "[^"]*"|"(duration_ms)":[0-9]+|"(segments)":\[[^\]]*\])re");
  static const std::regex signature(R"re(,"signature":\{[^}]*\}\}(\s*)$)re");
  static const std::regex evidence_note(R"re("evidence":\{"kept":true\})re");
  return std::regex_replace(
      std::regex_replace(std::regex_replace(text, signature, "}$1"), evidence_note, "\"evidence\":null"),
      volatile_fields, "\"$1$2$3\": -");
}

using Pipeline = daemon_test;

TEST_F(Pipeline, TheStoredReportIsTheCliReportOfTheSameImage) {
  auto& d = start();
  for (const char* name :
       {"fat-simple.img", "gpt-two-volumes.img", "ext4-simple.img", "iso-simple.iso", "mbr-ext.img", "fat-clean.img"}) {
    const fs::path image = test::fixture_dir() / name;
    const std::string id = upload(d, image);
    ASSERT_TRUE(ends_as(d, id, "done")) << name << "\n" << d.log();
    const auto served = http_get(d.port(), "/api/v1/scans/" + id + "/report");
    ASSERT_EQ(served.status, 200U) << served.body;

    const fs::path cli_report = scratch_ / (std::string(name) + ".json");
    const auto cli =
        test::run_command(test::shell_quote(BORDERSCAN_CLI) + " scan -q -o " + test::shell_quote(cli_report.string()) +
                          " " + test::shell_quote(image.string()));
    ASSERT_NE(cli.exit_code, 2) << cli.err;
    const bool same = without_run_details(served.body) == without_run_details(read_file(cli_report));
    EXPECT_TRUE(same) << name << ": the stored report differs from the CLI's\n" << served.body;
    EXPECT_EQ(json::parse(served.body).at("scan_id"), id);
  }
  EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();
}

TEST_F(Pipeline, ServedReportsAreSignedAndVerifyOfflineUntilOneByteChanges) {
  auto& d = start();
  const std::string id = upload(d, test::fixture_dir() / "fat-simple.img");
  ASSERT_TRUE(ends_as(d, id, "done")) << d.log();
  const auto served = http_get(d.port(), "/api/v1/scans/" + id + "/report");
  ASSERT_EQ(served.status, 200U);
  const json signature = json::parse(served.body).at("signature");
  EXPECT_EQ(signature.at("alg"), "Ed25519");
  const auto key = http_get(d.port(), "/api/v1/signing-key");
  ASSERT_EQ(key.status, 200U);
  EXPECT_EQ(key.header("content-type"), "application/x-pem-file");
  EXPECT_TRUE(key.body.starts_with("-----BEGIN PUBLIC KEY-----")) << key.body;
  const fs::path key_file = scratch_ / "signing-key.pem", report_file = scratch_ / "report.json";
  std::ofstream(key_file) << key.body;
  std::ofstream(report_file, std::ios::binary) << served.body;
  const std::string verify = test::shell_quote(BORDERSCAN_CLI) + " verify " + test::shell_quote(report_file.string()) +
                             " --key " + test::shell_quote(key_file.string());
  const auto valid = test::run_command(verify);
  EXPECT_EQ(valid.exit_code, 0) << valid.out << valid.err;
  EXPECT_NE(valid.out.find(signature.at("key_id").get<std::string>()), std::string::npos) << valid.out;

  // One byte anywhere: in a file entry, in the summary, in the signature itself.
  for (const std::string& anchor : {std::string("\"path\""), std::string("\"verdict\""), std::string("\"value\":\"")}) {
    std::string changed = served.body;
    const auto at = changed.rfind(anchor);
    ASSERT_NE(at, std::string::npos) << anchor;
    const std::size_t pos = at + anchor.size() + 3;
    changed[pos] = changed[pos] == 'A' ? 'B' : 'A';
    std::ofstream(report_file, std::ios::binary | std::ios::trunc) << changed;
    const auto broken = test::run_command(verify);
    EXPECT_EQ(broken.exit_code, 1) << "changed at " << pos << " (" << anchor << "): " << broken.out;
  }
  // Usage errors: no key, a key that is not one, a report that is not there.
  EXPECT_EQ(test::run_command(test::shell_quote(BORDERSCAN_CLI) + " verify " + report_file.string()).exit_code, 2);
  std::ofstream(scratch_ / "not-a-key.pem") << "hello";
  EXPECT_EQ(test::run_command(test::shell_quote(BORDERSCAN_CLI) + " verify " + report_file.string() + " --key " +
                              (scratch_ / "not-a-key.pem").string())
                .exit_code,
            2);
  EXPECT_EQ(
      test::run_command(test::shell_quote(BORDERSCAN_CLI) + " verify /nonexistent.json --key " + key_file.string())
          .exit_code,
      2);
  // The key survives a restart: reports stay verifiable with the key fetched before.
  EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();
  d.start();
  EXPECT_EQ(http_get(d.port(), "/api/v1/signing-key").body, key.body);
  EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();
}

TEST_F(Pipeline, TheServedReportIsTheFileTheAuditLogPins) {
  auto& d = start();
  const std::string id = upload(d, test::fixture_dir() / "fat-simple.img");
  ASSERT_TRUE(ends_as(d, id, "done")) << d.log();
  const auto served = http_get(d.port(), "/api/v1/scans/" + id + "/report");
  const auto audit = http_get(d.port(), "/api/v1/audit?event=scan_done&scan=" + id).json();
  ASSERT_EQ(audit.at("items").size(), 1U);
  EXPECT_EQ(audit.at("items")[0].at("detail").at("report_sha256"), sha256_hex(served.body));
  EXPECT_EQ(read_file(d.data_dir() / "reports" / (id + ".json")), served.body);
  EXPECT_FALSE(fs::exists(d.spool_dir() / (id + ".report.json"))) << "moved into the store, not copied";
  EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();
}

TEST_F(Pipeline, AWorkerNeverOutlivesADaemonKilledMidScanAndTheScanFinishesOnce) {
  // Two scans that keep their workers busy: 600 MiB of zeros in one file
  // (sparse on disk; seconds of hashing, with progress on the pipe), and a
  // qcow2 of an empty 64 GiB disk (200 KiB uploaded; reading and hashing the
  // device's 64 GiB of zeros outlasts the deadline: a worker that only the
  // daemon's deadline, or its death, stops early).
  const fs::path content = scratch_ / "content";
  fs::create_directories(content);
  ASSERT_EQ(test::run_command("truncate -s 600M " + test::shell_quote((content / "zeros.bin").string())).exit_code, 0);
  const fs::path image = scratch_ / "big.img";
  const auto made = test::run_command("mke2fs -q -t ext4 -d " + test::shell_quote(content.string()) + " " +
                                      test::shell_quote(image.string()) + " 700M");
  ASSERT_EQ(made.exit_code, 0) << made.err;
  const fs::path spinning = scratch_ / "empty-64g.qcow2";
  const auto qcow = test::run_command("qemu-img create -q -f qcow2 " + test::shell_quote(spinning.string()) + " 64G");
  ASSERT_EQ(qcow.exit_code, 0) << qcow.err;

  // The deadline stops the spinning scan and leaves the other room on a busy machine.
  auto& d = start({.workers = 2, .extra_config = "[worker]\ntimeout_seconds = 30\n"});
  const std::string big = upload_large(d, image);
  const std::string spin = upload(d, spinning);
  ASSERT_TRUE(eventually([&] { return workers_of(d).size() == 2; })) << d.log();
  d.kill_hard();
  EXPECT_TRUE(eventually([&] { return workers_of(d).empty(); }, std::chrono::seconds(5)))
      << "a worker outlived its daemon";

  d.start();
  std::size_t most_per_scan = 0;
  ASSERT_TRUE(eventually(
      [&] {
        const auto running = workers_of(d);
        for (const auto& id : {big, spin}) {
          most_per_scan = std::max<std::size_t>(
              most_per_scan, std::count_if(running.begin(), running.end(),
                                           [&](const std::string& cmd) { return cmd.find(id) != std::string::npos; }));
        }
        const std::string spun = status_of(d, spin).value("status", "");
        return status_of(d, big).value("status", "") == "done" && (spun == "failed" || spun == "done");
      },
      std::chrono::seconds(180)))
      << d.log();
  EXPECT_EQ(most_per_scan, 1U) << "one worker per scan";
  EXPECT_EQ(status_of(d, big).at("attempts"), 2);  // the interrupted attempt counts
  // The 64 GiB scan ends at the deadline (or done on a very fast machine), once either way.
  const auto spin_end = http_get(d.port(), "/api/v1/audit?scan=" + spin).json();
  EXPECT_EQ(std::count_if(spin_end.at("items").begin(), spin_end.at("items").end(),
                          [](const json& e) { return e.at("event") == "scan_done" || e.at("event") == "scan_failed"; }),
            1);
  const auto done = http_get(d.port(), "/api/v1/audit?event=scan_done&scan=" + big).json();
  EXPECT_EQ(done.at("items").size(), 1U) << "stored once";
  const auto report = http_get(d.port(), "/api/v1/scans/" + big + "/report").json();
  EXPECT_EQ(report.at("verdict"), "clean");
  EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();
  EXPECT_TRUE(workers_of(d).empty());
}

TEST_F(Pipeline, ChangingTheCompiledRulesUnderAScanFailsItWithADigestMismatch) {
  // Each scan waits 3 s as `running` before its worker starts: time to change the file.
  auto& d = start({.workers = 1, .debug_scan_delay_ms = 3'000});
  std::vector<fs::path> compiled;
  for (const auto& e : fs::directory_iterator(d.data_dir() / "rules")) {
    compiled.push_back(e.path());
  }
  ASSERT_EQ(compiled.size(), 1U) << "the daemon saved its compiled rules";
  const std::string before = upload(d, test::fixture_dir() / "fat-clean.img");
  const std::string id = upload(d, test::fixture_dir() / "fat-simple.img");
  ASSERT_TRUE(ends_as(d, before, "done")) << "the saved rules work\n" << d.log();
  ASSERT_TRUE(ends_as(d, id, "running")) << d.log();
  { std::ofstream(compiled[0], std::ios::binary | std::ios::app) << "changed"; }
  ASSERT_TRUE(ends_as(d, id, "failed")) << d.log();
  const std::string reason = status_of(d, id).at("error");
  EXPECT_EQ(reason.rfind("rule-set digest mismatch: ", 0), 0U) << reason;
  EXPECT_EQ(status_of(d, id).at("attempts"), 1) << "not retried: it cannot succeed";
  EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();
}

}  // namespace
}  // namespace borderscan::server
