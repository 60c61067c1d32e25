// The kiosk client as a kiosk runs it: the real `borderscan` binary against
// the real borderscand on a loopback port (plain HTTP and TLS), sometimes
// through a proxy that records requests and cuts an event stream.
#include <signal.h>

#include <fstream>
#include <future>
#include <regex>
#include <sstream>

#include <boost/asio/ip/tcp.hpp>
#include <gtest/gtest.h>

#include "cutting_proxy.hpp"
#include "daemon_harness.hpp"
#include "support/test_support.hpp"

namespace borderscan::client {
namespace {

using namespace server::test_support;
using borderscan::client::test::cutting_proxy;
using borderscan::test::run_command;
using borderscan::test::shell_quote;
using nlohmann::json;
namespace fs = std::filesystem;
namespace http = boost::beast::http;

std::string read_whole(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::size_t files_in(const fs::path& dir) {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir)) {
    ++n;
  }
  return n;
}

std::string hex_to_bytes(const std::string& hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

fs::path flagged_image() {
  return borderscan::test::fixture_dir() / "fat-simple.img";  // EICAR at /eicar.com and more
}

fs::path clean_image() {
  return borderscan::test::clean_image();
}

// What a person must never see: Boost's source locations and category names.
void expect_readable_error(const borderscan::test::command_result& r) {
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_TRUE(r.err.starts_with("borderscan: ")) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line:\n" << r.err;
  for (const char* internal : {"boost", "asio", ".hpp", ".ipp", "system:", "category", "line "}) {
    EXPECT_EQ(r.err.find(internal), std::string::npos) << "'" << internal << "' in: " << r.err;
  }
  EXPECT_FALSE(std::regex_search(r.err, std::regex("\\[[a-z_:]+:[0-9]+\\]|\\.[ch]pp:[0-9]+")))
      << "a source location in: " << r.err;
}

class ClientCli : public ::testing::Test {
 protected:
  daemon& start(daemon_options options = {}) {
    daemon_ = std::make_unique<daemon>(scratch_ / "data", std::move(options));
    daemon_->start();
    return *daemon_;
  }

  std::string url(std::uint16_t port, const char* scheme = "http") const {
    return std::string(scheme) + "://127.0.0.1:" + std::to_string(port);
  }

  // Runs `borderscan ARGS` with the server and token in the environment, as
  // a kiosk's profile would set them.
  borderscan::test::command_result cli(const std::string& args, const std::string& token, std::string server = {}) {
    if (server.empty()) {
      server = url(daemon_->port());
    }
    return run_command("env -u BORDERSCAN_CA_FILE BORDERSCAN_SERVER=" + shell_quote(server) +
                       " BORDERSCAN_TOKEN=" + shell_quote(token) + " " + shell_quote(BORDERSCAN_CLI) + " " + args);
  }

  const std::string& station() { return daemon_->token("kiosk-7"); }
  const std::string& reviewer() { return daemon_->token("inspector-1", "reviewer"); }

  // Submits and waits; returns the scan id the summary names.
  std::string submit_and_wait(const fs::path& image, int expected_exit) {
    const auto r = cli("submit --wait " + shell_quote(image.string()), station());
    EXPECT_EQ(r.exit_code, expected_exit) << r.out << r.err << daemon_->log();
    std::smatch m;
    if (!std::regex_search(r.out, m, std::regex("scan +([0-9a-f]{32})"))) {
      ADD_FAILURE() << "no scan id in:\n" << r.out;
      return {};
    }
    return m[1];
  }

  borderscan::test::scratch_dir scratch_;
  std::unique_ptr<daemon> daemon_;
};

TEST_F(ClientCli, SubmitWaitExitsWithTheVerdictsCodeAndPrintsTheSummary) {
  start();
  const auto clean =
      cli("submit --wait --label bag-17 --case C-4711 " + shell_quote(clean_image().string()), station());
  EXPECT_EQ(clean.exit_code, 0) << clean.out << clean.err;
  EXPECT_NE(clean.out.find("verdict   CLEAN"), std::string::npos) << clean.out;
  EXPECT_NE(clean.out.find("findings  none"), std::string::npos) << clean.out;
  EXPECT_NE(clean.err.find("uploaded "), std::string::npos) << "a plain status line when stderr is no terminal";
  EXPECT_EQ(clean.err.find('\r'), std::string::npos) << "no progress bar redraws into a log";

  const auto flagged = cli("submit --wait " + shell_quote(flagged_image().string()), station());
  EXPECT_EQ(flagged.exit_code, 1) << flagged.out << flagged.err;
  EXPECT_NE(flagged.out.find("verdict   FLAGGED"), std::string::npos) << flagged.out;
  EXPECT_NE(flagged.out.find("EICAR_Test_File"), std::string::npos) << flagged.out;
  EXPECT_NE(flagged.out.find("/eicar.com"), std::string::npos) << flagged.out;
  // The label and case went with the upload.
  const json listed = http_get(daemon_->port(), "/api/v1/reports?case_ref=C-4711").json();
  ASSERT_EQ(listed.at("items").size(), 1U) << listed.dump();
  EXPECT_EQ(listed.at("items")[0].at("label"), "bag-17");
  EXPECT_EQ(listed.at("items")[0].at("station"), "kiosk-7");
  EXPECT_EQ(listed.at("items")[0].at("filename"), clean_image().filename().string());
}

TEST_F(ClientCli, SubmitWaitExitsThreeWhenTheScanIsIncomplete) {
  daemon_options options;
  options.extra_config = "[limits]\nmax_files = 1\n";
  start(options);
  const auto r = cli("submit --wait " + shell_quote(clean_image().string()), station());
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err << daemon_->log();
  EXPECT_NE(r.out.find("verdict   INCOMPLETE"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("max_files"), std::string::npos) << "the summary names the limit:\n" << r.out;
}

TEST_F(ClientCli, SubmitWaitExitsTwoWhenTheScanIsCancelled) {
  daemon_options options;
  options.debug_scan_delay_ms = 3000;  // time to cancel it
  auto& d = start(options);
  auto waiting = std::async(std::launch::async,
                            [&] { return cli("submit --wait " + shell_quote(flagged_image().string()), station()); });
  std::string id;
  ASSERT_TRUE(eventually([&] {
    for (const auto& entry : fs::directory_iterator(d.spool_dir())) {
      if (entry.path().extension() == ".img") {
        id = entry.path().stem().string();
        return true;
      }
    }
    return false;
  })) << d.log();
  const auto cancel = http_call(d.port(), http::verb::delete_, "/api/v1/scans/" + id);
  EXPECT_TRUE(cancel.status == 200U || cancel.status == 202U) << cancel.body;
  const auto r = waiting.get();
  expect_readable_error(
      borderscan::test::command_result{r.exit_code, r.out, r.err.substr(r.err.rfind("borderscan: "))});
  EXPECT_NE(r.err.find("scan " + id + " was cancelled by admin"), std::string::npos) << r.err;
}

TEST_F(ClientCli, SubmitSendsTheImageDigestAndTheDaemonRecordsTheSameOne) {
  auto& d = start();
  cutting_proxy proxy(d.port(), false);
  const std::string expected = sha256_hex(read_whole(flagged_image()));
  const auto r = cli("submit " + shell_quote(flagged_image().string()), station(), url(proxy.port()));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const std::string id = r.out.substr(0, r.out.find('\n'));
  ASSERT_EQ(id.size(), 32U) << "without --wait stdout is the scan id:\n" << r.out;

  std::string upload_head;
  for (const auto& head : proxy.request_heads()) {
    if (head.starts_with("POST /api/v1/scans")) {
      upload_head = head;
    }
  }
  ASSERT_FALSE(upload_head.empty());
  EXPECT_NE(upload_head.find("X-Image-SHA256: " + expected), std::string::npos) << upload_head;
  EXPECT_NE(upload_head.find("Content-Digest: sha-256=:" + base64(hex_to_bytes(expected)) + ":"), std::string::npos)
      << upload_head;
  EXPECT_NE(upload_head.find("Content-Length: " + std::to_string(fs::file_size(flagged_image()))), std::string::npos)
      << "the image is streamed with its length, not chunked:\n"
      << upload_head;
  EXPECT_NE(upload_head.find("filename=fat-simple.img"), std::string::npos) << upload_head;

  const json scan = http_get(d.port(), "/api/v1/scans/" + id).json();
  EXPECT_EQ(scan.at("image_sha256"), expected);
  EXPECT_EQ(scan.at("size"), fs::file_size(flagged_image()));
}

TEST_F(ClientCli, AWrongDigestIsRefusedInOneReadableLineAndNothingIsKept) {
  auto& d = start();
  const std::string wrong(64, 'a');
  const auto r = cli("submit --wait --sha256 " + wrong + " " + shell_quote(clean_image().string()), station());
  expect_readable_error(r);
  EXPECT_NE(r.err.find("but the request claimed " + wrong), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("(HTTP 422)"), std::string::npos) << r.err;
  EXPECT_EQ(http_get(d.port(), "/api/v1/reports").json().at("items").size(), 0U);
  EXPECT_EQ(files_in(d.spool_dir()), 0U) << "nothing spooled";
}

TEST_F(ClientCli, SubmitWaitResumesADroppedEventStreamWithLastEventId) {
  daemon_options options;
  options.debug_scan_delay_ms = 1500;  // the scan outlives the first event
  auto& d = start(options);
  cutting_proxy proxy(d.port(), true);
  const auto r = cli("submit --wait " + shell_quote(flagged_image().string()), station(), url(proxy.port()));
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err << d.log();
  EXPECT_NE(r.out.find("verdict   FLAGGED"), std::string::npos) << r.out;
  EXPECT_EQ(proxy.cuts(), 1U);
  EXPECT_NE(r.err.find("reconnecting"), std::string::npos) << r.err;

  std::vector<std::string> streams;
  for (const auto& head : proxy.request_heads()) {
    if (head.find("/events") != std::string::npos) {
      streams.push_back(head);
    }
  }
  ASSERT_GE(streams.size(), 2U) << "no reconnection";
  const std::regex last_event_id("\r\nlast-event-id: *[^\r\n]+", std::regex::icase);
  EXPECT_FALSE(std::regex_search(streams[0], last_event_id)) << streams[0];
  EXPECT_TRUE(std::regex_search(streams[1], last_event_id)) << "the reconnection names the last event it saw:\n"
                                                            << streams[1];
}

TEST_F(ClientCli, AWrongTokenGivesTheServersDetail) {
  start();
  for (const std::string& args : {"submit --wait " + shell_quote(clean_image().string()), std::string("reports"),
                                  std::string("report 0123456789abcdef0123456789abcdef")}) {
    const auto r = cli(args, "not-a-token");
    expect_readable_error(r);
    EXPECT_NE(r.err.find("(HTTP 401)"), std::string::npos) << args << ": " << r.err;
  }
  // A station may not review: the 403's detail, not a generic failure.
  const auto r = cli("review 0123456789abcdef0123456789abcdef --decision cleared", station());
  expect_readable_error(r);
  EXPECT_NE(r.err.find("(HTTP 403)"), std::string::npos) << r.err;
}

TEST_F(ClientCli, AnUnreachableServerIsOneLineNamingIt) {
  // A port that was free a moment ago: nothing listens there.
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor probe(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
  const auto port = probe.local_endpoint().port();
  probe.close();
  const auto r = run_command("env -u BORDERSCAN_SERVER -u BORDERSCAN_TOKEN " + shell_quote(BORDERSCAN_CLI) +
                             " submit --server " + url(port) + " " + shell_quote(clean_image().string()));
  expect_readable_error(r);
  EXPECT_EQ(r.err, "borderscan: cannot connect to 127.0.0.1:" + std::to_string(port) + ": connection refused\n");

  const auto bad = run_command(shell_quote(BORDERSCAN_CLI) + " reports --server ftp://127.0.0.1");
  expect_readable_error(bad);
  EXPECT_NE(bad.err.find("the scheme must be http or https"), std::string::npos) << bad.err;
}

TEST_F(ClientCli, ReportsReportReviewAndEvidenceServeAnInspector) {
  auto& d = start();
  const std::string clean = submit_and_wait(clean_image(), 0);
  const std::string flagged = submit_and_wait(flagged_image(), 1);
  ASSERT_FALSE(clean.empty() || flagged.empty());

  const auto all = cli("reports", reviewer());
  ASSERT_EQ(all.exit_code, 0) << all.err;
  EXPECT_NE(all.out.find("ID"), std::string::npos);
  EXPECT_NE(all.out.find(clean), std::string::npos) << all.out;
  EXPECT_NE(all.out.find(flagged), std::string::npos) << all.out;
  EXPECT_NE(all.out.find("kiosk-7"), std::string::npos) << all.out;
  const auto only_flagged = cli("reports --flagged --limit 10", reviewer());
  EXPECT_EQ(only_flagged.out.find(clean), std::string::npos) << only_flagged.out;
  EXPECT_NE(only_flagged.out.find(flagged), std::string::npos) << only_flagged.out;
  const auto pending = cli("reports --pending", reviewer());
  EXPECT_NE(pending.out.find(flagged), std::string::npos) << pending.out;
  EXPECT_EQ(pending.out.find(clean), std::string::npos) << pending.out;

  // submit --wait --json: the report on stdout, the verdict in the exit code.
  const auto submitted = cli("submit --wait --json " + shell_quote(clean_image().string()), station());
  EXPECT_EQ(submitted.exit_code, 0) << submitted.err;
  const json submitted_report = json::parse(submitted.out, nullptr, false);
  ASSERT_TRUE(submitted_report.is_object()) << submitted.out;
  EXPECT_EQ(submitted_report.at("verdict"), "clean");
  EXPECT_EQ(submitted.out,
            http_get(d.port(), "/api/v1/scans/" + submitted_report.at("scan_id").get<std::string>() + "/report").body);

  // --json: the stored bytes, exactly as the daemon serves them.
  const auto raw = cli("report " + flagged + " --json", reviewer());
  ASSERT_EQ(raw.exit_code, 0) << raw.err;
  const auto served = http_get(d.port(), "/api/v1/scans/" + flagged + "/report");
  ASSERT_EQ(served.status, 200U);
  EXPECT_EQ(raw.out, served.body);
  EXPECT_TRUE(borderscan::test::validate_report(json::parse(raw.out)));
  const auto summary = cli("report " + flagged, reviewer());
  EXPECT_EQ(summary.exit_code, 0) << summary.err;
  EXPECT_NE(summary.out.find("verdict   FLAGGED"), std::string::npos) << summary.out;

  // A review takes the report out of the queue.
  const auto bad_decision = cli("review " + flagged + " --decision maybe", reviewer());
  EXPECT_EQ(bad_decision.exit_code, 2);
  const auto review = cli("review " + flagged + " --decision confirmed --note 'EICAR on the stick'", reviewer());
  ASSERT_EQ(review.exit_code, 0) << review.err;
  EXPECT_NE(review.out.find("recorded: confirmed on report " + flagged + " by inspector-1"), std::string::npos)
      << review.out;
  const json reviews = http_get(d.port(), "/api/v1/reports/" + flagged + "/reviews").json();
  ASSERT_EQ(reviews.at("items").size(), 1U);
  EXPECT_EQ(reviews.at("items")[0].at("note"), "EICAR on the stick");
  EXPECT_EQ(cli("reports --pending", reviewer()).out.find(flagged), std::string::npos);

  // Evidence: the flagged file's bytes in an AES zip that opens with "infected".
  const json files = http_get(d.port(), "/api/v1/reports/" + flagged + "/files?flagged=true").json();
  int index = -1;
  for (const auto& f : files.at("items")) {
    if (f.at("path") == "/eicar.com") {
      index = f.at("index").get<int>();
    }
  }
  ASSERT_GE(index, 0) << files.dump(2);
  const fs::path zip = scratch_ / "eicar.zip";
  const auto got =
      cli("evidence " + flagged + " " + std::to_string(index) + " -o " + shell_quote(zip.string()), reviewer());
  ASSERT_EQ(got.exit_code, 0) << got.err;
  EXPECT_NE(got.out.find("infected"), std::string::npos) << "the password is named:\n" << got.out;
  EXPECT_TRUE(read_whole(zip).starts_with("PK\x03\x04"));
  EXPECT_FALSE(fs::exists(zip.string() + ".part"));
  const auto opened = run_command("7z x -so -pinfected " + shell_quote(zip.string()));
  ASSERT_EQ(opened.exit_code, 0) << opened.err;
  EXPECT_EQ(opened.out, borderscan::test::eicar());
  const auto hex = cli("evidence " + flagged + " " + std::to_string(index) + " --view hex", reviewer());
  ASSERT_EQ(hex.exit_code, 0) << hex.err;
  EXPECT_NE(hex.out.find("00000000  58 35 4f 21"), std::string::npos) << hex.out;
  // Nothing is kept for a clean file: the server's reason, and no file left.
  const auto none = cli("evidence " + clean + " 0 -o " + shell_quote((scratch_ / "none.zip").string()), reviewer());
  expect_readable_error(none);
  EXPECT_NE(none.err.find("(HTTP 404)"), std::string::npos) << none.err;
  EXPECT_FALSE(fs::exists(scratch_ / "none.zip"));
  EXPECT_FALSE(fs::exists(scratch_ / "none.zip.part"));
  EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();
}

// A label (or a file name from the image) cannot drive the inspector's
// terminal: C0 and C1 controls and bytes that are not UTF-8 print as '?',
// other characters as they are.
TEST_F(ClientCli, ControlCharactersFromTheServerNeverReachTheTerminal) {
  start();
  // The daemon refuses C0 controls in a label; a C1 control (U+009B, CSI) it keeps.
  const std::string label =
      "bag-\xc2\x9b"
      "2J-\xc3\xa9t\xc3\xa9";
  const auto r =
      cli("submit --wait --label " + shell_quote(label) + " " + shell_quote(clean_image().string()), station());
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const auto listed = cli("reports", reviewer());
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_NE(listed.out.find("bag-?2J-\xc3\xa9t\xc3\xa9"), std::string::npos) << listed.out;
  EXPECT_EQ(listed.out.find("\xc2\x9b"), std::string::npos) << listed.out;
}

// A report damaged on the way is refused whole: not one byte of it reaches
// stdout, and the exit code says it failed.
TEST_F(ClientCli, ADamagedReportIsRefusedBeforeAnyOfItIsShown) {
  auto& d = start();
  const std::string id = submit_and_wait(flagged_image(), 1);
  ASSERT_FALSE(id.empty());
  cutting_proxy proxy(d.port(), false, true);
  for (const std::string& args : {"report " + id + " --json", "report " + id}) {
    const auto r = cli(args, reviewer(), url(proxy.port()));
    expect_readable_error(r);
    EXPECT_NE(r.err.find("arrived damaged"), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty()) << args << ":\n" << r.out.substr(0, 200);
  }
  // Through the daemon directly the same report is whole.
  const auto direct = cli("report " + id + " --json", reviewer());
  EXPECT_EQ(direct.exit_code, 0) << direct.err;
  EXPECT_EQ(direct.out, http_get(d.port(), "/api/v1/scans/" + id + "/report").body);
}

TEST_F(ClientCli, TlsVerifiesTheDaemonsCertificateWithCaFileAndRefusesWithoutIt) {
  const fs::path cert = scratch_ / "server.crt";
  const fs::path key = scratch_ / "server.key";
  const auto made = run_command(
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1"
      " -keyout " +
      shell_quote(key.string()) + " -out " + shell_quote(cert.string()));
  ASSERT_EQ(made.exit_code, 0) << made.err;
  daemon_options options;
  options.http_extra = "tls_certificate = \"" + cert.string() + "\"\ntls_private_key = \"" + key.string() + "\"\n";
  auto& d = start(options);
  const std::string server = url(d.port(), "https");

  const auto ok =
      cli("submit --wait --ca-file " + shell_quote(cert.string()) + " " + shell_quote(clean_image().string()),
          station(), server);
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err << d.log();
  EXPECT_NE(ok.out.find("verdict   CLEAN"), std::string::npos) << ok.out;

  const auto refused = cli("submit " + shell_quote(clean_image().string()), station(), server);
  expect_readable_error(refused);
  EXPECT_NE(refused.err.find("certificate verify failed"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("--ca-file"), std::string::npos) << "says what to do:\n" << refused.err;

  // A certificate for another name is refused too, even when trusted.
  const auto wrong_host = cli("reports --ca-file " + shell_quote(cert.string()), reviewer(),
                              "https://localhost:" + std::to_string(d.port()));
  expect_readable_error(wrong_host);
  EXPECT_NE(wrong_host.err.find("(hostname mismatch): the certificate is not for localhost"), std::string::npos)
      << wrong_host.err;

  // Plain http to the TLS listener, and --ca-file for a plain server, say what is wrong.
  const auto plain = cli("reports", reviewer(), url(d.port()));
  expect_readable_error(plain);
  EXPECT_NE(plain.err.find("https://"), std::string::npos) << plain.err;
  const auto pointless = cli("reports --ca-file " + shell_quote(cert.string()), reviewer(), url(d.port()));
  expect_readable_error(pointless);
  EXPECT_NE(pointless.err.find("--ca-file is for https://"), std::string::npos) << pointless.err;
}

}  // namespace
}  // namespace borderscan::client
