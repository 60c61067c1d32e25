#include "borderscan/server/process_runner.hpp"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/wait.h>

#include <fstream>
#include <future>
#include <thread>

#include "borderscan/scanner/digest.hpp"
#include "server_test_support.hpp"
#include "support/test_support.hpp"

namespace fs = std::filesystem;
using namespace borderscan;

namespace {

// A stand-in worker: a shell script that misbehaves on purpose.
fs::path script(const test::scratch_dir& dir, const std::string& name, const std::string& body) {
  const fs::path p = dir / name;
  std::ofstream(p) << "#!/bin/sh\n" << body << "\n";
  fs::permissions(p, fs::perms::owner_all);
  return p;
}

server::process_runner_settings settings_for(const fs::path& command) {
  server::process_runner_settings s;
  s.command = command;
  s.rule_paths = {test::rules_dir()};
  s.worker.timeout_seconds = 60;
  return s;
}

// A scan of `image` as the spool holds it: a link in a folder of the test's,
// so the worker writes its report there.
server::scan_record record_for(const fs::path& image, const fs::path& spool) {
  server::scan_record r;
  r.id = "scan-test";
  r.station = "kiosk-1";
  const fs::path link = spool / ("scan-test-" + image.filename().string());
  std::error_code ignored;
  fs::remove(link, ignored);
  fs::create_symlink(image, link);
  r.spool_path = link.string();
  return r;
}

nlohmann::json report_of(const server::report_file& file) {
  std::ifstream in(file.path);
  return nlohmann::json::parse(in);
}

// The failure reason a run ends with ("" when it returned a report).
std::string failure_of(server::process_runner& runner, const server::scan_record& record,
                       const std::atomic<bool>& cancel) {
  try {
    runner.run({record, cancel, {}});
    return "";
  } catch (const server::scan_failed& e) {
    return std::string("failed: ") + e.what();
  } catch (const std::exception& e) {
    return std::string("error: ") + e.what();
  }
}

// No child of this process may be left behind, zombie or running.
void expect_no_children() {
  int status = 0;
  errno = 0;
  EXPECT_EQ(::waitpid(-1, &status, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
}

const fs::path fat_image() {
  return test::fixture_dir() / "fat-simple.img";
}

}  // namespace

TEST(ProcessRunner, RealWorkerWritesTheReportFileItNames) {
  test::scratch_dir dir;
  server::process_runner runner(settings_for(BORDERSCAN_CLI));
  std::atomic<bool> cancel{false};
  std::vector<scanner::scan_progress> seen;
  const auto scan = record_for(fat_image(), dir.path());
  const auto file = runner.run({scan, cancel, [&](const auto& p) { seen.push_back(p); }});
  EXPECT_EQ(file.path, server::report_path_for(scan));
  EXPECT_EQ(file.size, fs::file_size(file.path));
  EXPECT_EQ(file.sha256, scanner::sha256_hex(server::test_support::read_file(file.path)));
  const auto report = report_of(file);
  EXPECT_EQ(report.at("verdict"), "flagged");
  EXPECT_EQ(report.at("scan_id"), "scan-test");
  EXPECT_EQ(report.at("station"), "kiosk-1");
  EXPECT_EQ(report.at("ruleset").at("digest"), file.ruleset_digest);
  EXPECT_FALSE(seen.empty());
  test::validate_report(report);
  expect_no_children();
}

TEST(ProcessRunner, WorkerLoadsTheDaemonsCompiledRulesAndRefusesChangedOnes) {
  test::scratch_dir dir;
  scanner::yara_library yara;
  server::rule_holder rules(
      server::load_rules(scanner::rule_sources_for({test::rules_dir().string()}, {}), dir / "compiled"));
  auto s = settings_for(BORDERSCAN_CLI);
  s.rules = &rules;
  server::process_runner runner(s);
  std::atomic<bool> cancel{false};
  const auto file = runner.run({record_for(fat_image(), dir.path()), cancel, {}});
  EXPECT_EQ(file.ruleset_digest, rules.current()->info().digest);
  EXPECT_EQ(report_of(file).at("verdict"), "flagged") << "the compiled rules still find EICAR";

  // The compiled file changed under the daemon: no worker may use it.
  { std::ofstream(rules.snapshot().compiled, std::ios::app) << "tampered"; }
  const std::string got = failure_of(runner, record_for(fat_image(), dir.path()), cancel);
  EXPECT_EQ(got.rfind("failed: rule-set digest mismatch: ", 0), 0U) << got;
  EXPECT_NE(got.find("compiled rules changed since written"), std::string::npos) << got;
  expect_no_children();
}

TEST(ProcessRunner, AWorkerWithAnotherRuleSetIsStoppedAtOnce) {
  test::scratch_dir dir;
  scanner::yara_library yara;
  server::rule_holder rules(test::shipped_rules());
  // Says it loaded other rules, then would scan for ten minutes.
  auto s = settings_for(script(dir, "other-rules.sh",
                               "echo '{\"type\":\"started\",\"pid\":1,\"ruleset\":\"sha256:other\"}'; exec sleep 600"));
  s.rules = &rules;
  server::process_runner runner(s);
  std::atomic<bool> cancel{false};
  const auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(failure_of(runner, record_for(fat_image(), dir.path()), cancel),
            "failed: rule-set digest mismatch: the worker loaded rule set sha256:other, the daemon holds " +
                rules.current()->info().digest);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(60));
  expect_no_children();
}

TEST(ProcessRunner, MisbehavingWorkersEndWithPreciseReasons) {
  test::scratch_dir dir;
  struct misbehaviour {
    std::string name, body, expected;
  };
  const std::vector<misbehaviour> cases = {
      {"crash.sh", "kill -SEGV $$", "failed: crashed: SIGSEGV"},
      {"abort.sh", "kill -ABRT $$", "failed: crashed: SIGABRT"},
      {"garbage.sh", "echo 'this is not json'; exit 0",
       "failed: malformed worker output: a line that is not a JSON message"},
      {"silent.sh", "exit 0", "failed: malformed worker output: exited with code 0 without a report"},
      {"partial.sh", "printf '{\"type\":\"report\",\"path\":'; exit 0",
       "failed: malformed worker output: output ends in the middle of a line"},
      {"oldreport.sh", "echo '{\"type\":\"report\",\"report\":{\"schema\":\"borderscan.report/v1\"}}'",
       "failed: malformed worker output: a line that is not a JSON message"},
      {"nostart.sh", "echo '{\"type\":\"report\",\"path\":\"/x\",\"size\":1,\"sha256\":\"00\"}'",
       "failed: malformed worker output: exited with code 0 without a report"},
      {"elsewhere.sh",
       "echo '{\"type\":\"started\",\"pid\":1,\"ruleset\":\"r\"}'; "
       "echo '{\"type\":\"report\",\"path\":\"/etc/passwd\",\"size\":1,\"sha256\":\"00\"}'",
       "failed: malformed worker output: a report at /etc/passwd, not where it was asked for"},
      {"error.sh", "echo '{\"type\":\"error\",\"code\":\"rules_invalid\",\"message\":\"x.yar:1: boom\"}'; exit 2",
       "failed: worker error: x.yar:1: boom"},
      {"oom.sh", "echo '{\"type\":\"error\",\"code\":\"memory_limit\",\"message\":\"out of memory\"}'; exit 3",
       "failed: memory limit 1048576 bytes exceeded"},
      {"cpu.sh", "kill -XCPU $$", "failed: CPU time limit 7 s exceeded"},
  };
  for (const auto& c : cases) {
    auto s = settings_for(script(dir, c.name, c.body));
    s.worker.memory_limit_bytes = 1 << 20;
    s.worker.cpu_limit_seconds = 7;
    server::process_runner runner(s);
    std::atomic<bool> cancel{false};
    const std::string got = failure_of(runner, record_for(fat_image(), dir.path()), cancel);
    EXPECT_EQ(got.substr(0, c.expected.size()), c.expected) << c.name << ": " << got;
  }
  expect_no_children();
}

TEST(ProcessRunner, OutputIsBounded) {
  test::scratch_dir dir;
  auto s = settings_for(script(dir, "flood.sh", "yes '{\"type\":\"progress\"}' | head -c 50000000"));
  s.worker.max_output_bytes = 1 << 20;
  server::process_runner runner(s);
  std::atomic<bool> cancel{false};
  EXPECT_EQ(failure_of(runner, record_for(fat_image(), dir.path()), cancel),
            "failed: malformed worker output: output larger than 1048576 bytes");
  expect_no_children();
}

TEST(ProcessRunner, HangingWorkerIsKilledAtTheDeadline) {
  test::scratch_dir dir;
  auto s = settings_for(script(dir, "hang.sh", "exec sleep 600"));
  s.worker.timeout_seconds = 1;
  server::process_runner runner(s);
  std::atomic<bool> cancel{false};
  EXPECT_EQ(failure_of(runner, record_for(fat_image(), dir.path()), cancel), "failed: timed out after 1 s");
  expect_no_children();
}

TEST(ProcessRunner, CancelKillsAndReapsTheWorker) {
  test::scratch_dir dir;
  server::process_runner runner(settings_for(script(dir, "hang.sh", "exec sleep 600")));
  std::atomic<bool> cancel{false};
  auto outcome =
      std::async(std::launch::async, [&] { return failure_of(runner, record_for(fat_image(), dir.path()), cancel); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  cancel = true;
  ASSERT_EQ(outcome.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_EQ(outcome.get(), "error: cancelled");  // not a scan failure: the pool records "cancelled"
  expect_no_children();
}

// Issue #17: the worker may create files only in <spool>/work/<scan id>/, made
// private for the attempt and gone when it ends, however it ends.
TEST(ProcessRunner, EachAttemptHasAPrivateWorkFolderRemovedWhenItEnds) {
  test::scratch_dir dir;
  const fs::path seen = dir / "seen.txt";
  // Records the folder it was given and its mode, leaves a file in it, then ends as told.
  const std::string record_folder =
      "while [ $# -gt 0 ]; do [ \"$1\" = --work-dir ] && w=\"$2\"; shift; done; "
      "echo \"$w\" > '" +
      seen.string() + "'; stat -c %a \"$w\" >> '" + seen.string() +
      "'; "
      "echo scratch > \"$w/left-behind\"; ";
  const server::scan_record record = record_for(fat_image(), dir.path());
  const fs::path expected = dir / "work" / record.id;
  EXPECT_EQ(server::work_folder_for(record), expected);
  for (const auto& [name, ending] : std::vector<std::pair<std::string, std::string>>{
           {"fails.sh", "exit 2"}, {"crashes.sh", "kill -SEGV $$"}, {"hangs.sh", "exec sleep 600"}}) {
    fs::create_directories(expected);
    std::ofstream(expected / "from-an-earlier-attempt") << "x";
    auto s = settings_for(script(dir, name, record_folder + ending));
    s.worker.timeout_seconds = 1;
    server::process_runner runner(s);
    std::atomic<bool> cancel{false};
    EXPECT_NE(failure_of(runner, record, cancel), "") << name;
    std::ifstream in(seen);
    std::string folder, mode;
    std::getline(in, folder);
    std::getline(in, mode);
    EXPECT_EQ(folder, expected.string()) << name;
    EXPECT_EQ(mode, "700") << name;
    EXPECT_FALSE(fs::exists(expected)) << name << ": the work folder outlived its attempt";
    fs::remove(seen);
  }
  expect_no_children();
}

TEST(ProcessRunner, WorkerSeesACleanEnvironmentAndNoDaemonDescriptors) {
  test::scratch_dir dir;
  ::setenv("BORDERSCAN_SECRET_TOKEN", "hunter2", 1);
  const fs::path out = dir / "env.txt";
  // Lists its environment and open descriptors, then reports a clean failure.
  server::process_runner runner(settings_for(
      script(dir, "env.sh", "env > '" + out.string() + "'; ls /proc/$$/fd >> '" + out.string() + "'; exit 0")));
  std::atomic<bool> cancel{false};
  const int extra = ::open("/dev/null", O_RDONLY);  // a descriptor the daemon holds, without CLOEXEC
  failure_of(runner, record_for(fat_image(), dir.path()), cancel);
  ::close(extra);
  ::unsetenv("BORDERSCAN_SECRET_TOKEN");
  std::ifstream in(out);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text.find("hunter2"), std::string::npos) << text;
  EXPECT_NE(text.find("PATH=/usr/bin:/bin"), std::string::npos) << text;
  EXPECT_EQ(text.find("\n" + std::to_string(extra) + "\n"), std::string::npos) << "descriptor leaked: " << text;
}

TEST(ProcessRunner, CorpusEveryHostileImageEndsDoneOrFailedNeverHung) {
  BORDERSCAN_REQUIRE_CORPUS();
  test::scratch_dir tmp;
  auto s = settings_for(BORDERSCAN_CLI);
  s.worker.timeout_seconds = 60;
  server::process_runner runner(s);
  const auto images = test::hostile_images(tmp.path());
  ASSERT_GE(images.size(), 11u);
  for (const auto& image : images) {
    server::process_runner r(s);
    std::atomic<bool> cancel{false};
    try {
      const auto report = report_of(r.run({record_for(image, tmp.path()), cancel, {}}));
      // Done: a schema-valid report; loop images end clean with their loops in `warnings`.
      test::validate_report(report);
      EXPECT_TRUE(report.at("verdict") != "clean" || !report.at("warnings").empty() ||
                  image.filename() == "fatcat-infinite-file.img")
          << image;
    } catch (const server::scan_failed& e) {
      ADD_FAILURE() << image << ": every hostile image ends in a report with its errors: " << e.what();
    }
  }
  expect_no_children();
}
