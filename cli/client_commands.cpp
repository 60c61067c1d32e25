// borderscan submit: the kiosk's upload. Hashes the image, streams it to the
// daemon with its SHA-256 (the daemon refuses it if the bytes it received
// differ), and with --wait follows the scan over Server-Sent Events to the
// verdict. Exit codes as `scan`: 0 clean, 1 flagged, 3 incomplete, 2 error.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "borderscan/client/error.hpp"
#include "borderscan/client/image_file.hpp"
#include "borderscan/client/progress.hpp"
#include "borderscan/client/sse.hpp"
#include "borderscan/scanner/digest.hpp"
#include "client_support.hpp"
#include "commands.hpp"

namespace borderscan::cli {

namespace {

using client::client_error;
using client::human_bytes;
using nlohmann::json;

struct submit_args {
  connection_args connection;
  std::string image;
  std::string label;
  std::string case_ref;
  std::string filename;
  std::string sha256;
  bool wait = false;
  bool json_output = false;
};

bool is_sha256_hex(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isxdigit(c) != 0; });
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// Reads the image once to hash it, before the upload: the digest goes in the
// request head, and the daemon checks the bytes it spools against it.
std::string hash_image(const std::string& path, status_line& status) {
  client::image_file image(path);
  scanner::sha256_hasher hasher;
  std::vector<char> piece(1 << 20);
  client::rate_meter meter;
  std::uint64_t done = 0;
  while (done < image.size()) {
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(piece.size(), image.size() - done));
    const std::size_t n = image.read(piece.data(), want);
    if (n == 0) {
      throw client_error(client_error::kind::local, path + " became shorter while it was read");
    }
    hasher.update(piece.data(), n);
    done += n;
    meter.add(client::rate_meter::clock::now(), done);
    status.show("hashing   " + client::progress_text(done, image.size(), meter));
  }
  status.clear();
  return hasher.hex_digest();
}

