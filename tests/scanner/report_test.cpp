#include "borderscan/scanner/report.hpp"

#include <gtest/gtest.h>

#include <sstream>

namespace sc = borderscan::scanner;

namespace {

sc::file_entry file(const std::string& path, std::uint32_t volume = 0) {
  sc::file_entry f;
  f.path = path;
  f.volume = volume;
  f.type = "regular";
  f.size = 1;
  return f;
}

sc::finding finding_of(const std::string& path, sc::severity level) {
  sc::finding f;
  f.path = path;
  f.source = "yara";
  f.rule = "r";
  f.level = level;
  return f;
}

}  // namespace

TEST(Verdict, CleanWithoutFindingsOrErrors) {
  sc::report r;
  r.files.push_back(file("/a"));
  sc::finalize(r, sc::severity::medium);
  EXPECT_EQ(r.result, sc::verdict::clean);
  EXPECT_EQ(r.score, 0);
}

TEST(Verdict, FlaggedAtOrAboveThreshold) {
  sc::report r;
  auto f = file("/a");
  f.findings.push_back(finding_of("/a", sc::severity::medium));
  r.files.push_back(f);
  sc::finalize(r, sc::severity::medium);
  EXPECT_EQ(r.result, sc::verdict::flagged);
  EXPECT_EQ(r.summary.flagged_files, 1u);
  EXPECT_EQ(r.findings.size(), 1u);  // copied to the top-level list

  sc::report below = r;
  below.findings.clear();
  sc::finalize(below, sc::severity::high);
  EXPECT_EQ(below.result, sc::verdict::clean);
}

TEST(Verdict, InfoFindingsDoNotFlag) {
  sc::report r;
  auto f = file("/tool");
  f.findings.push_back(finding_of("/tool", sc::severity::info));
  r.files.push_back(f);
  sc::finalize(r, sc::severity::medium);
  EXPECT_EQ(r.result, sc::verdict::clean);
  EXPECT_EQ(r.summary.findings, 1u);
}

TEST(Verdict, LimitHitIsIncompleteNeverClean) {
  sc::report r;
  r.files.push_back(file("/a"));
  r.limits_hit.push_back({"max_files", "10", "/a", 0});
  sc::finalize(r, sc::severity::medium);
  EXPECT_EQ(r.result, sc::verdict::incomplete);
}

TEST(Verdict, UnreadPartIsIncompleteButLostDeletedContentIsNot) {
  sc::report r;
  r.errors.push_back({"/gone", 0, "read", "short_read", "short", /*affects_verdict=*/false});
  sc::finalize(r, sc::severity::medium);
  EXPECT_EQ(r.result, sc::verdict::clean);

  r.errors.push_back({"/live", 0, "read", "short_read", "short", true});
  sc::finalize(r, sc::severity::medium);
  EXPECT_EQ(r.result, sc::verdict::incomplete);
  EXPECT_EQ(r.summary.errors, 2u);
}

TEST(Verdict, FlaggedWinsOverIncompleteAndErrorIsKept) {
  sc::report r;
  auto f = file("/a");
  f.findings.push_back(finding_of("/a", sc::severity::high));
  r.files.push_back(f);
  r.limits_hit.push_back({"scan_timeout", "5 s", "", std::nullopt});
  sc::finalize(r, sc::severity::medium);
  EXPECT_EQ(r.result, sc::verdict::flagged);

  sc::report broken;
  broken.result = sc::verdict::error;
  broken.verdict_reason = "image is empty";
  sc::finalize(broken, sc::severity::medium);
  EXPECT_EQ(broken.result, sc::verdict::error);
  EXPECT_EQ(broken.verdict_reason, "image is empty");
}

