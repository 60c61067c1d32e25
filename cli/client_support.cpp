#include "client_support.hpp"

#include "borderscan/scanner/text.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "borderscan/client/error.hpp"
#include "borderscan/scanner/digest.hpp"
#include "borderscan/scanner/text.hpp"

namespace borderscan::cli {

using client::client_error;
using nlohmann::json;

void add_connection_options(CLI::App& cmd, connection_args& args) {
  cmd.add_option("--server", args.server, "The daemon's URL, http://HOST:PORT or https://HOST:PORT")
      ->envname("BORDERSCAN_SERVER")
      ->capture_default_str();
  cmd.add_option("--token", args.token, "Bearer token (better given in BORDERSCAN_TOKEN: not visible in ps)")
      ->envname("BORDERSCAN_TOKEN");
  cmd.add_option("--ca-file", args.ca_file,
                 "PEM file of CA certificates to trust for https besides the system's (a daemon's own certificate)")
      ->envname("BORDERSCAN_CA_FILE");
}

std::unique_ptr<client::http_client> make_client(const connection_args& args) {
  client::client_options options;
  options.server = args.server;
  options.token = args.token;
  options.ca_file = args.ca_file;
  options.user_agent = std::string("borderscan/") + BORDERSCAN_VERSION;
  return std::make_unique<client::http_client>(std::move(options));
}

int run_client_command(const std::function<int()>& body) {
  try {
    return body();
  } catch (const client_error& e) {
    std::cerr << "borderscan: " << e.what() << "\n";
  } catch (const std::bad_alloc&) {
    std::cerr << "borderscan: out of memory\n";
  } catch (const std::exception& e) {
    // The client library turns Boost errors into words; anything else here
    // is our own message.
    std::cerr << "borderscan: " << e.what() << "\n";
  }
  return 2;
}

std::string printable(std::string_view text) {
  // C0, DEL and C1 controls (U+0080..U+009F: CSI is U+009B) and bytes that
  // are not UTF-8 (an 8-bit terminal reads a lone 0x9B as CSI) become '?'.
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const scanner::utf8_char c = scanner::decode_utf8(text, i);
    const bool control = c.code_point < 0x20 || (c.code_point >= 0x7f && c.code_point <= 0x9f);
    if (!c.valid || control) {
      out.push_back('?');
      i += c.valid ? c.length : 1;
    } else {
      out.append(text.substr(i, c.length));
      i += c.length;
    }
  }
  return out;
}

status_line::status_line() : tty_(::isatty(STDERR_FILENO) != 0) {}

status_line::~status_line() {
  clear();
}

void status_line::show(const std::string& text, bool force) {
  if (!tty_) {
    return;
  }
  const auto now = client::rate_meter::clock::now();
  if (!force && shown_ > 0 && now - last_ < std::chrono::milliseconds(100)) {
    return;
  }
  last_ = now;
  std::string line = "\r" + text;
  if (text.size() < shown_) {
    line += std::string(shown_ - text.size(), ' ');
  }
  shown_ = text.size();
  std::cerr << line << std::flush;
}

void status_line::note(const std::string& text) {
  clear();
  std::cerr << text << "\n" << std::flush;
}

void status_line::clear() {
  if (tty_ && shown_ > 0) {
    std::cerr << "\r" << std::string(shown_, ' ') << "\r" << std::flush;
    shown_ = 0;
  }
}

namespace {

template <class T>
T number_or(const json& j, const char* key, T fallback) {
  const auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<T>() : fallback;
}

std::string text_or(const json& j, const char* key, std::string fallback = {}) {
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : fallback;
}

int severity_rank(std::string_view s) {
  static constexpr std::string_view order[] = {"info", "low", "medium", "high", "critical"};
  for (int i = 0; i < 5; ++i) {
    if (order[i] == s) {
      return i;
    }
  }
  return -1;
}

}  // namespace

