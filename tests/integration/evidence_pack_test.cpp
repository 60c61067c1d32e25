// The evidence pack end to end: the real `borderscan worker`, sandboxed,
// copies flagged files' content into the pack it was given, and the pack
// holds exactly the bytes whose SHA-256 the report names.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <fstream>
#include <map>
#include <sstream>

#include "borderscan/protocol/worker_protocol.hpp"
#include "borderscan/scanner/digest.hpp"
#include "borderscan/scanner/evidence_pack.hpp"
#include "support/test_support.hpp"

namespace fs = std::filesystem;
namespace sc = borderscan::scanner;
namespace proto = borderscan::protocol;
using borderscan::test::eicar;
using borderscan::test::find_file;
using borderscan::test::run_command;
using borderscan::test::scratch_dir;
using borderscan::test::shell_quote;
using nlohmann::json;

namespace {

constexpr const char* eicar_sha256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f";

void sh(const std::string& cmd) {
  const auto res = run_command(cmd);
  ASSERT_EQ(res.exit_code, 0) << cmd << "\n" << res.err;
}

std::string read_whole(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::vector<json> lines_of(const std::string& out) {
  std::vector<json> lines;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    lines.push_back(json::parse(line));
  }
  return lines;
}

// Runs the worker on `image` with a pack beside the report; returns the
// report (checked against the schema) after a `report` line.
json run_worker(const scratch_dir& tmp, const fs::path& image, const std::string& extra = "") {
  const auto res = run_command(shell_quote(BORDERSCAN_CLI) + " worker --jobs 2 --image " + shell_quote(image.string()) +
                               " --report " + shell_quote((tmp / "report.json").string()) + " --evidence-pack " +
                               shell_quote((tmp / "evidence.pack").string()) + " " + extra);
  EXPECT_EQ(res.exit_code, 0) << res.out << res.err;
  const auto lines = lines_of(res.out);
  EXPECT_FALSE(lines.empty());
  if (lines.empty()) {
    return json::object();
  }
  EXPECT_EQ(lines.back().at("type"), "report") << res.out;
  const json report = json::parse(read_whole(tmp / "report.json"));
  borderscan::test::validate_report(report);
  return report;
}

// Every kept record's content by SHA-256, each checked against its digest.
std::map<std::string, std::string> kept_in(const fs::path& pack) {
  std::map<std::string, std::string> out;
  sc::read_evidence_pack(pack, [&](const sc::evidence_record& r) {
    EXPECT_FALSE(out.contains(r.sha256)) << "content kept twice: " << r.sha256;
    sc::copy_evidence(pack, r, [&](std::span<const std::byte> piece) {
      out[r.sha256].append(reinterpret_cast<const char*>(piece.data()), piece.size());
    });
  });
  return out;
}

bool flagged(const json& file) {
  for (const auto& f : file.at("findings")) {
    const std::string level = f.at("severity");
    if (level == "medium" || level == "high" || level == "critical") return true;
  }
  return false;
}

// Every flagged file has a note; no other file has one; every kept note's
// content is in the pack under the entry's sha256.
void expect_notes_match_the_pack(const json& report, const std::map<std::string, std::string>& kept) {
  for (const auto& f : report.at("files")) {
    const std::string path = f.at("path");
    if (!flagged(f)) {
      EXPECT_TRUE(f.at("evidence").is_null()) << path;
      continue;
    }
    ASSERT_TRUE(f.at("evidence").is_object()) << path << " is flagged and has no evidence note";
    if (f.at("evidence").at("kept") == true) {
      ASSERT_TRUE(f.at("sha256").is_string()) << path;
      EXPECT_TRUE(kept.contains(f.at("sha256").get<std::string>())) << path;
    }
  }
}

}  // namespace