TEST(Report, SortsFilesByVolumeThenPathAndScores) {
  sc::report r;
  r.files.push_back(file("/b", 1));
  r.files.push_back(file("/z", 0));
  auto a = file("/a", 1);
  a.findings.push_back(finding_of("/a", sc::severity::high));
  a.findings.push_back(finding_of("/a", sc::severity::low));
  r.files.push_back(a);
  sc::finalize(r, sc::severity::medium);
  ASSERT_EQ(r.files.size(), 3u);
  EXPECT_EQ(r.files[0].path, "/z");
  EXPECT_EQ(r.files[1].path, "/a");
  EXPECT_EQ(r.files[2].path, "/b");
  EXPECT_EQ(r.score, 81);  // high (80) plus one more finding above info
  const nlohmann::json j = r;
  EXPECT_EQ(j.at("schema"), "borderscan.report/v1");
  EXPECT_EQ(j.at("verdict"), "flagged");
}

TEST(Severity, ParsesNamesAndScores) {
  EXPECT_EQ(sc::parse_severity("critical"), sc::severity::critical);
  EXPECT_FALSE(sc::parse_severity("bogus"));
  EXPECT_EQ(sc::severity_from_score(10), sc::severity::info);
  EXPECT_EQ(sc::severity_from_score(50), sc::severity::medium);
  EXPECT_EQ(sc::severity_from_score(75), sc::severity::high);
  EXPECT_EQ(sc::severity_from_score(100), sc::severity::critical);
}

TEST(Report, StreamedWriterGivesTheSameDocument) {
  sc::report r;
  r.image.sha256 = std::string(64, 'a');
  for (int i = 0; i < 3; ++i) {
    auto f = file("/f" + std::to_string(i));
    if (i == 1) f.findings.push_back(finding_of(f.path, sc::severity::high));
    r.files.push_back(f);
  }
  r.warnings.push_back("a \"quoted\" warning");
  sc::finalize(r, sc::severity::medium);
  for (bool pretty : {true, false}) {
    std::ostringstream out;
    sc::write_report(out, r, pretty);
    EXPECT_EQ(nlohmann::json::parse(out.str()), nlohmann::json(r)) << "pretty=" << pretty;
    EXPECT_EQ(out.str().find('\n') == std::string::npos, !pretty);
  }
  sc::report empty;
  std::ostringstream out;
  sc::write_report(out, empty, true);
  EXPECT_EQ(nlohmann::json::parse(out.str()), nlohmann::json(empty));
}

TEST(Report, ReadsBackWhatItWrites) {
  sc::report r;
  r.image.sha256 = std::string(64, 'b');
  r.started_at = 1577934246123;
  r.finished_at = 1577934247456;
  auto f = file("/x.jpg");
  f.times.mtime = 1577934246;
  f.findings.push_back(finding_of("/x.jpg", sc::severity::critical));
  f.container = "/a.zip";
  f.depth = 1;
  r.files.push_back(f);
  r.limits_hit.push_back({"max_depth", "8", "/a.zip", 0});
  r.errors.push_back({"/y", std::nullopt, "read", "short_read", "short", false});
  sc::finalize(r, sc::severity::medium);
  const nlohmann::json j = r;
  const auto back = j.get<sc::report>();
  EXPECT_EQ(nlohmann::json(back), j);
  nlohmann::json broken = j;
  broken["verdict"] = "ok";
  EXPECT_THROW(broken.get<sc::report>(), std::invalid_argument);
  broken = j;
  broken["files"][0]["size"] = "big";
  EXPECT_THROW(broken.get<sc::report>(), nlohmann::json::exception);
}

