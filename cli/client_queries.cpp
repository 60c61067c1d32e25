// The inspector's side of the kiosk client: borderscan reports (the queue),
// report (one report, as a summary or the exact stored bytes), review (record
// a decision) and evidence (a flagged file's content, in an AES zip).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "borderscan/client/error.hpp"
#include "borderscan/client/progress.hpp"
#include "client_support.hpp"
#include "commands.hpp"

namespace borderscan::cli {

namespace {

using client::client_error;
using nlohmann::json;
namespace http = boost::beast::http;

std::string text_of(const json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

json parse_answer(const client::response& res) {
  json j = json::parse(res.body, nullptr, false);
  if (j.is_discarded()) {
    throw client_error(client_error::kind::http, "the server's answer is not JSON");
  }
  return j;
}

// Scan ids are 32 hex digits; anything else would change the request's path.
void check_id(const std::string& id) {
  const bool ok = !id.empty() && id.size() <= 64 &&
                  std::all_of(id.begin(), id.end(), [](unsigned char c) { return std::isalnum(c) != 0; });
  if (!ok) {
    throw client_error(client_error::kind::usage, "'" + printable(id) + "' is not a scan id");
  }
}

// ---- reports ------------------------------------------------------------

struct reports_args {
  connection_args connection;
  bool flagged = false;
  bool pending = false;
  std::string verdict;
  std::string review;
  std::string station;
  std::string case_ref;
  std::string since;
  std::string until;
  unsigned limit = 50;
  std::string cursor;
  bool json_output = false;
};

std::string short_time(const std::string& rfc3339) {
  // "2024-05-01T10:00:00Z" -> "2024-05-01 10:00:00"
  std::string t = rfc3339;
  if (t.size() >= 19 && t[10] == 'T') {
    t[10] = ' ';
    t = t.substr(0, 19);
  }
  return t;
}

void print_table(std::ostream& out, const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()));
    for (std::size_t i = 0; i < row.size(); ++i) {
      widths[i] = std::max(widths[i], std::min<std::size_t>(row[i].size(), 48));
    }
  }
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      std::string cell = row[i].size() > 48 ? row[i].substr(0, 45) + "..." : row[i];
      if (i + 1 < row.size()) {
        cell.resize(widths[i], ' ');
        cell += "  ";
      }
      line += cell;
    }
    out << line << "\n";
  }
}