TEST(WorkerEvidence, KeepsEicarWithTheSha256TheReportNames) {
  scratch_dir tmp;
  const json report = run_worker(tmp, borderscan::test::fixture_dir() / "fat-simple.img");
  EXPECT_EQ(report.at("verdict"), "flagged");
  const json* hit = find_file(report, 0, "/eicar.com");
  ASSERT_NE(hit, nullptr);
  EXPECT_EQ(hit->at("sha256"), eicar_sha256);
  EXPECT_EQ(hit->at("evidence"), json({{"kept", true}}));
  const auto kept = kept_in(tmp / "evidence.pack");
  ASSERT_TRUE(kept.contains(eicar_sha256));
  EXPECT_EQ(kept.at(eicar_sha256), eicar());
  expect_notes_match_the_pack(report, kept);
  struct stat st {};
  ASSERT_EQ(::stat((tmp / "evidence.pack").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(WorkerEvidence, KeepsFlaggedZipMembersHeldInMemoryAndStreamed) {
  scratch_dir tmp;
  const fs::path w = tmp / "work";
  const fs::path content = tmp / "content";
  fs::create_directories(w / "inner");
  fs::create_directories(content);
  std::ofstream(w / "inner" / "test.com", std::ios::binary) << eicar();
  // A member larger than member_memory_bytes (1 MiB below) and than the
  // scanner's 4 MiB read block: streamed once, copied while read.
  // Compressible, so that zip deflates it and the marker is not visible in
  // the container's own bytes (which would flag, and keep, large.zip too).
  std::string big(6 << 20, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) {
    big[i] = static_cast<char>('a' + (i * 7 + i / 4096) % 26);
  }
  // Copied while streamed too, then dropped (a hole punched in the sandbox).
  const std::string clean = big.substr(0, 5 << 20);
  big.replace(5 << 20, 37, "BORDERSCAN-STRADDLE-MARKER-0123456789");
  std::ofstream(w / "big.bin", std::ios::binary) << big;
  std::ofstream(w / "clean.bin", std::ios::binary) << clean;
  const std::string q = shell_quote(w.string());
  sh("cd " + q + " && zip -q -r bundle.zip inner && zip -q large.zip clean.bin big.bin");
  fs::copy_file(w / "bundle.zip", content / "bundle.zip");
  fs::copy_file(w / "large.zip", content / "large.zip");
  const fs::path image = tmp / "disk.img";
  sh("mke2fs -q -t ext4 -d " + shell_quote(content.string()) + " " + shell_quote(image.string()) + " 32M");
  std::ofstream(tmp / "marker.yar") << R"(
rule straddle_marker { meta: severity = "high" strings: $m = "BORDERSCAN-STRADDLE-MARKER-0123456789" condition: $m })";

  const json report =
      run_worker(tmp, image,
                 "--rules " + shell_quote(borderscan::test::rules_dir().string()) + " --rules " +
                     shell_quote((tmp / "marker.yar").string()) + " --limits '{\"member_memory_bytes\": 1048576}'");
  const json* member = find_file(report, 0, "/bundle.zip!inner/test.com");
  ASSERT_NE(member, nullptr) << report.at("files").dump(1);
  EXPECT_TRUE(borderscan::test::has_finding(*member, "EICAR_Test_File"));
  EXPECT_EQ(member->at("sha256"), eicar_sha256);
  EXPECT_EQ(member->at("evidence"), json({{"kept", true}}));
  const json* streamed = find_file(report, 0, "/large.zip!big.bin");
  ASSERT_NE(streamed, nullptr);
  EXPECT_TRUE(borderscan::test::has_finding(*streamed, "straddle_marker"));
  EXPECT_EQ(streamed->at("sha256"), sc::sha256_hex(big));
  EXPECT_EQ(streamed->at("bytes_read"), big.size());
  EXPECT_EQ(streamed->at("evidence"), json({{"kept", true}}));

  const json* dropped = find_file(report, 0, "/large.zip!clean.bin");
  ASSERT_NE(dropped, nullptr);
  EXPECT_TRUE(dropped->at("content_complete"));
  EXPECT_TRUE(dropped->at("evidence").is_null());
  for (const auto& e : report.at("errors")) {
    EXPECT_NE(e.at("stage"), "evidence") << e.dump();
  }

  const auto kept = kept_in(tmp / "evidence.pack");
  EXPECT_EQ(kept.size(), 2u);
  EXPECT_EQ(kept.at(eicar_sha256), eicar());
  ASSERT_TRUE(kept.contains(sc::sha256_hex(big)));
  EXPECT_TRUE(kept.at(sc::sha256_hex(big)) == big) << "the streamed member's bytes, exactly";
  expect_notes_match_the_pack(report, kept);
  // The clean member's copy is gone from the disk, not just marked dropped.
  struct stat st {};
  ASSERT_EQ(::stat((tmp / "evidence.pack").c_str(), &st), 0);
  EXPECT_LT(static_cast<std::uint64_t>(st.st_blocks) * 512, big.size() + (1u << 20))
      << "pack of " << st.st_size << " bytes";
}

TEST(WorkerEvidence, EvidenceLimitsFromTheCommandLineAreRecorded) {
  scratch_dir tmp;
  const json report =
      run_worker(tmp, borderscan::test::fixture_dir() / "fat-simple.img", "--evidence-max-file-bytes 10");
  EXPECT_EQ(report.at("verdict"), "flagged") << "an evidence limit does not change what was found";
  const json* hit = find_file(report, 0, "/eicar.com");
  ASSERT_NE(hit, nullptr);
  EXPECT_EQ(hit->at("evidence").at("kept"), false);
  bool limit = false;
  for (const auto& l : report.at("limits_hit")) {
    limit =
        limit || (l.at("limit") == "evidence.max_file_bytes" && l.at("value") == "10" && l.at("path") == "/eicar.com");
  }
  EXPECT_TRUE(limit) << report.at("limits_hit").dump();
  EXPECT_TRUE(kept_in(tmp / "evidence.pack").empty());
}

TEST(WorkerEvidence, AnExistingPackIsNeverOverwritten) {
  scratch_dir tmp;
  std::ofstream(tmp / "evidence.pack") << "not the worker's";
  const auto res = run_command(shell_quote(BORDERSCAN_CLI) + " worker --image " +
                               shell_quote((borderscan::test::fixture_dir() / "fat-simple.img").string()) +
                               " --report " + shell_quote((tmp / "report.json").string()) + " --evidence-pack " +
                               shell_quote((tmp / "evidence.pack").string()));
  EXPECT_EQ(res.exit_code, 2);
  const auto lines = lines_of(res.out);
  ASSERT_EQ(lines.size(), 1u) << res.out;
  EXPECT_EQ(lines[0].at("code"), "evidence_failed");
  EXPECT_EQ(read_whole(tmp / "evidence.pack"), "not the worker's");
}

TEST(WorkerProtocol, EvidenceOptionsRoundTripThroughTheCommandLine) {
  proto::worker_invocation w;
  w.image = {"/spool/a.img"};
  w.report_path = "/spool/a.report";
  w.evidence_pack_path = "/spool/a.evidence";
  w.evidence_max_file_bytes = 12345;
  w.evidence_max_bytes_per_scan = 9876543210;
  const auto args = proto::to_arguments(w);
  const auto after = [&](const std::string& name) {
    const auto it = std::find(args.begin(), args.end(), name);
    return it != args.end() && it + 1 != args.end() ? *(it + 1) : std::string("<missing>");
  };
  EXPECT_EQ(after("--evidence-pack"), "/spool/a.evidence");
  EXPECT_EQ(after("--evidence-max-file-bytes"), "12345");
  EXPECT_EQ(after("--evidence-max-bytes-per-scan"), "9876543210");

  CLI::App app;
  proto::worker_invocation back;
  proto::add_options(app, back);
  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 takes them last first
  app.parse(reversed);
  EXPECT_EQ(back.image, w.image);
  EXPECT_EQ(back.report_path, w.report_path);
  EXPECT_EQ(back.evidence_pack_path, w.evidence_pack_path);
  EXPECT_EQ(back.evidence_max_file_bytes, w.evidence_max_file_bytes);
  EXPECT_EQ(back.evidence_max_bytes_per_scan, w.evidence_max_bytes_per_scan);

  // Evidence off, limits at their defaults: no option says otherwise.
  const auto plain = proto::to_arguments(proto::worker_invocation{});
  for (const auto& a : plain) {
    EXPECT_EQ(a.find("--evidence"), std::string::npos) << a;
  }
}