TEST(Report, EvidenceNotesReadBackAndReportsWrittenBeforeThemStillRead) {
  sc::report r;
  r.image.sha256 = std::string(64, 'c');
  auto kept = file("/kept");
  kept.findings.push_back(finding_of("/kept", sc::severity::high));
  kept.evidence = sc::evidence_note{true, ""};
  auto too_big = file("/too-big");
  too_big.findings.push_back(finding_of("/too-big", sc::severity::high));
  too_big.evidence = sc::evidence_note{false, "not kept: evidence.max_file_bytes (10 bytes)"};
  r.files = {kept, too_big, file("/clean")};
  r.limits_hit.push_back({"evidence.max_file_bytes", "10", "/too-big", 0});
  sc::finalize(r, sc::severity::medium);
  const nlohmann::json j = r;
  // Sorted by path: /clean, /kept, /too-big.
  EXPECT_TRUE(j.at("files").at(0).at("evidence").is_null());
  EXPECT_EQ(j.at("files").at(1).at("evidence"), nlohmann::json({{"kept", true}}));
  EXPECT_EQ(j.at("files").at(2).at("evidence"),
            nlohmann::json({{"kept", false}, {"reason", "not kept: evidence.max_file_bytes (10 bytes)"}}));
  const auto back = j.get<sc::report>();
  ASSERT_TRUE(back.files.at(2).evidence.has_value());
  EXPECT_FALSE(back.files.at(2).evidence->kept);
  EXPECT_EQ(back.files.at(2).evidence->reason, too_big.evidence->reason);
  EXPECT_EQ(nlohmann::json(back), j);

  nlohmann::json old = j;
  for (auto& f : old.at("files")) {
    f.erase("evidence");
  }
  const auto old_back = old.get<sc::report>();
  for (const auto& f : old_back.files) {
    EXPECT_FALSE(f.evidence.has_value()) << f.path;
  }
  nlohmann::json broken = j;
  broken["files"][2]["evidence"].erase("reason");
  EXPECT_THROW(broken.get<sc::report>(), nlohmann::json::exception) << "a copy not kept says why";
}

TEST(Report, ScoreReasonsSayWhichFindingsAddedWhat) {
  sc::report r;
  auto a = file("/a");
  a.findings.push_back(finding_of("/a", sc::severity::low));
  auto b = file("/b");
  b.findings.push_back(finding_of("/b", sc::severity::high));
  b.findings.push_back(finding_of("/b", sc::severity::info));
  r.files = {a, b};
  sc::finalize(r, sc::severity::medium);
  EXPECT_EQ(r.score, 81);
  ASSERT_EQ(r.score_reasons.size(), 2u);
  EXPECT_EQ(r.score_reasons[0].path, "/b");
  EXPECT_EQ(r.score_reasons[0].points, 80);
  EXPECT_EQ(r.score_reasons[1].path, "/a");
  EXPECT_EQ(r.score_reasons[1].points, 1);
  EXPECT_EQ(r.score_reasons[1].finding, sc::finding_id(r.files[0].findings[0]));

  // Never more reasons than points: 150 findings of a capped score.
  sc::report many;
  for (int i = 0; i < 150; ++i) {
    auto f = file("/f" + std::to_string(i));
    f.findings.push_back(finding_of(f.path, sc::severity::medium));
    many.files.push_back(f);
  }
  sc::finalize(many, sc::severity::medium);
  EXPECT_EQ(many.score, 100);
  int sum = 0;
  for (const auto& reason : many.score_reasons) sum += reason.points;
  EXPECT_EQ(sum, 100);
  EXPECT_EQ(many.score_reasons.size(), 51u);
}

TEST(Report, FindingIdsAreStableAndDistinct) {
  const auto f = finding_of("/a", sc::severity::high);
  auto other_rule = f;
  other_rule.rule = "r2";
  auto other_path = f;
  other_path.path = "/b";
  auto other_level = f;
  other_level.level = sc::severity::low;  // the same finding, judged differently: same id
  EXPECT_EQ(sc::finding_id(f), sc::finding_id(other_level));
  EXPECT_NE(sc::finding_id(f), sc::finding_id(other_rule));
  EXPECT_NE(sc::finding_id(f), sc::finding_id(other_path));
  nlohmann::json j = f;
  j["id"] = std::string(32, '0');
  sc::finding back;
  EXPECT_THROW(sc::from_json(j, back), std::invalid_argument);
}
