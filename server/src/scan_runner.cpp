#include "borderscan/server/scan_runner.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "borderscan/scanner/report_file.hpp"
#include "borderscan/scanner/rule_set.hpp"

namespace borderscan::server {

namespace fs = std::filesystem;

rules_snapshot load_rules(const scanner::rule_sources& sources, const fs::path& dir) {
  rules_snapshot snapshot;
  snapshot.rules = scanner::rule_set::load(sources);
  fs::create_directories(dir);
  const std::string& digest = snapshot.rules->info().digest;  // "sha256:<hex>"
  snapshot.compiled = dir / (digest.substr(digest.find(':') + 1) + ".yarc");
  snapshot.compiled_sha256 = snapshot.rules->save_compiled(snapshot.compiled);
  return snapshot;
}

fs::path report_path_for(const scan_record& scan) {
  return fs::path(scan.spool_path).replace_extension(".report.json");
}

fs::path evidence_pack_path_for(const scan_record& scan) {
  return fs::path(scan.spool_path).replace_extension(".evidence");
}

in_process_runner::in_process_runner(const scanner::limits& lim, const rule_holder& rules, unsigned scan_threads,
                                     std::optional<scanner::evidence_limits> evidence)
    : limits_(lim), rules_(rules), scan_threads_(scan_threads), evidence_(evidence) {}

report_file in_process_runner::run(const scan_request& request) {
  const scan_record& scan = request.scan;
  if (!fs::is_regular_file(scan.spool_path)) {
    throw std::runtime_error("spooled image is missing");
  }
  // The snapshot taken here is the rule set of this scan, whatever reloads follow.
  scanner::engine engine(limits_, rules_.current());
  scanner::scan_options options;
  options.jobs = scan_threads_;
  options.scan_id = scan.id;
  options.station = scan.station;
  options.image_sha256 = scan.image_sha256;
  options.display_name = scan.filename.empty() ? scan.id + ".img" : scan.filename;
  options.cancel = &request.cancel;
  options.on_progress = request.on_progress;
  report_file out;
  std::error_code ignored;
  if (evidence_) {
    out.evidence_pack = evidence_pack_path_for(scan);
    fs::remove(out.evidence_pack, ignored);  // an earlier attempt's
    const int pack = ::open(out.evidence_pack.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (pack < 0) {
      throw std::system_error(errno, std::generic_category(), out.evidence_pack.string());
    }
    options.evidence = std::make_shared<scanner::evidence_pack>(pack, *evidence_);
  }
  const scanner::report r = engine.scan(fs::path(scan.spool_path), options);
  if (options.evidence) {
    options.evidence->sync();
  }

  // The same file a fenced worker writes: one way from here on.
  out.path = report_path_for(scan);
  out.ruleset_digest = r.ruleset.digest;
  fs::remove(out.path, ignored);  // an earlier attempt's
  const int fd = ::open(out.path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    throw std::system_error(errno, std::generic_category(), out.path.string());
  }
  try {
    const auto written = scanner::write_report_file(fd, r);
    out.size = written.size;
    out.sha256 = written.sha256;
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
  return out;
}

report_file delayed_runner::run(const scan_request& request) {
  const auto until = std::chrono::steady_clock::now() + delay_;
  while (std::chrono::steady_clock::now() < until && !request.cancel.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return inner_.run(request);
}

}  // namespace borderscan::server
