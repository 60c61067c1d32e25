// `borderscan worker`: the fenced scan process the daemon runs.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "borderscan/scanner/digest.hpp"
#include "support/test_support.hpp"

namespace fs = std::filesystem;
using borderscan::test::run_command;
using borderscan::test::shell_quote;
using nlohmann::json;

namespace {

std::vector<json> lines_of(const std::string& out) {
  std::vector<json> lines;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    lines.push_back(json::parse(line));  // every line must be one JSON document
  }
  return lines;
}

std::string read_whole(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string worker() {
  return shell_quote(BORDERSCAN_CLI) + " worker";
}

}  // namespace

// Issue #17: each class the fence must deny, tried inside the real fenced
// worker; the old denylist let io_uring, process_vm_*, kill, open_by_handle_at,
// unshare and setxattr through.
TEST(Worker, CheckSandboxDeniesEveryClassAndKeepsScratchFilesWorking) {
  borderscan::test::scratch_dir tmp;
  const fs::path work = tmp / "work";
  fs::create_directory(work);
  const auto res = run_command(worker() + " --check-sandbox --work-dir " + shell_quote(work.string()));
  EXPECT_EQ(res.exit_code, 0) << res.out << res.err;
  std::vector<std::string> lines;
  std::istringstream in(res.out);
  for (std::string line; std::getline(in, line);) {
    lines.push_back(line);
  }
  const auto has = [&](const std::string& line) { return std::find(lines.begin(), lines.end(), line) != lines.end(); };
  for (const char* denied : {"io_uring",
                             "process_vm",
                             "signals to other processes",
                             "open_by_handle_at",
                             "namespaces",
                             "child processes",
                             "mount",
                             "xattr writes",
                             "ptrace",
                             "bpf",
                             "perf_event_open",
                             "keys",
                             "userfaultfd",
                             "network",
                             "exec",
                             "chmod and chown",
                             "rename, link and symlink",
                             "mknod and mkdir",
                             "personality",
                             "write outside the work folder through another dirfd",
                             "write by absolute path",
                             "overwriting an existing scratch file",
                             "ioctl other than TCGETS",
                             "fcntl F_SETOWN and F_SETSIG",
                             "prlimit64 of another process",
                             "anything else"}) {
    EXPECT_TRUE(has(std::string("denied ") + denied + ": EPERM")) << denied << "\n" << res.out;
  }
  EXPECT_TRUE(has("denied clone3: ENOSYS")) << res.out;
  for (const char* allowed :
       {"scratch file create and write", "scratch O_TMPFILE", "scratch reopen read-only by absolute path",
        "signals to itself", "reading /proc/self", "scratch unlink"}) {
    EXPECT_TRUE(has(std::string("allowed ") + allowed + ": ok")) << allowed << "\n" << res.out;
  }
  EXPECT_TRUE(has("checked sibling process still alive: yes")) << res.out;
  EXPECT_TRUE(has("checked folder outside the work folder untouched: yes")) << res.out;
  EXPECT_EQ(res.out.find("NOT denied"), std::string::npos) << res.out;
  EXPECT_EQ(res.out.find("FAILED"), std::string::npos) << res.out;
  EXPECT_TRUE(fs::is_empty(work)) << "the probes clean up after themselves";
}

TEST(Worker, CheckSandboxUnderLandlockRefusesPathsOutsideTheWorkFolder) {
  const auto res = run_command(worker() + " --check-sandbox");
  EXPECT_EQ(res.exit_code, 0) << res.out << res.err;
  if (res.out.find("landlock: enforced") == std::string::npos) {
    GTEST_SKIP() << "this kernel has no Landlock, the worker runs on seccomp only:\n" << res.out;
  }
  for (const char* denied : {"read outside the allowed paths", "create outside through ../ from the scratch dirfd",
                             "unlink outside through ../ from the scratch dirfd"}) {
    EXPECT_NE(res.out.find(std::string("denied ") + denied + ": EACCES"), std::string::npos) << denied << res.out;
  }
}

TEST(Worker, SeccompLogNamesEachRefusedCallAndStillRefusesIt) {
  const auto res = run_command("BORDERSCAN_SECCOMP_LOG=1 " + worker() + " --check-sandbox");
  EXPECT_EQ(res.exit_code, 0) << res.out << res.err;
  for (const char* call : {"io_uring_setup", "process_vm_readv", "kill", "open_by_handle_at", "unshare", "setxattr",
                           "ptrace", "socket", "execve"}) {
    EXPECT_NE(res.err.find(std::string("borderscan sandbox: denied system call ") + call + " ("), std::string::npos)
        << call << "\n"
        << res.err;
  }
  EXPECT_EQ(res.out.find("NOT denied"), std::string::npos) << res.out;
}