report_digest read_report_digest(std::FILE* file) {
  // The parser keeps only what the summary shows: the file list, matched
  // strings, rule meta and the per-type tables are dropped as they are read.
  static const std::set<std::string> top_keys = {"schema",         "scan_id", "station", "image",    "verdict",
                                                 "verdict_reason", "score",   "summary", "findings", "limits_hit"};
  static const std::set<std::string> finding_keys = {"severity", "rule", "path", "deleted"};
  std::string top;
  std::set<std::string> limits;
  const json::parser_callback_t keep = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::key) {
      const auto& key = parsed.get_ref<const std::string&>();
      if (depth == 1) {
        top = key;
        return top_keys.count(key) > 0;
      }
      if (depth == 2 && top == "summary") {
        return key != "by_mime" && key != "by_type";
      }
      if (depth == 3 && top == "findings") {
        return finding_keys.count(key) > 0;
      }
      return true;
    }
    if (event == json::parse_event_t::object_end && depth == 2 && top == "limits_hit") {
      if (parsed.is_object()) {
        limits.insert(text_or(parsed, "limit", "?"));
      }
      return false;
    }
    return true;
  };
  const json doc = json::parse(file, keep, false);
  if (!doc.is_object() || text_or(doc, "schema").rfind("borderscan.report/", 0) != 0) {
    throw client_error(client_error::kind::local, "the server's answer is not a Borderscan report");
  }
  report_digest r;
  r.scan_id = text_or(doc, "scan_id");
  r.station = text_or(doc, "station");
  if (const auto it = doc.find("image"); it != doc.end() && it->is_object()) {
    r.image_name = text_or(*it, "name");
    r.image_size = number_or<std::uint64_t>(*it, "size", 0);
    r.image_sha256 = text_or(*it, "sha256");
  }
  r.verdict = text_or(doc, "verdict", "?");
  r.verdict_reason = text_or(doc, "verdict_reason");
  r.score = number_or<int>(doc, "score", 0);
  if (const auto it = doc.find("summary"); it != doc.end() && it->is_object()) {
    r.files = number_or<std::uint64_t>(*it, "files", 0);
    r.directories = number_or<std::uint64_t>(*it, "directories", 0);
    r.deleted = number_or<std::uint64_t>(*it, "deleted", 0);
    r.deleted_directories = number_or<std::uint64_t>(*it, "deleted_directories", 0);
    r.flagged_files = number_or<std::uint64_t>(*it, "flagged_files", 0);
    r.errors = number_or<std::uint64_t>(*it, "errors", 0);
  }
  r.limits_hit = std::move(limits);
  if (const auto it = doc.find("findings"); it != doc.end() && it->is_array()) {
    for (const auto& f : *it) {
      const auto deleted = f.find("deleted");
      r.findings.push_back({text_or(f, "severity", "?"), text_or(f, "rule", "?"), text_or(f, "path"),
                            deleted != f.end() && deleted->is_boolean() && deleted->get<bool>()});
    }
  }
  return r;
}