int run_reports(const reports_args& args) {
  std::string verdict = args.verdict;
  std::string review = args.review;
  if (args.flagged) {
    verdict = "flagged";
  }
  if (args.pending) {
    review = "pending";
  }
  auto http = make_client(args.connection);
  const std::string target = client::with_query("/api/v1/reports", {{"verdict", verdict},
                                                                    {"review", review},
                                                                    {"station", args.station},
                                                                    {"case_ref", args.case_ref},
                                                                    {"since", args.since},
                                                                    {"until", args.until},
                                                                    {"limit", std::to_string(args.limit)},
                                                                    {"cursor", args.cursor}});
  const auto res = client::expect_success(http->request(http::verb::get, target));
  if (args.json_output) {
    std::cout << res.body << (res.body.ends_with('\n') ? "" : "\n");
    return 0;
  }
  const json page = parse_answer(res);
  const json items = page.value("items", json::array());
  if (!items.is_array() || items.empty()) {
    std::cout << "no reports match\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {{"ID", "SUBMITTED", "STATION", "LABEL", "VERDICT", "REVIEW", "FILES"}};
  for (const auto& item : items) {
    const std::string signed_verdict = text_of(item, "verdict");
    std::string verdict_cell = text_of(item, "derived_verdict");
    if (verdict_cell.empty()) {
      verdict_cell = signed_verdict;
    } else if (verdict_cell != signed_verdict) {
      verdict_cell += " (signed: " + signed_verdict + ")";
    }
    std::string review_cell = text_of(item, "review");
    if (const std::string decision = text_of(item, "review_state"); !decision.empty() && decision != "unreviewed") {
      review_cell += ": " + decision;
    }
    std::string files = std::to_string(item.value("files", 0));
    if (const auto flagged = item.value("flagged_files", 0); flagged > 0) {
      files += " (" + std::to_string(flagged) + " flagged)";
    }
    rows.push_back({printable(text_of(item, "id")), printable(short_time(text_of(item, "submitted_at"))),
                    printable(text_of(item, "station")), printable(text_of(item, "label")), printable(verdict_cell),
                    printable(review_cell), files});
  }
  print_table(std::cout, rows);
  if (const auto next = page.find("next_cursor"); next != page.end() && next->is_string()) {
    std::cerr << "more: borderscan reports ... --cursor " << printable(next->get<std::string>()) << "\n";
  }
  return 0;
}

// ---- report -------------------------------------------------------------

struct report_args {
  connection_args connection;
  std::string id;
  bool json_output = false;
};

int run_report(const report_args& args) {
  check_id(args.id);
  auto http = make_client(args.connection);
  const file_handle report = fetch_verified_report(*http, args.id);
  if (args.json_output) {
    // The stored bytes exactly: a signed report stays verifiable
    // (borderscan verify) only if nothing re-serialises it.
    copy_report(report.get(), std::cout);
    return std::cout ? 0 : 2;
  }
  print_report_summary(std::cout, read_report_digest(report.get()));
  return 0;
}

// ---- review -------------------------------------------------------------

struct review_args {
  connection_args connection;
  std::string id;
  std::string decision;
  std::string note;
};

int run_review(const review_args& args) {
  check_id(args.id);
  auto http = make_client(args.connection);
  json body = {{"decision", args.decision}};
  if (!args.note.empty()) {
    body["note"] = args.note;
  }
  const auto res = client::expect_success(
      http->request(http::verb::post, "/api/v1/reports/" + args.id + "/reviews", body.dump(), "application/json"));
  const json review = parse_answer(res);
  const json reviewer = review.value("reviewer", json::object());
  std::cout << "recorded: " << printable(text_of(review, "decision")) << " on report " << args.id << " by "
            << printable(reviewer.is_object() ? text_of(reviewer, "name") : std::string()) << " at "
            << printable(text_of(review, "at")) << "\n";
  return 0;
}

// ---- evidence -----------------------------------------------------------

struct evidence_args {
  connection_args connection;
  std::string id;
  unsigned long long index = 0;
  std::string output;
  std::string view;
};

void print_preview(const json& preview) {
  std::cout << printable(text_of(preview, "path")) << "  " << preview.value("size", 0ULL) << " bytes  sha256 "
            << printable(text_of(preview, "sha256")) << "\n";
  std::cout << "first " << preview.value("shown_bytes", 0ULL) << " bytes"
            << (preview.value("truncated", false) ? " (truncated)" : "") << ":\n";
  if (const auto lines = preview.find("lines"); lines != preview.end() && lines->is_array()) {
    for (const auto& line : *lines) {
      char offset[24];
      std::snprintf(offset, sizeof offset, "%08llx", line.value("offset", 0ULL));
      std::cout << offset << "  " << std::left << std::setw(48) << printable(text_of(line, "hex")) << "  "
                << printable(text_of(line, "text")) << "\n";
    }
  } else {
    // Text view: the server replaced control bytes already; line breaks stay.
    const std::string text = text_of(preview, "text");
    std::string out;
    for (const char c : text) {
      out.push_back(c == '\n' || c == '\t' ? c : printable(std::string_view(&c, 1))[0]);
    }
    std::cout << out << (out.ends_with('\n') ? "" : "\n");
  }
}

int run_evidence(const evidence_args& args) {
  check_id(args.id);
  if (args.view.empty() && args.output.empty()) {
    throw client_error(client_error::kind::usage, "-o FILE is required (the content is a zip), or use --view hex|text");
  }
  auto http = make_client(args.connection);
  const std::string target = client::with_query(
      "/api/v1/reports/" + args.id + "/files/" + std::to_string(args.index) + "/content", {{"view", args.view}});
  if (!args.view.empty()) {
    const auto res = client::expect_success(http->request(http::verb::get, target));
    if (!args.output.empty()) {
      std::ofstream out(args.output, std::ios::binary | std::ios::trunc);
      out << res.body;
      if (!out.flush()) {
        throw client_error(client_error::kind::local, "cannot write " + args.output);
      }
    }
    print_preview(parse_answer(res));
    return 0;
  }
  const std::filesystem::path final_path(args.output);
  std::uint64_t written = 0;
  client::expect_success(http->download(target, {}, final_path, written));
  std::cout << "wrote " << final_path.string() << " (" << client::human_bytes(written)
            << "): an AES-256 zip; its password is \"infected\" (open it with 7-Zip or bsdtar, on an analysis "
               "machine)\n";
  return 0;
}

}  // namespace

