// The inspectors' review with the real borderscand: why a file is flagged
// (matched strings, score reasons, top findings), false-positive marks and
// the derived verdict, "seen before?" across stations, and that a station's
// token reaches none of it.
#include <signal.h>

#include <gtest/gtest.h>

#include <array>
#include <fstream>

#include "daemon_harness.hpp"
#include "server_test_support.hpp"
#include "test_clients.hpp"

namespace borderscan::server {
namespace {

using namespace test_support;
using nlohmann::json;
namespace http = boost::beast::http;
namespace fs = std::filesystem;

constexpr const char* eicar_sha256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f";

// A FAT image (mkfs.vfat + mtools) holding bundle.zip with EICAR inside.
fs::path fat_with_zipped_eicar(const fs::path& dir) {
  const fs::path work = dir / "zip-work";
  fs::create_directories(work / "inner");
  std::ofstream(work / "inner" / "test.com") << test::eicar();
  std::ofstream(work / "readme.txt") << "holiday photos\n";
  const std::string q = test::shell_quote(work.string());
  const fs::path image = dir / "stick.img";
  const std::string img = test::shell_quote(image.string());
  const auto made = test::run_command("cd " + q + " && zip -q -r bundle.zip inner readme.txt && mkfs.vfat -C " + img +
                                      " 4096 >/dev/null && mcopy -i " + img + " bundle.zip ::/bundle.zip");
  EXPECT_EQ(made.exit_code, 0) << made.err;
  return image;
}

// The same image with a large flagged file beside the archive: an ELF
// named as a photo (an extension mismatch, high) and a clean text file.
fs::path fat_with_evidence(const fs::path& dir) {
  const fs::path image = fat_with_zipped_eicar(dir);
  const fs::path work = dir / "zip-work";
  fs::copy_file("/bin/ls", work / "photo.jpg", fs::copy_options::overwrite_existing);
  const std::string img = test::shell_quote(image.string());
  const auto put = test::run_command("mcopy -i " + img + " " + test::shell_quote((work / "photo.jpg").string()) +
                                     " ::/photo.jpg && mcopy -i " + img + " " +
                                     test::shell_quote((work / "readme.txt").string()) + " ::/readme.txt");
  EXPECT_EQ(put.exit_code, 0) << put.err;
  return image;
}

class review_session {
 public:
  explicit review_session(const fs::path& data) : d(data) {
    d.start();
    reviewer = d.token("rev-1", "reviewer");
  }

  // Uploads as `station` and waits for the scan to finish.
  std::string scan(const fs::path& image, const std::string& station) {
    const auto res = http_call(d.port(), http::verb::post, "/api/v1/scans", read_file(image),
                               {{"Authorization", "Bearer " + d.token(station)}});
    EXPECT_EQ(res.status, 202U) << res.body;
    if (res.status != 202U) {
      return {};  // the test's next request then fails on an empty id, saying which
    }
    const std::string id = res.json().value("id", "");
    EXPECT_TRUE(eventually([&] { return http_get(d.port(), "/api/v1/scans/" + id).json().at("status") == "done"; }))
        << d.log();
    return id;
  }

  http_result as_reviewer(http::verb method, const std::string& target, const std::string& body = {}) {
    return http_call(d.port(), method, target, body,
                     {{"Authorization", "Bearer " + reviewer}, {"Content-Type", "application/json"}});
  }
  json get(const std::string& target) {
    const auto res = as_reviewer(http::verb::get, target);
    EXPECT_EQ(res.status, 200U) << target << ": " << res.body;
    return res.json();
  }

