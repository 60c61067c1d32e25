#pragma once
// Pieces shared by the kiosk client commands (submit, reports, report,
// review, evidence): the connection options, the one-line error and exit 2,
// the status line on stderr, and the report summary.

#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <ostream>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

#include "borderscan/client/http_client.hpp"
#include "borderscan/client/progress.hpp"

namespace borderscan::cli {

struct connection_args {
  std::string server = "http://127.0.0.1:8080";
  std::string token;
  std::string ca_file;
};

// --server (BORDERSCAN_SERVER), --token (BORDERSCAN_TOKEN), --ca-file (BORDERSCAN_CA_FILE).
void add_connection_options(CLI::App& cmd, connection_args& args);
std::unique_ptr<client::http_client> make_client(const connection_args& args);

// Runs a command's body: any failure becomes "borderscan: <one line>" on
// stderr and exit code 2.
int run_client_command(const std::function<int()>& body);

// Text from the server or an image (labels, file paths) made safe for a
// terminal: control characters become '?', so a crafted name cannot move the
// cursor or retitle the window.
std::string printable(std::string_view text);

// The progress line on stderr. On a terminal it is redrawn in place (at most
// ten times a second); elsewhere only note() lines are written, so logs stay
// readable.
class status_line {
 public:
  status_line();
  ~status_line();
  bool tty() const noexcept { return tty_; }
  void show(const std::string& text, bool force = false);
  void note(const std::string& text);
  void clear();

 private:
  bool tty_;
  std::size_t shown_ = 0;
  client::rate_meter::clock::time_point last_;
};

// What a person needs from a report, read without keeping the file list
// (a report of 100 000 files is not held in memory).
struct report_digest {
  struct finding {
    std::string severity;
    std::string rule;
    std::string path;
    bool deleted = false;  // the file is deleted on the device
  };
  std::string scan_id;
  std::string station;
  std::string image_name;
  std::uint64_t image_size = 0;
  std::string image_sha256;
  std::string verdict;
  std::string verdict_reason;
  int score = 0;
  std::uint64_t files = 0, directories = 0;
  std::uint64_t deleted = 0, deleted_directories = 0;  // deleted counts both
  std::uint64_t flagged_files = 0;
  std::uint64_t errors = 0;
  std::set<std::string> limits_hit;
  std::vector<finding> findings;
};

// Parses a report from `file` (read from its current position); throws
// client_error(kind::local) when it is not a Borderscan report.
report_digest read_report_digest(std::FILE* file);
// The summary `submit`, `report` and the offline `scan` print: counts, the
// verdict, and the findings with one line per rule and severity (a count
// and the first path; deleted files marked).
void print_report_summary(std::ostream& out, const report_digest& report);

// 0 clean, 1 flagged, 3 incomplete, 2 error or anything else.
int exit_code_for_verdict(std::string_view verdict);

using file_handle = std::unique_ptr<std::FILE, int (*)(std::FILE*)>;

// GET /api/v1/scans/{id}/report into an unlinked temporary file, checked
// against the Repr-Digest the daemon sent, rewound: nothing of a damaged
// report reaches the caller, and a report larger than memory should hold
// never sits in it.
file_handle fetch_verified_report(client::http_client& client, const std::string& id);

// Copies the rest of `file` to `out` (the stored bytes, unchanged).
void copy_report(std::FILE* file, std::ostream& out);

}  // namespace borderscan::cli