command_runner add_reports_command(CLI::App& app) {
  auto args = std::make_shared<reports_args>();
  CLI::App* cmd = app.add_subcommand("reports", "List reports on the daemon, newest first (the review queue)");
  add_connection_options(*cmd, args->connection);
  cmd->add_flag("--flagged", args->flagged, "Only flagged reports (--verdict flagged)");
  cmd->add_flag("--pending", args->pending, "Only reports waiting for a review (--review pending)");
  cmd->add_option("--verdict", args->verdict, "Only this derived verdict")
      ->check(CLI::IsMember({"clean", "flagged", "incomplete", "error", "cleared_false_positive"}));
  cmd->add_option("--review", args->review, "Only this review state or last decision")
      ->check(
          CLI::IsMember({"pending", "reviewed", "not_required", "unreviewed", "cleared", "confirmed", "escalated"}));
  cmd->add_option("--station", args->station, "Only reports this station submitted");
  cmd->add_option("--case", args->case_ref, "Only reports of this case reference");
  cmd->add_option("--since", args->since, "Submitted at or after (2024-05-01 or 2024-05-01T10:00:00Z)");
  cmd->add_option("--until", args->until, "Submitted before");
  cmd->add_option("--limit", args->limit, "Reports per page")->check(CLI::Range(1, 500))->capture_default_str();
  cmd->add_option("--cursor", args->cursor, "The next page, as the previous page named it");
  cmd->add_flag("--json", args->json_output, "Print the page as the daemon sent it");
  return [args] { return run_client_command([&] { return run_reports(*args); }); };
}

command_runner add_report_command(CLI::App& app) {
  auto args = std::make_shared<report_args>();
  CLI::App* cmd = app.add_subcommand("report", "Show one report from the daemon");
  cmd->add_option("ID", args->id, "The scan id")->required();
  add_connection_options(*cmd, args->connection);
  cmd->add_flag("--json", args->json_output, "Print the report's bytes exactly as the daemon stores them");
  return [args] { return run_client_command([&] { return run_report(*args); }); };
}

command_runner add_review_command(CLI::App& app) {
  auto args = std::make_shared<review_args>();
  CLI::App* cmd = app.add_subcommand("review", "Record an inspector's decision on a report (reviewer token)");
  cmd->add_option("ID", args->id, "The scan id")->required();
  add_connection_options(*cmd, args->connection);
  cmd->add_option("--decision", args->decision, "cleared, confirmed or escalated")
      ->required()
      ->check(CLI::IsMember({"cleared", "confirmed", "escalated"}));
  cmd->add_option("--note", args->note, "Why (up to 4096 bytes)");
  return [args] { return run_client_command([&] { return run_review(*args); }); };
}

command_runner add_evidence_command(CLI::App& app) {
  auto args = std::make_shared<evidence_args>();
  CLI::App* cmd = app.add_subcommand("evidence", "Download a flagged file's content kept as evidence (reviewer token)");
  cmd->add_option("ID", args->id, "The scan id")->required();
  cmd->add_option("INDEX", args->index, "The file's index in the report (0-based, as the files page gives it)")
      ->required();
  add_connection_options(*cmd, args->connection);
  cmd->add_option("-o,--output", args->output, "Write the AES-256 zip (password: infected) here");
  cmd->add_option("--view", args->view, "Print a preview of the first 64 KiB instead")
      ->check(CLI::IsMember({"hex", "text"}));
  return [args] { return run_client_command([&] { return run_evidence(*args); }); };
}

}  // namespace borderscan::cli