  daemon d;
  std::string reviewer;
};

const json* file_at(const json& page, const std::string& path) {
  for (const auto& f : page.at("items")) {
    if (f.at("path") == path) {
      return &f;
    }
  }
  return nullptr;
}

TEST(DaemonReview, MatchedStringsScoreReasonsAndTopFindingsExplainTheFlag) {
  test::scratch_dir dir;
  review_session s(dir / "data");
  const std::string id = s.scan(fat_with_zipped_eicar(dir.path()), "k1");

  const json page = s.get("/api/v1/reports/" + id + "/files?flagged=true");
  const json* member = file_at(page, "/bundle.zip!inner/test.com");
  ASSERT_NE(member, nullptr) << page.dump(2);
  const json* eicar = nullptr;
  for (const auto& f : member->at("findings")) {
    if (f.at("rule") == "EICAR_Test_File") {
      eicar = &f;
    }
  }
  ASSERT_NE(eicar, nullptr) << member->dump(2);
  ASSERT_FALSE(eicar->at("matches").empty());
  const json& first = eicar->at("matches").at(0);
  EXPECT_EQ(first.at("offset"), 0) << "EICAR starts the member's content";
  EXPECT_EQ(first.at("length"), test::eicar().size());
  EXPECT_EQ(first.at("hex").get<std::string>().substr(0, 6), "58354f");  // "X5O"
  EXPECT_EQ(first.at("text").get<std::string>().substr(0, 3), "X5O");
  EXPECT_GE(eicar->at("match_count").get<int>(), 1);
  EXPECT_TRUE(eicar->at("meta").contains("description")) << eicar->dump(2);

  const json report = s.get("/api/v1/scans/" + id + "/report");
  EXPECT_TRUE(test::validate_report(report));
  int points = 0;
  for (const auto& reason : report.at("score_reasons")) {
    points += reason.at("points").get<int>();
  }
  EXPECT_EQ(points, report.at("score").get<int>());
  EXPECT_GT(points, 0);

  const json listing = s.get("/api/v1/reports?review=pending");
  ASSERT_EQ(listing.at("items").size(), 1U);
  const json& top = listing.at("items").at(0).at("top_findings");
  ASSERT_FALSE(top.empty());
  EXPECT_EQ(top.at(0).at("severity"), report.at("score_reasons").at(0).at("severity"));
  EXPECT_EQ(listing.at("items").at(0).at("derived_verdict"), "flagged");
  EXPECT_EQ(s.d.stop(SIGTERM), 0) << s.d.log();
}

TEST(DaemonReview, FalsePositiveMarksClearTheDerivedVerdictAndNeverTouchTheReport) {
  test::scratch_dir dir;
  review_session s(dir / "data");
  const std::string id = s.scan(test::fixture_dir() / "fat-simple.img", "k1");
  const auto before = s.as_reviewer(http::verb::get, "/api/v1/scans/" + id + "/report");
  ASSERT_EQ(before.status, 200U);
  const json report = before.json();
  ASSERT_EQ(report.at("verdict"), "flagged");

  std::vector<std::string> flagging;
  for (const auto& f : report.at("findings")) {
    const std::string level = f.at("severity");
    if (level != "info" && level != "low") {
      flagging.push_back(f.at("id"));
    }
  }
  ASSERT_FALSE(flagging.empty());
  const auto mark = [&](const std::string& finding, bool false_positive) {
    return s.as_reviewer(http::verb::post, "/api/v1/reports/" + id + "/findings/" + finding + "/disposition",
                         json{{"false_positive", false_positive}, {"note", "vendor test file"}}.dump());
  };
  // Unknown finding, malformed body: clear refusals, nothing recorded.
  EXPECT_EQ(mark(std::string(32, '0'), true).status, 404U);
  EXPECT_EQ(s.as_reviewer(http::verb::post, "/api/v1/reports/" + id + "/findings/" + flagging[0] + "/disposition",
                          R"({"false_positive":"yes"})")
                .status,
            400U);

  for (std::size_t i = 0; i < flagging.size(); ++i) {
    const auto res = mark(flagging[i], true);
    ASSERT_EQ(res.status, 201U) << res.body;
    EXPECT_EQ(res.json().at("derived_verdict"), i + 1 == flagging.size() ? "cleared_false_positive" : "flagged");
    EXPECT_EQ(res.json().at("reviewer").at("name"), "rev-1");
  }
  EXPECT_EQ(s.get("/api/v1/reports?verdict=cleared_false_positive").at("items").size(), 1U);
  EXPECT_EQ(s.get("/api/v1/reports?verdict=flagged").at("items").size(), 0U);

  // The files page shows the marks to reviewers; the report is byte for byte what was signed.
  const json page = s.get("/api/v1/reports/" + id + "/files?flagged=true");
  bool shown = false;
  for (const auto& f : page.at("items")) {
    for (const auto& finding : f.at("findings")) {
      if (finding.at("id") == flagging[0]) {
        shown = finding.at("disposition").at("false_positive") == true;
      }
    }
  }
  EXPECT_TRUE(shown) << page.dump(2);
  EXPECT_EQ(s.as_reviewer(http::verb::get, "/api/v1/scans/" + id + "/report").body, before.body);

  // Taking a mark back flags the report again.
  ASSERT_EQ(mark(flagging[0], false).status, 201U);
  const json marks = s.get("/api/v1/reports/" + id + "/dispositions");
  EXPECT_EQ(marks.at("items").size(), flagging.size() + 1);
  EXPECT_EQ(marks.at("current").at(flagging[0]).at("false_positive"), false);
  EXPECT_EQ(marks.at("derived_verdict"), "flagged");

  const json audit =
      json::parse(http_get(s.d.port(), "/api/v1/audit?event=disposition_recorded&scan=" + id).body);  // admin token
  EXPECT_EQ(audit.at("items").size(), flagging.size() + 1);
  EXPECT_EQ(audit.at("items").at(0).at("actor").at("name"), "rev-1");
  EXPECT_EQ(s.d.stop(SIGTERM), 0) << s.d.log();
}

TEST(DaemonReview, SeenBeforeFindsTheSameContentAcrossStationsAndStationsAreRefused) {
  test::scratch_dir dir;
  review_session s(dir / "data");
  const std::string first = s.scan(fat_with_zipped_eicar(dir.path()), "k1");
  const std::string second = s.scan(test::fixture_dir() / "fat-simple.img", "k2");

  const json all = s.get(std::string("/api/v1/files?sha256=") + eicar_sha256);
  ASSERT_EQ(all.at("items").size(), 2U) << all.dump(2);
  EXPECT_EQ(all.at("items").at(0).at("scan").at("id"), second) << "newest first";
  EXPECT_EQ(all.at("items").at(0).at("scan").at("station"), "k2");
  EXPECT_EQ(all.at("items").at(0).at("file").at("path"), "/eicar.com");
  EXPECT_EQ(all.at("items").at(1).at("scan").at("station"), "k1");
  EXPECT_EQ(all.at("items").at(1).at("file").at("path"), "/bundle.zip!inner/test.com");
  EXPECT_EQ(all.at("items").at(1).at("scan").at("review"), "pending");

  // Paged, and the other hashes and upper case find the same.
  const json one = s.get(std::string("/api/v1/files?limit=1&sha256=") + eicar_sha256);
  ASSERT_EQ(one.at("items").size(), 1U);
  ASSERT_TRUE(one.at("next_cursor").is_string());
  const json rest = s.get(std::string("/api/v1/files?limit=1&sha256=") + eicar_sha256 +
                          "&cursor=" + one.at("next_cursor").get<std::string>());
  ASSERT_EQ(rest.at("items").size(), 1U);
  EXPECT_EQ(rest.at("items").at(0).at("scan").at("id"), first);
  EXPECT_TRUE(rest.at("next_cursor").is_null());
  EXPECT_EQ(s.get("/api/v1/files?md5=44D88612FEA8A8F36DE82E1278ABB02F").at("items").size(), 2U);
  EXPECT_EQ(s.get("/api/v1/files?sha1=3395856ce81f2b7382dee72602f798b642f14140").at("items").size(), 2U);
  EXPECT_EQ(s.as_reviewer(http::verb::get, "/api/v1/files?sha256=abc").status, 400U);
  EXPECT_EQ(s.as_reviewer(http::verb::get, "/api/v1/files").status, 400U);

  const json searches = json::parse(http_get(s.d.port(), "/api/v1/audit?event=files_searched").body);
  ASSERT_GE(searches.at("items").size(), 4U);
  EXPECT_EQ(searches.at("items").at(0).at("actor").at("name"), "rev-1");

  // A station reaches none of the review routes, not even about its own scan.
  const std::map<std::string, std::string> as_station = {{"Authorization", "Bearer " + s.d.token("k1")},
                                                         {"Content-Type", "application/json"}};
  const std::string finding = std::string(32, 'a');
  for (const auto& [method, target, body] : std::vector<std::tuple<http::verb, std::string, std::string>>{
           {http::verb::get, std::string("/api/v1/files?sha256=") + eicar_sha256, ""},
           {http::verb::get, "/api/v1/reports/" + first + "/dispositions", ""},
           {http::verb::post, "/api/v1/reports/" + first + "/findings/" + finding + "/disposition",
            R"({"false_positive":true})"},
           {http::verb::get, "/api/v1/reports/" + first + "/reviews", ""},
           {http::verb::post, "/api/v1/reports/" + first + "/reviews", R"({"decision":"cleared"})"}}) {
    const auto res = http_call(s.d.port(), method, target, body, as_station);
    EXPECT_EQ(res.status, 403U) << target << ": " << res.body;
  }
  EXPECT_EQ(s.d.stop(SIGTERM), 0) << s.d.log();
}

TEST(DaemonReview, EvidenceOpensWithThePasswordHoldsTheExactBytesAndEveryReadIsAudited) {
  test::scratch_dir dir;
  review_session s(dir / "data");
  const std::string id = s.scan(fat_with_evidence(dir.path()), "k1");
  const json page = s.get("/api/v1/reports/" + id + "/files");
  const json* member = file_at(page, "/bundle.zip!inner/test.com");
  const json* photo = file_at(page, "/photo.jpg");
  const json* readme = file_at(page, "/readme.txt");
  ASSERT_TRUE(member && photo && readme) << page.dump(2);
  EXPECT_EQ(member->at("evidence").at("kept"), true);
  EXPECT_EQ(photo->at("evidence").at("kept"), true);
  EXPECT_TRUE(readme->at("evidence").is_null());
  const auto content = [&](const json& entry, const std::string& query = "") {
    return s.as_reviewer(http::verb::get, "/api/v1/reports/" + id + "/files/" +
                                              std::to_string(entry.at("index").get<int>()) + "/content" + query);
  };

  // The zip: AES-256, password "infected", the member's exact bytes.
  const auto zip = content(*member);
  ASSERT_EQ(zip.status, 200U) << zip.body;
  EXPECT_EQ(zip.header("content-type"), "application/zip");
  EXPECT_EQ(zip.body.find("X5O!P%@AP"), std::string::npos) << "the content travels encrypted";
  const fs::path saved = dir / "evidence.zip";
  std::ofstream(saved, std::ios::binary) << zip.body;
  const auto opened = test::run_command("7z x -so -pinfected " + test::shell_quote(saved.string()));
  ASSERT_EQ(opened.exit_code, 0) << opened.err;
  EXPECT_EQ(opened.out, test::eicar());
  EXPECT_NE(test::run_command("7z t -pwrong " + test::shell_quote(saved.string())).exit_code, 0);

  // Previews are bounded and safe.
  const auto hex = content(*photo, "?view=hex");
  ASSERT_EQ(hex.status, 200U) << hex.body;
  const json h = hex.json();
  EXPECT_EQ(h.at("shown_bytes"), 65536);
  EXPECT_EQ(h.at("truncated"), true);
  EXPECT_EQ(h.at("size"), fs::file_size("/bin/ls"));
  EXPECT_EQ(h.at("lines").at(0).at("offset"), 0);
  EXPECT_EQ(h.at("lines").at(0).at("hex").get<std::string>().substr(0, 11), "7f 45 4c 46");
  EXPECT_EQ(h.at("lines").size(), 65536U / 16);
  const auto text = content(*member, "?view=text");
  ASSERT_EQ(text.status, 200U) << text.body;
  EXPECT_EQ(text.json().at("text"), test::eicar());
  EXPECT_EQ(content(*member, "?view=pdf").status, 400U);

  // Nothing kept for a clean file, and the answer says why.
  const auto none = content(*readme);
  EXPECT_EQ(none.status, 404U);
  EXPECT_NE(none.body.find("only flagged files are copied"), std::string::npos) << none.body;
  EXPECT_EQ(s.as_reviewer(http::verb::get, "/api/v1/reports/" + id + "/files/999999/content").status, 404U);
  EXPECT_EQ(http_call(s.d.port(), http::verb::get, "/api/v1/reports/" + id + "/files/0/content", {},
                      {{"Authorization", "Bearer " + s.d.token("k1")}})
                .status,
            403U)
      << "not even the station that scanned it";

  const json reads = json::parse(http_get(s.d.port(), "/api/v1/audit?event=evidence_read&scan=" + id).body);
  ASSERT_EQ(reads.at("items").size(), 3U) << "zip, hex and text; nothing for refusals";
  EXPECT_EQ(reads.at("items").at(0).at("actor").at("name"), "rev-1");
  EXPECT_EQ(reads.at("items").at(0).at("detail").at("sha256"), member->at("sha256"));

  // Purging the report takes its evidence with it.
  EXPECT_TRUE(fs::exists(dir / "data" / "evidence" / id));
  EXPECT_EQ(http_call(s.d.port(), http::verb::delete_, "/api/v1/reports/" + id).status, 200U);
  EXPECT_FALSE(fs::exists(dir / "data" / "evidence" / id));
  EXPECT_EQ(s.d.stop(SIGTERM), 0) << s.d.log();
}

// What the console reads first: the report without its files, its integrity,
// its file types, and a path search over its files.
TEST(DaemonReview, OverviewVerificationFileTypesAndPathSearch) {
  test::scratch_dir dir;
  review_session s(dir.path() / "data");
  const std::string id = s.scan(fat_with_zipped_eicar(dir.path()), "k1");

  const json overview = s.get("/api/v1/reports/" + id + "/overview");
  EXPECT_FALSE(overview.contains("files"));
  EXPECT_EQ(overview.at("verdict"), "flagged");
  EXPECT_FALSE(overview.at("findings").empty());
  EXPECT_TRUE(overview.contains("signature")) << "the overview is the signed document's other members";
  const json reads = json::parse(http_get(s.d.port(), "/api/v1/audit?event=report_read&scan=" + id).body);
  ASSERT_EQ(reads.at("items").size(), 1U);
  EXPECT_EQ(reads.at("items").at(0).at("detail").at("part"), "overview");

  const json ok = s.get("/api/v1/reports/" + id + "/verification");
  EXPECT_EQ(ok.at("stored_digest_ok"), true) << ok.dump();
  EXPECT_EQ(ok.at("signed"), true);
  EXPECT_EQ(ok.at("signature_valid"), true);
  EXPECT_EQ(ok.at("key_is_current"), true);
  EXPECT_EQ(ok.at("signature").at("alg"), "Ed25519");

  // Every entry counted once under its type; the archive and EICAR are there.
  const json types = s.get("/api/v1/reports/" + id + "/file-types");
  std::uint64_t counted = 0;
  bool zip = false;
  for (const auto& t : types.at("items")) {
    counted += t.at("files").get<std::uint64_t>();
    zip = zip || t.at("mime") == "application/zip";
  }
  const json all = s.get("/api/v1/reports/" + id + "/files?limit=1000");
  EXPECT_EQ(counted, all.at("items").size());
  EXPECT_TRUE(zip) << types.dump();

  // Path search: case-insensitive, '%' and '_' are plain characters.
  const json found = s.get("/api/v1/reports/" + id + "/files?q=BUNDLE.ZIP!");
  ASSERT_FALSE(found.at("items").empty());
  for (const auto& f : found.at("items")) {
    EXPECT_NE(f.at("path").get<std::string>().find("bundle.zip!"), std::string::npos) << f.dump();
  }
  EXPECT_TRUE(s.get("/api/v1/reports/" + id + "/files?q=%25").at("items").empty());

  // A stored report changed on disk: both checks say so.
  const fs::path stored = dir.path() / "data" / "reports" / (id + ".json");
  ASSERT_TRUE(fs::exists(stored)) << "reports live in data/reports";
  std::string bytes = read_file(stored);
  const auto verdict_at = bytes.find("\"flagged\"");
  ASSERT_NE(verdict_at, std::string::npos);
  bytes.replace(verdict_at, 9, "\"cleanXX\"");
  std::ofstream(stored, std::ios::binary | std::ios::trunc) << bytes;
  const json bad = s.get("/api/v1/reports/" + id + "/verification");
  EXPECT_EQ(bad.at("stored_digest_ok"), false);
  EXPECT_EQ(bad.at("signature_valid"), false);
  EXPECT_FALSE(bad.at("detail").is_null());

  // A station sees its own report's overview, not another station's.
  const auto as = [&](const std::string& station, const std::string& target) {
    return http_call(s.d.port(), http::verb::get, target, {}, {{"Authorization", "Bearer " + s.d.token(station)}});
  };
  EXPECT_EQ(as("k1", "/api/v1/reports/" + id + "/file-types").status, 200U);
  EXPECT_EQ(as("k2", "/api/v1/reports/" + id + "/overview").status, 403U);
  EXPECT_EQ(s.d.stop(SIGTERM), 0) << s.d.log();
}

// An image decides how many findings its report has; the overview keeps the
// weightiest thousand and says how many there were.
TEST(DaemonReview, OverviewKeepsTheWeightiestThousandFindingsAndCountsTheRest) {
  test::scratch_dir dir;
  const fs::path copies = dir.path() / "copies";
  fs::create_directories(copies);
  for (int i = 0; i < 520; ++i) {
    std::ofstream(copies / ("e" + std::to_string(i) + ".com")) << test::eicar();
  }
  fs::copy_file("/bin/ls", copies / "a0-photo.jpg");  // high and info findings, first in the report
  const fs::path image = dir.path() / "many.img";
  const std::string img = test::shell_quote(image.string());
  // In a folder: a FAT16 root holds 512 entries at most.
  const auto made =
      test::run_command("mkfs.vfat -C " + img + " 8192 >/dev/null && mmd -i " + img + " ::/d && mcopy -i " + img + " " +
                        test::shell_quote(copies.string()) + "/* ::/d/");
  ASSERT_EQ(made.exit_code, 0) << made.err;
  review_session s(dir.path() / "data");
  const std::string id = s.scan(image, "k1");

  const auto full = s.as_reviewer(http::verb::get, "/api/v1/scans/" + id + "/report");
  ASSERT_EQ(full.status, 200U);
  const std::size_t total = full.json().at("findings").size();
  ASSERT_GT(total, 1000U);
  const json overview = s.get("/api/v1/reports/" + id + "/overview");
  const json& kept = overview.at("findings");
  ASSERT_EQ(kept.size(), 1000U);
  EXPECT_EQ(overview.at("findings_truncated"), json({{"shown", 1000}, {"total", total}}));
  for (const auto& f : kept) {
    EXPECT_EQ(f.at("severity"), "high") << "the info finding gave way: " << f.dump();
  }
  // A small report is whole and says nothing of truncation.
  const std::string small = s.scan(fat_with_zipped_eicar(dir.path()), "k1");
  EXPECT_FALSE(s.get("/api/v1/reports/" + small + "/overview").contains("findings_truncated"));
  EXPECT_EQ(s.d.stop(SIGTERM), 0) << s.d.log();
}

TEST(DaemonReview, WhoAmINamesTheTokenAndItsRole) {
  test::scratch_dir dir;
  review_session s(dir.path() / "data");
  const auto me = http_call(s.d.port(), http::verb::get, "/api/v1/whoami", {},
                            {{"Authorization", "Bearer " + s.d.token("kiosk-7")}});
  ASSERT_EQ(me.status, 200U) << me.body;
  EXPECT_EQ(me.json(), json({{"name", "kiosk-7"}, {"role", "station"}}));
  EXPECT_EQ(s.get("/api/v1/whoami").at("role"), "reviewer");
  EXPECT_EQ(http_call(s.d.port(), http::verb::get, "/api/v1/whoami", {}, {{"Authorization", ""}}).status, 401U);
  EXPECT_EQ(s.d.stop(SIGTERM), 0) << s.d.log();
}

// Reads an event stream until `want` appears (or the stream ends or stalls).
std::string read_events_until(plain_client& c, const std::string& want) {
  std::string seen;
  std::array<char, 4096> buf{};
  c.tcp().expires_after(std::chrono::seconds(60));
  while (seen.find(want) == std::string::npos) {
    boost::beast::error_code ec;
    const std::size_t n = c.read_some(buf, ec);
    seen.append(buf.data(), n);
    if (ec) {
      break;
    }
  }
  return seen;
}

TEST(DaemonReview, ChangeEventsFollowEveryScanAndResumeFromLastEventId) {
  test::scratch_dir dir;
  review_session s(dir.path() / "data");
  plain_client reviewer(s.d.port()), station(s.d.port());
  ASSERT_TRUE(reviewer.open());
  ASSERT_TRUE(station.open());
  reviewer.send(http::verb::get, "/api/v1/events", {}, {{"Authorization", "Bearer " + s.reviewer}});
  station.send(http::verb::get, "/api/v1/events", {}, {{"Authorization", "Bearer " + s.d.token("k2")}});
  // Both streams are open before anything happens, each telling its position
  // first (an id and no data).
  std::string opened = read_events_until(reviewer, "\nid: ");
  while (opened.find("\n\n", opened.find("\nid: ")) == std::string::npos &&
         opened.find("\nid: ") != std::string::npos) {
    const std::string more = read_events_until(reviewer, "\n\n");
    ASSERT_FALSE(more.empty()) << opened;
    opened += more;
  }
  EXPECT_NE(opened.find("200 OK"), std::string::npos) << opened;
  EXPECT_NE(opened.find("\nid: "), std::string::npos) << opened;
  EXPECT_EQ(opened.find("data:"), std::string::npos) << opened;
  EXPECT_NE(read_events_until(station, "text/event-stream").find("200 OK"), std::string::npos);

  const std::string id = s.scan(fat_with_zipped_eicar(dir.path()), "k1");
  const std::string seen = read_events_until(reviewer, "\"change\":\"scan_done\"");
  const auto submitted = seen.find("\"change\":\"scan_submitted\"");
  ASSERT_NE(submitted, std::string::npos) << seen;
  ASSERT_NE(seen.find("\"change\":\"scan_done\""), std::string::npos) << seen;
  EXPECT_NE(seen.find("\"id\":\"" + id + "\""), std::string::npos);
  EXPECT_NE(seen.find("\"verdict\":\"flagged\""), std::string::npos) << seen;
  // The id of the submitted event, to resume after it.
  const auto id_line = seen.rfind("id: ", submitted);
  ASSERT_NE(id_line, std::string::npos);
  const std::string submitted_id = seen.substr(id_line + 4, seen.find('\n', id_line) - id_line - 4);

  plain_client resumed(s.d.port());
  ASSERT_TRUE(resumed.open());
  resumed.send(http::verb::get, "/api/v1/events", {},
               {{"Authorization", "Bearer " + s.reviewer}, {"Last-Event-ID", submitted_id}});
  const std::string again = read_events_until(resumed, "\"change\":\"scan_done\"");
  EXPECT_NE(again.find("\"change\":\"scan_done\""), std::string::npos) << again;
  EXPECT_EQ(again.find("\"change\":\"scan_submitted\""), std::string::npos) << "resumed after it";

  // Station k2 was told nothing of k1's scan: its stream has only keep-alives.
  std::array<char, 4096> buf{};
  station.tcp().expires_after(std::chrono::milliseconds(500));
  boost::beast::error_code ec;
  const std::size_t n = station.read_some(buf, ec);
  EXPECT_EQ(std::string(buf.data(), n).find(id), std::string::npos);

  plain_client bad(s.d.port());
  ASSERT_TRUE(bad.open());
  EXPECT_EQ(bad.request(http::verb::get, "/api/v1/events", {},
                        {{"Authorization", "Bearer " + s.reviewer}, {"Last-Event-ID", "yesterday"}})
                .status,
            400U);
  EXPECT_EQ(s.d.stop(SIGTERM), 0) << s.d.log();
}

TEST(DaemonReview, ScanEventsCarryIdsAndAResumedStreamStillEnds) {
  test::scratch_dir dir;
  review_session s(dir.path() / "data");
  const std::string id = s.scan(test::fixture_dir() / "fat-simple.img", "k1");
  const auto first = http_call(s.d.port(), http::verb::get, "/api/v1/scans/" + id + "/events");
  ASSERT_EQ(first.status, 200U);
  const auto id_at = first.body.find("id: done.1.");
  ASSERT_NE(id_at, std::string::npos) << first.body;
  const std::string last = first.body.substr(id_at + 4, first.body.find('\n', id_at) - id_at - 4);
  // A client that already saw the end and asks again is told the end again.
  const auto again =
      http_call(s.d.port(), http::verb::get, "/api/v1/scans/" + id + "/events", {}, {{"Last-Event-ID", last}});
  EXPECT_NE(again.body.find("event: done\n"), std::string::npos) << again.body;
  EXPECT_EQ(http_call(s.d.port(), http::verb::get, "/api/v1/scans/" + id + "/events", {},
                      {{"Last-Event-ID", std::string(200, 'x')}})
                .status,
            400U);
  EXPECT_EQ(s.d.stop(SIGTERM), 0) << s.d.log();
}

TEST(DaemonReview, ConsoleFilesAreServedWithAStrictPolicy) {
  test::scratch_dir dir;
  review_session s(dir.path() / "data");
  const auto page = http_call(s.d.port(), http::verb::get, "/", {}, {{"Authorization", ""}});
  ASSERT_EQ(page.status, 200U) << page.body;
  EXPECT_EQ(page.header("content-type"), "text/html; charset=utf-8");
  const std::string csp = page.header("content-security-policy");
  EXPECT_NE(csp.find("script-src 'self'"), std::string::npos) << csp;
  EXPECT_EQ(csp.find("unsafe-inline"), std::string::npos) << csp;
  EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos) << csp;
  EXPECT_EQ(page.header("x-content-type-options"), "nosniff");
  EXPECT_EQ(page.header("cache-control"), "no-cache");
  EXPECT_NE(page.body.find("<html"), std::string::npos);