std::string sha256_base64(const std::string& hex) {
  std::vector<std::uint8_t> bytes;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    bytes.push_back(static_cast<std::uint8_t>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return scanner::base64_encode(bytes);
}

std::string text_of(const json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::uint64_t count_of(const json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_number_unsigned() ? it->get<std::uint64_t>() : 0;
}

// Follows the scan's events to its end; returns the last scan object (its
// status done, failed or cancelled).
json follow_scan(client::http_client& http, const std::string& id, status_line& status) {
  json last = json::object();
  std::string last_status;
  client::rate_meter meter;
  client::follow_options options;
  options.on_retry = [&](const std::string& why, unsigned attempt, std::chrono::milliseconds delay) {
    char wait[32];
    std::snprintf(wait, sizeof wait, "%.1f s", std::chrono::duration<double>(delay).count());
    status.note("borderscan: " + why + "; reconnecting in " + wait + " (attempt " + std::to_string(attempt) + " of " +
                std::to_string(options.max_retries) + ")");
  };
  const auto on_event = [&](const client::sse_event& event) {
    json scan = json::parse(event.data, nullptr, false);
    if (!scan.is_object()) {
      return true;  // not ours to judge; the next event tells
    }
    const bool terminal = event.type == "done" || event.type == "failed" || event.type == "cancelled";
    std::string state = text_of(scan, "status");
    if (state.empty() && terminal) {
      state = event.type;
    }
    if (state != last_status) {
      if (!status.tty() || terminal || state == "queued") {
        status.note("scan " + id + ": " + printable(state));
      }
      last_status = state;
    }
    if (!terminal && state == "running") {
      const json progress = scan.value("progress", json::object());
      const std::uint64_t done = count_of(progress, "bytes_done");
      const std::uint64_t total = count_of(progress, "bytes_total");
      meter.add(client::rate_meter::clock::now(), done);
      status.show("scanning  " + client::progress_text(done, total, meter) + "  " +
                  std::to_string(count_of(progress, "files_done")) + "/" +
                  std::to_string(count_of(progress, "files_found")) + " files");
    }
    last = std::move(scan);
    if (terminal) {
      last["status"] = state;
      return false;
    }
    return true;
  };
  client::follow_events(http, "/api/v1/scans/" + id + "/events", on_event, options);
  status.clear();
  return last;
}

int run_submit(const submit_args& args) {
  status_line status;
  auto http = make_client(args.connection);
  std::string digest;
  if (!args.sha256.empty()) {
    if (!is_sha256_hex(args.sha256)) {
      throw client_error(client_error::kind::usage, "--sha256 must be 64 hex digits");
    }
    digest = lower(args.sha256);
  } else {
    digest = hash_image(args.image, status);
  }
  const std::string filename =
      args.filename.empty() ? std::filesystem::path(args.image).filename().string() : args.filename;
  const std::string target =
      client::with_query("/api/v1/scans", {{"label", args.label}, {"case_ref", args.case_ref}, {"filename", filename}});
  const client::header_list headers = {{"X-Image-SHA256", digest},
                                       {"Content-Digest", "sha-256=:" + sha256_base64(digest) + ":"}};

  client::rate_meter meter;
  std::uint64_t size = 0;
  const auto started = client::rate_meter::clock::now();
  const client::progress_fn progress = [&](std::uint64_t done, std::uint64_t total) {
    size = total;
    meter.add(client::rate_meter::clock::now(), done);
    status.show("uploading " + client::progress_text(done, total, meter));
  };
  const auto res = http->upload(target, args.image, headers, progress);
  status.clear();
  client::expect_success(res);
  const json accepted = json::parse(res.body, nullptr, false);
  const std::string id = accepted.is_object() ? text_of(accepted, "id") : std::string();
  if (id.empty()) {
    throw client_error(client_error::kind::http, "the server accepted the upload but named no scan id");
  }
  if (text_of(accepted, "image_sha256") != digest) {
    throw client_error(client_error::kind::http, "the server recorded SHA-256 " + text_of(accepted, "image_sha256") +
                                                     " for scan " + id + ", not " + digest);
  }
  const double seconds =
      std::max(0.001, std::chrono::duration<double>(client::rate_meter::clock::now() - started).count());
  char took[64];
  std::snprintf(took, sizeof took, "%.1f s, %s/s", seconds,
                human_bytes(static_cast<std::uint64_t>(static_cast<double>(size) / seconds)).c_str());
  // Off a terminal this is the one status line of the upload.
  status.note("uploaded " + printable(filename) + " (" + human_bytes(size) + ", sha256 " + digest + ") to " +
              http->server().authority() + " in " + took + "; scan " + id + " queued");

  if (!args.wait) {
    if (args.json_output) {
      std::cout << res.body << (res.body.ends_with('\n') ? "" : "\n");
    } else {
      std::cout << id << "\n";
    }
    return 0;
  }

  const json scan = follow_scan(*http, id, status);
  const std::string state = text_of(scan, "status");
  if (state == "failed") {
    const std::string why = text_of(scan, "error");
    throw client_error(client_error::kind::http,
                       "scan " + id + " failed: " + (why.empty() ? "the server gave no reason" : printable(why)));
  }
  if (state == "cancelled") {
    const json by = scan.value("cancelled_by", json::object());
    const std::string who = by.is_object() ? text_of(by, "name") : std::string();
    throw client_error(client_error::kind::http,
                       "scan " + id + " was cancelled" + (who.empty() ? "" : " by " + printable(who)));
  }

  // Checked whole before any of it is shown; parsed from a temporary file:
  // the report may be far larger than memory should hold.
  const file_handle stored = fetch_verified_report(*http, id);
  if (args.json_output) {
    copy_report(stored.get(), std::cout);
    return exit_code_for_verdict(text_of(scan, "verdict"));
  }
  const report_digest report = read_report_digest(stored.get());
  print_report_summary(std::cout, report);
  return exit_code_for_verdict(report.verdict);
}

}  // namespace

command_runner add_submit_command(CLI::App& app) {
  auto args = std::make_shared<submit_args>();
  CLI::App* cmd = app.add_subcommand("submit", "Upload an image to the daemon for scanning (kiosk client)");
  cmd->add_option("IMAGE", args->image, "The device image (a file, or a block device such as /dev/sdb)")->required();
  add_connection_options(*cmd, args->connection);
  cmd->add_option("--label", args->label, "Free text shown in listings (e.g. the bag tag)");
  cmd->add_option("--case", args->case_ref, "Case or declaration reference");
  cmd->add_option("--filename", args->filename, "Name of the image in the report (default: IMAGE's file name)");
  cmd->add_option("--sha256", args->sha256,
                  "The image's SHA-256 as the imaging tool recorded it: not hashed again here; the daemon refuses "
                  "the upload if the bytes differ");
  cmd->add_flag("--wait", args->wait,
                "Follow the scan to its end, print the summary and exit 0 clean, 1 flagged, 3 incomplete, 2 error");
  cmd->add_flag("--json", args->json_output,
                "Print JSON on stdout: the upload's answer, or with --wait the report as the daemon stores it");
  return [args] { return run_client_command([&] { return run_submit(*args); }); };
}

}  // namespace borderscan::cli