TEST(Worker, StreamsProgressThenWritesOneSchemaValidReportFile) {
  borderscan::test::scratch_dir tmp;
  const fs::path report_file = tmp / "report.json";
  const fs::path work = tmp / "work";
  fs::create_directory(work);
  const auto res =
      run_command(worker() + " --scan-id s-1 --station kiosk-7 --limits '{\"max_depth\": 2}' --image " +
                  shell_quote((borderscan::test::fixture_dir() / "gpt-two-volumes.img").string()) + " --report " +
                  shell_quote(report_file.string()) + " --work-dir " + shell_quote(work.string()));
  ASSERT_EQ(res.exit_code, 0) << res.err;
  EXPECT_TRUE(fs::is_empty(work)) << "the report-entry spill is an unlinked file";
  const auto lines = lines_of(res.out);
  ASSERT_GE(lines.size(), 3u);
  EXPECT_EQ(lines.front().at("type"), "started");
  std::uint64_t last_done = 0;
  for (std::size_t i = 1; i + 1 < lines.size(); ++i) {
    EXPECT_EQ(lines[i].at("type"), "progress");
    EXPECT_GE(lines[i].at("files_done").get<std::uint64_t>(), last_done);
    last_done = lines[i].at("files_done");
  }
  ASSERT_EQ(lines.back().at("type"), "report");
  EXPECT_EQ(lines.back().at("path"), report_file.string());
  EXPECT_EQ(lines.back().at("size"), fs::file_size(report_file));
  EXPECT_EQ(lines.back().at("sha256"), borderscan::scanner::sha256_hex(read_whole(report_file)));
  EXPECT_EQ(fs::status(report_file).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);
  const json report = json::parse(read_whole(report_file));
  EXPECT_EQ(report.at("ruleset").at("digest"), lines.front().at("ruleset"));
  borderscan::test::validate_report(report);
  EXPECT_EQ(report.at("scan_id"), "s-1");
  EXPECT_EQ(report.at("station"), "kiosk-7");
  EXPECT_EQ(report.at("verdict"), "flagged");
}

TEST(Worker, UnderLandlockTheSegmentsBesideANamedFirstOneStayReadable) {
  borderscan::test::scratch_dir tmp;
  const fs::path report_file = tmp / "report.json";
  const fs::path first = borderscan::test::fixture_dir() / "split" / "gpt-two-volumes.img.001";
  const auto res = run_command(worker() + " --image " + shell_quote(first.string()) + " --report " +
                               shell_quote(report_file.string()));
  ASSERT_EQ(res.exit_code, 0) << res.err;
  const json report = json::parse(read_whole(report_file));
  EXPECT_EQ(report.at("image").at("segments").size(), 3u) << report.at("image");
  EXPECT_TRUE(report.at("errors").empty()) << report.at("errors");
  EXPECT_EQ(report.at("verdict"), "flagged");
}

TEST(Worker, BadLimitsOrRulesEndWithAnErrorLine) {
  borderscan::test::scratch_dir tmp;
  const std::string image = shell_quote((borderscan::test::fixture_dir() / "fat-simple.img").string()) + " --report " +
                            shell_quote((tmp / "r.json").string());
  const auto bad_limit = run_command(worker() + " --limits '{\"max_dept\": 1}' --image " + image);
  EXPECT_EQ(bad_limit.exit_code, 2);
  const auto lines = lines_of(bad_limit.out);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].at("type"), "error");
  EXPECT_NE(lines[0].at("message").get<std::string>().find("max_dept"), std::string::npos);

  fs::remove(tmp / "r.json");
  const auto no_rules = run_command(worker() + " --rules /nonexistent --image " + image);
  EXPECT_EQ(no_rules.exit_code, 2);
  EXPECT_EQ(lines_of(no_rules.out).at(0).at("code"), "rules_invalid");

  // The report file is the worker's own: one that exists is never overwritten.
  const auto exists = run_command(worker() + " --image " + image);
  EXPECT_EQ(exists.exit_code, 2);
  EXPECT_EQ(lines_of(exists.out).at(0).at("code"), "report_failed");
}

TEST(Worker, ExitsAtOnceWhenItsParentIsGone) {
  borderscan::test::scratch_dir tmp;
  // pid 1 is never the parent of a process this test starts.
  const auto res =
      run_command(worker() + " --parent-pid 1 --report " + shell_quote((tmp / "r.json").string()) + " --image " +
                  shell_quote((borderscan::test::fixture_dir() / "fat-simple.img").string()));
  EXPECT_EQ(res.exit_code, 2);
  EXPECT_EQ(lines_of(res.out).at(0).at("code"), "parent_gone");
}

TEST(Worker, CpuLimitStopsAScanThatRunsTooLong) {
  // 64 GiB of zeros (a sparse file: no disk used) takes far more than two
  // CPU seconds to read and hash, as a libtsk loop on a crafted image would.
  borderscan::test::scratch_dir tmp;
  const fs::path image = tmp / "huge.img";
  fs::resize_file((std::ofstream(image), image), std::uint64_t{64} << 30);
  const auto res =
      run_command("timeout -s KILL 60 " + worker() + " --cpu-limit 2 --image " + shell_quote(image.string()) +
                  " --report " + shell_quote((tmp / "r.json").string()) + "; echo \"exit=$?\" >&2");
  // The shell reports death by signal as 128 + n: SIGXCPU is 24.
  EXPECT_NE(res.err.find("exit=152"), std::string::npos) << res.err;
  EXPECT_EQ(res.out.find("\"type\":\"report\""), std::string::npos);
}
