#pragma once
// A report as a file: written once (by the CLI or the daemon's worker) and
// read back as a stream by whoever needs it, never held whole in memory.

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <stdexcept>
#include <string>

#include "borderscan/scanner/report.hpp"

namespace borderscan::scanner {

struct report_file_info {
  std::uint64_t size = 0;
  std::string sha256;  // lower-case hex of the bytes written
};

// Writes the report as write_report(pretty) does to an open descriptor,
// hashing what it writes, then fsyncs. Past max_bytes (0 = no bound) it stops
// and throws std::length_error; write errors throw std::system_error.
report_file_info write_report_file(int fd, const report& r, std::uint64_t max_bytes = 0);

// A report document that is not what write_report() makes: a syntax error,
// a missing or mistyped field, or a summary or verdict that does not follow
// from its own entries.
class report_invalid : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct report_reading {
  report head;  // everything but files and findings, which stay empty
  std::uint64_t files = 0;
  std::uint64_t findings = 0;
};

// Reads a report document front to back. Each file entry is checked
// (from_json) and handed to on_file with its JSON text, one at a time; the
// top-level findings are checked and handed to on_finding (when set); the
// rest is kept in `head`. Then the summary
// is checked against the entries read (counts, bytes, types, flagged files at
// flag_threshold) and the verdict and score against the findings, errors and
// limits. Throws report_invalid saying what is wrong. Memory: one file entry
// at a time plus the head.
report_reading read_report(std::istream& in, severity flag_threshold,
                           const std::function<void(const file_entry& entry, const std::string& json_text)>& on_file,
                           const std::function<void(const finding& f)>& on_finding = {});

}  // namespace borderscan::scanner