void print_report_summary(std::ostream& out, const report_digest& r) {
  if (!r.scan_id.empty()) {  // an offline scan has none
    out << "scan      " << printable(r.scan_id);
    if (!r.station.empty()) {
      out << "  (station " << printable(r.station) << ")";
    }
    out << "\n";
  }
  out << "image     " << printable(r.image_name) << "  " << client::human_bytes(r.image_size) << "  sha256 "
      << printable(r.image_sha256) << "\n";
  // Deleted files and deleted directories apart: what was thrown away matters.
  const std::uint64_t deleted_files = r.deleted - std::min(r.deleted, r.deleted_directories);
  out << "files     " << r.files << " (" << deleted_files << " deleted), " << r.directories << " directories ("
      << r.deleted_directories << " deleted), " << r.flagged_files << " flagged, " << r.errors
      << (r.errors == 1 ? " error" : " errors") << "\n";
  if (!r.limits_hit.empty()) {
    out << "limits    ";
    const char* sep = "";
    for (const auto& l : r.limits_hit) {
      out << sep << printable(l);
      sep = ", ";
    }
    out << " (part of the image was not scanned)\n";
  }
  std::string verdict = r.verdict;
  std::transform(verdict.begin(), verdict.end(), verdict.begin(), [](unsigned char c) { return std::toupper(c); });
  out << "verdict   " << printable(verdict) << "  score " << r.score;
  if (!r.verdict_reason.empty()) {
    out << "  (" << printable(r.verdict_reason) << ")";
  }
  out << "\n";
  if (r.findings.empty()) {
    out << "findings  none\n";
    return;
  }
  // The same rule at the same severity is one line with a count: a stick
  // full of copies of one file must not bury the other findings.
  struct group {
    std::string severity, rule, first_path;
    bool first_deleted = false;
    std::size_t count = 0, deleted = 0;
  };
  std::map<std::pair<std::string, std::string>, group> groups;
  for (const auto& f : r.findings) {
    const auto it = groups
                        .try_emplace({f.severity, f.rule},
                                     group{f.severity, f.rule, f.path.empty() ? "(the image)" : f.path, f.deleted})
                        .first;
    ++it->second.count;
    it->second.deleted += f.deleted ? 1 : 0;
  }
  std::vector<group> rows;
  for (auto& [key, g] : groups) {
    rows.push_back(std::move(g));
  }
  std::stable_sort(rows.begin(), rows.end(), [](const group& a, const group& b) {
    if (severity_rank(a.severity) != severity_rank(b.severity)) {
      return severity_rank(a.severity) > severity_rank(b.severity);
    }
    return a.count > b.count;
  });
  std::size_t rule_width = 4;
  for (const auto& g : rows) {
    rule_width = std::max(rule_width, std::min<std::size_t>(g.rule.size(), 40));
  }
  out << "findings  " << r.findings.size() << "\n";
  out << "  " << std::left << std::setw(9) << "SEVERITY"
      << " " << std::setw(static_cast<int>(rule_width)) << "RULE"
      << "  " << std::right << std::setw(5) << "COUNT"
      << "  PATH\n";
  for (const auto& g : rows) {
    out << "  " << std::left << std::setw(9) << printable(g.severity) << " " << std::setw(static_cast<int>(rule_width))
        << printable(g.rule) << "  " << std::right << std::setw(5) << g.count << "  " << printable(g.first_path)
        << (g.first_deleted ? " [deleted]" : "");
    if (g.count > 1) {
      out << " (+" << g.count - 1 << " more";
      if (g.deleted > 0) {
        out << "; " << g.deleted << " of all " << g.count << " deleted";
      }
      out << ")";
    }
    out << "\n";
  }
}

int exit_code_for_verdict(std::string_view verdict) {
  if (verdict == "clean") {
    return 0;
  }
  if (verdict == "flagged") {
    return 1;
  }
  if (verdict == "incomplete") {
    return 3;
  }
  return 2;
}

file_handle fetch_verified_report(client::http_client& client, const std::string& id) {
  file_handle spill(std::tmpfile(), &std::fclose);
  if (!spill) {
    throw client_error(client_error::kind::local, "cannot create a temporary file for the report");
  }
  scanner::sha256_hasher hasher;
  const client::body_sink take = [&](std::string_view piece) {
    hasher.update(piece.data(), piece.size());
    if (std::fwrite(piece.data(), 1, piece.size(), spill.get()) != piece.size()) {
      throw client_error(client_error::kind::local, "cannot write the report to a temporary file");
    }
    return true;
  };
  const auto res = client.fetch(boost::beast::http::verb::get, "/api/v1/scans/" + id + "/report", {}, take);
  client::expect_success(res);
  const std::string claimed = res.header("Repr-Digest");
  if (const auto begin = claimed.find("sha-256=:"); begin != std::string::npos) {
    const auto value_begin = begin + 9;
    const auto end = claimed.find(':', value_begin);
    const auto expected = scanner::base64_decode(claimed.substr(value_begin, end - value_begin));
    const auto got = hasher.finish();
    if (!expected || !std::equal(got.begin(), got.end(), expected->begin(), expected->end())) {
      throw client_error(client_error::kind::network,
                         "the report of scan " + id + " arrived damaged: its SHA-256 is not the one the server sent");
    }
  }  // else an older daemon: nothing to check against
  if (std::fflush(spill.get()) != 0) {
    throw client_error(client_error::kind::local, "cannot write the report to a temporary file");
  }
  std::rewind(spill.get());
  return spill;
}

void copy_report(std::FILE* file, std::ostream& out) {
  std::array<char, 1 << 16> block{};
  std::size_t n = 0;
  while ((n = std::fread(block.data(), 1, block.size(), file)) > 0) {
    out.write(block.data(), static_cast<std::streamsize>(n));
  }
  if (std::ferror(file) != 0) {
    throw client_error(client_error::kind::local, "cannot read the report back from its temporary file");
  }
  out.flush();
}

}  // namespace borderscan::cli
