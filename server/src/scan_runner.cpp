#include "borderscan/server/scan_runner.hpp"

#include <filesystem>
#include <stdexcept>
#include <thread>

namespace borderscan::server {

in_process_runner::in_process_runner(const scanner::limits& lim, const rule_holder& rules, unsigned scan_threads)
    : limits_(lim), rules_(rules), scan_threads_(scan_threads) {}

scanner::report in_process_runner::run(const scan_request& request) {
  const scan_record& scan = request.scan;
  if (!std::filesystem::is_regular_file(scan.spool_path)) {
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
  return engine.scan(std::filesystem::path(scan.spool_path), options);
}

scanner::report delayed_runner::run(const scan_request& request) {
  const auto until = std::chrono::steady_clock::now() + delay_;
  while (std::chrono::steady_clock::now() < until && !request.cancel.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return inner_.run(request);
}

}  // namespace borderscan::server
