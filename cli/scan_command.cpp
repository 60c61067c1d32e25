// `borderscan scan`: the scanner library, directly, on a local image.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <mutex>
#include <optional>
#include <system_error>

#include "borderscan/sandbox/work_folder.hpp"
#include "borderscan/scanner/engine.hpp"
#include "borderscan/scanner/error.hpp"
#include "borderscan/scanner/report_file.hpp"
#include "client_support.hpp"
#include "commands.hpp"

namespace borderscan::cli {
namespace {

namespace sc = borderscan::scanner;

struct scan_args {
  std::vector<std::string> rules;
  std::vector<std::string> hashsets;
  std::string compiled_rules;
  std::string output = "-";
  unsigned jobs = 0;
  std::vector<std::string> image;
  std::string station;
  std::string min_severity = "medium";
  bool quiet = false;
  sc::limits lim;  // every limit flag is set straight into it
};

int exit_code_for(sc::verdict v) {
  switch (v) {
    case sc::verdict::clean:
      return 0;
    case sc::verdict::flagged:
      return 1;
    case sc::verdict::error:
      return 2;
    case sc::verdict::incomplete:
      return 3;
  }
  return 2;
}

// The summary the kiosk client prints, from the report in hand, with the
// volumes and the first error and limit hit before and after it.
void print_summary(const sc::report& r) {
  report_digest d;
  d.scan_id = r.scan_id;
  d.station = r.station;
  d.image_name = r.image.name + " (" + r.image.format + ")";
  d.image_size = r.image.size;
  d.image_sha256 = r.image.sha256;
  d.verdict = sc::to_string(r.result);
  d.verdict_reason = r.verdict_reason;
  d.score = r.score;
  d.files = r.summary.files;
  d.directories = r.summary.directories;
  d.deleted = r.summary.deleted;
  d.deleted_directories = r.summary.deleted_directories;
  d.flagged_files = r.summary.flagged_files;
  d.errors = r.errors.size();
  for (const auto& l : r.limits_hit) {
    d.limits_hit.insert(l.limit);
  }
  for (const auto& f : r.findings) {
    d.findings.push_back({std::string(sc::to_string(f.level)), f.source + ":" + f.rule, f.path, f.deleted});
  }
  for (const auto& v : r.volumes) {
    std::cerr << "volume " << v.index << "  " << v.scheme << " @" << v.offset << " "
              << printable(v.filesystem ? *v.filesystem : "no file system")
              << (v.label ? " '" + printable(*v.label) + "'" : "") << ", " << v.files << " entries"
              << (v.error ? " (" + printable(*v.error) + ")" : "") << "\n";
  }
  print_report_summary(std::cerr, d);
  if (!r.errors.empty()) {
    std::cerr << "errors    " << r.errors.size() << " (first: " << printable(r.errors.front().message) << ")\n";
  }
}

int run_scan(const scan_args& args) {
  // `--rules A.yar B.yar IMAGE` took both files before --rules took one value
  // per use; now B.yar would be scanned as the image's first segment.
  for (const auto& segment : args.image) {
    const auto ext = std::filesystem::path(segment).extension();
    if (ext == ".yar" || ext == ".yara") {
      std::cerr << "borderscan: " << segment
                << " looks like a YARA rule file, not an image; give each rule file its own --rules\n";
      return 2;
    }
  }
  const auto severity = sc::parse_severity(args.min_severity);
  if (!severity) {
    std::cerr << "borderscan: --flag-severity must be info, low, medium, high or critical\n";
    return 2;
  }
  sc::yara_library yara;
  std::shared_ptr<const sc::rule_set> rules;
  try {
    sc::compiled_rules compiled;
    if (!args.compiled_rules.empty()) {
      compiled = {sc::compiled_rules::mode::cache, args.compiled_rules, {}};
    }
    rules = sc::rule_set::load(sc::rule_sources_for(args.rules, args.hashsets), compiled);
  } catch (const sc::scan_error& e) {
    std::cerr << "borderscan: cannot load rules:\n" << e.what() << "\n";
    return 2;
  }

  sc::limits lim = args.lim;
  lim.flag_threshold = *severity;

  sc::scan_options opts;
  opts.jobs = args.jobs;
  opts.station = args.station;
  // Private to this scan and removed with all it holds when the scan ends: the
  // report-entry spill and scratch copies.
  std::optional<sandbox::work_folder> work;
  try {
    work.emplace(sandbox::work_folder::temporary());
  } catch (const std::exception& e) {
    std::cerr << "borderscan: cannot make a work folder: " << e.what() << "\n";
    return 2;
  }
  opts.work_dir = work->path();
  std::string spill_error;
  opts.spill = sc::file_spill::open_in(work->path(), 0, spill_error);
  if (!opts.spill) {
    std::cerr << "borderscan: report entries stay in memory: " << spill_error << "\n";
  }
  // Bytes, rate and ETA on a terminal (the status line draws nothing elsewhere).
  auto status = std::make_shared<status_line>();
  if (!args.quiet && status->tty()) {
    opts.on_progress = [status, meter = std::make_shared<client::rate_meter>(),
                        guard = std::make_shared<std::mutex>()](const sc::scan_progress& p) {
      const std::lock_guard lock(*guard);
      meter->add(client::rate_meter::clock::now(), p.bytes_done);
      status->show(client::progress_text(p.bytes_done, p.bytes_total, *meter) + "  " + std::to_string(p.files_done) +
                   "/" + std::to_string(p.files_found) + " files");
    };
  }
  std::vector<std::filesystem::path> segments(args.image.begin(), args.image.end());
  const sc::engine eng(lim, rules);
  const sc::report r = eng.scan(segments, opts);
  status->clear();

  if (args.output == "-") {
    sc::write_report(std::cout, r);
    std::cout << "\n" << std::flush;
  } else {
    // The same bytes the daemon's worker stores.
    const int fd = ::open(args.output.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    try {
      if (fd < 0) {
        throw std::system_error(errno, std::generic_category());
      }
      sc::write_report_file(fd, r);
      if (::close(fd) != 0) {
        throw std::system_error(errno, std::generic_category());
      }
    } catch (const std::exception& e) {
      std::cerr << "borderscan: cannot write " << args.output << ": " << e.what() << "\n";
      return 2;
    }
  }
  if (!args.quiet) {
    print_summary(r);
  }
  if (r.result == sc::verdict::error) {
    std::cerr << "borderscan: " << r.verdict_reason << "\n";
  }
  return exit_code_for(r.result);
}

}  // namespace

command_runner add_scan_command(CLI::App& app) {
  auto args = std::make_shared<scan_args>();
  CLI::App* cmd = app.add_subcommand("scan", "Scan a device image offline and print the JSON report");
  // One value per occurrence: a list option that went on eating words would
  // swallow the image (`--rules R.yar stick.img -o out.json`). No ',' delimiter
  // either: paths may contain commas.
  const auto one_per_occurrence = [](CLI::Option* opt) { opt->expected(1)->take_all()->allow_extra_args(false); };
  one_per_occurrence(
      cmd->add_option("--rules", args->rules,
                      "YARA rule file or directory (recursive; *.known-bad.txt / *.known-good.txt inside are hash "
                      "sets), one per --rules: repeat the option for several. Default: the shipped rules/ directory"));
  one_per_occurrence(cmd->add_option("--hashset", args->hashsets,
                                     "Hash-set file, FILE[:known-good|:known-bad] (default known-bad), one per "
                                     "--hashset: repeat the option for several"));
  cmd->add_option("--compiled-rules", args->compiled_rules,
                  "Cache of the compiled YARA rules: used when it was made from the same rule sources, "
                  "(re)written when not");
  cmd->add_option("-o,--output", args->output, "Write the report here ('-' = stdout)");
  cmd->add_option("-j,--jobs", args->jobs, "Worker threads (default: number of cores)");
  cmd->add_option("--station", args->station, "Station name recorded in the report");
  cmd->add_option("--flag-severity", args->min_severity, "Lowest finding severity that flags the image")
      ->capture_default_str();
  cmd->add_flag("--skip-known-good", args->lim.skip_yara_for_known_good,
                "Do not run YARA on files listed in a known-good hash set");
  cmd->add_flag("-q,--quiet", args->quiet, "No summary or progress on stderr");
  // The limits by the names of the daemon's configuration and of limits_hit.
  sc::for_each_limit(args->lim, [&](const sc::limit_field& f, auto& value) {
    std::string names = "--" + std::string(f.name);
    std::replace(names.begin(), names.end(), '_', '-');
    if (f.cli_alias != nullptr) {
      names = std::string(f.cli_alias) + "," + names;
    }
    cmd->add_option(names, value, f.help)->capture_default_str()->check(CLI::Range(f.min, f.max));
  });
  cmd->add_option("image", args->image, "Image file (E01, VHD, VMDK, raw; split raw: first segment or all segments)")
      ->required();
  return [args] { return run_scan(*args); };
}

}  // namespace borderscan::cli