  const std::string etag = page.header("etag");
  ASSERT_FALSE(etag.empty());
  const auto unchanged = http_call(s.d.port(), http::verb::get, "/", {}, {{"If-None-Match", etag}});
  EXPECT_EQ(unchanged.status, 304U);
  EXPECT_TRUE(unchanged.body.empty());

  // The app's own paths load the app; they route in the browser.
  for (const std::string path : {"/reports/0123456789abcdef/print", "/upload", "/reports/x"}) {
    const auto app = http_call(s.d.port(), http::verb::get, path, {}, {{"Authorization", ""}});
    EXPECT_EQ(app.status, 200U) << path;
    EXPECT_EQ(app.body, page.body) << path;
  }
  // Every script in server/web is served as JavaScript.
  const fs::path web = fs::path(BORDERSCAN_SOURCE_DIR) / "server" / "web";
  for (const auto& entry : fs::recursive_directory_iterator(web)) {
    if (entry.path().extension() == ".js") {
      const std::string url = "/" + entry.path().lexically_relative(web).generic_string();
      const auto js = http_call(s.d.port(), http::verb::get, url, {}, {{"Authorization", ""}});
      EXPECT_EQ(js.status, 200U) << url;
      EXPECT_EQ(js.header("content-type"), "text/javascript; charset=utf-8") << url;
      EXPECT_EQ(js.body, read_file(entry.path())) << url;
    }
  }
  // A file that is not there is a 404, and the API keeps its own answers.
  EXPECT_EQ(http_call(s.d.port(), http::verb::get, "/js/nothing-here.js").status, 404U);
  // Only files read at start-up are served: no path reaches the file system.
  EXPECT_EQ(http_call(s.d.port(), http::verb::get, "/../../CMakeLists.txt").status, 404U);
  EXPECT_EQ(http_call(s.d.port(), http::verb::get, "/%2e%2e/%2e%2e/etc/passwd").body, page.body);
  const auto api = http_call(s.d.port(), http::verb::get, "/api/v1/nothing");
  EXPECT_EQ(api.status, 404U);
  EXPECT_EQ(api.header("content-type"), "application/problem+json");
  EXPECT_EQ(s.d.stop(SIGTERM), 0) << s.d.log();
}

}  // namespace
}  // namespace borderscan::server
