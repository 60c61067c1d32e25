// Fuzz target: bytes as a report document, through every reader of one:
//  - scanner::read_report, the streaming checker the daemon runs on what a
//    worker wrote: it accepts the document or throws report_invalid, never
//    anything else, and hands out as many entries as it counts;
//  - the signature check (verify_report_file), on any document: never valid
//    under a key that signed nothing;
//  - for an accepted document, what the daemon does next: report_ingest
//    stores it (rows in a real SQLite store, signed, moved into place), which
//    must succeed; the signed file verifies; and the routes that read a
//    stored report (overview, files, file types, verification, the document
//    itself, the listing) answer 200 with well-formed bodies.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "borderscan/evidence/report_signature.hpp"
#include "borderscan/scanner/report_file.hpp"
#include "fuzz_daemon.hpp"

namespace {

namespace sc = borderscan::scanner;
namespace sv = borderscan::server;
namespace ev = borderscan::evidence;
namespace http = boost::beast::http;
using borderscan::fuzz::property_failed;

struct bystander {
  borderscan::fuzz::scratch_folder dir;
  ev::signing_key key = ev::signing_key::load_or_create(dir / "keys" / "other.pem");
};

std::string body_of(sv::response& r) {
  if (!r.stream) {
    return r.message.body();
  }
  std::string out;
  std::array<char, 64 * 1024> piece{};
  for (std::size_t n; (n = r.stream->read(piece)) > 0;) {
    out.append(piece.data(), n);
  }
  return out;
}

void check_served(borderscan::fuzz::daemon_parts& d, const std::string& id) {
  for (const std::string& target :
       std::vector<std::string>{"/api/v1/reports/" + id + "/overview", "/api/v1/reports/" + id + "/files?limit=50",
                                "/api/v1/reports/" + id + "/file-types", "/api/v1/reports/" + id + "/verification",
                                "/api/v1/scans/" + id + "/report", "/api/v1/reports", "/api/v1/scans/" + id}) {
    sv::request req{http::verb::get, target, 11};
    req.set(http::field::authorization, std::string("Bearer ") + borderscan::fuzz::admin_token);
    auto res = d.routes.handle(req, "fuzz");
    const std::string body = body_of(res);
    BORDERSCAN_FUZZ_CHECK(res.message.result() == http::status::ok, target + " answers 200: " + body.substr(0, 2000));
    BORDERSCAN_FUZZ_CHECK(!nlohmann::json::parse(body, nullptr, false).is_discarded(),
                          target + " answers JSON: " + body.substr(0, 2000));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const bystander other = [] {
    borderscan::fuzz::quiet_logs();
    return bystander{};
  }();
  const std::string text(reinterpret_cast<const char*>(data), size);

  std::istringstream in(text);
  std::uint64_t files = 0, findings = 0;
  sc::report_reading reading;
  bool accepted = true;
  try {
    reading = sc::read_report(
        in, sc::severity::medium, [&](const sc::file_entry&, const std::string&) { ++files; },
        [&](const sc::finding&) { ++findings; });
  } catch (const sc::report_invalid& e) {
    if (borderscan::fuzz::tracing()) {
      std::fprintf(stderr, "  refused: %s\n", e.what());
    }
    accepted = false;
  } catch (const std::exception& e) {
    property_failed("read_report throws only report_invalid", e.what());
  }

  const auto document = other.dir / "report.json";
  borderscan::fuzz::write_bytes(document, {data, size});
  const auto outcome = ev::verify_report_file(document, other.key.public_part());
  BORDERSCAN_FUZZ_CHECK(outcome.result != ev::verification::valid, "a signature by a key that signed nothing");
  if (!accepted) {
    return 0;
  }
  BORDERSCAN_FUZZ_CHECK(files == reading.files && findings == reading.findings,
                        "read_report counts the entries it handed out");

  borderscan::fuzz::daemon_parts d;
  const auto& head = reading.head;
  sv::stored_report stored;
  try {
    stored = d.store_report(head.scan_id, text, head.image.sha256, head.ruleset.digest);
  } catch (const std::exception& e) {
    property_failed("report_ingest stores what read_report accepts", e.what());
  }
  const auto signed_outcome = ev::verify_report_file(stored.path, d.signer.public_part());
  BORDERSCAN_FUZZ_CHECK(signed_outcome.result == ev::verification::valid,
                        "the stored report verifies: " + signed_outcome.detail);
  if (sv::is_valid_scan_id(head.scan_id)) {
    check_served(d, head.scan_id);
  }
  if (borderscan::fuzz::tracing()) {
    std::fprintf(stderr, "  stored, signed and served: %llu files, %llu findings\n",
                 static_cast<unsigned long long>(files), static_cast<unsigned long long>(findings));
  }
  return 0;
}
