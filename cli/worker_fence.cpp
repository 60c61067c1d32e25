#include "worker_fence.hpp"

#include "borderscan/scanner/error.hpp"
#include "borderscan/scanner/rule_set.hpp"

namespace borderscan::cli {

namespace sc = borderscan::scanner;
namespace fs = std::filesystem;

namespace {

// The named image files and, for a single one, the files beside it that may be
// further segments (image.001 -> image.002, image.E01 -> image.E02): libtsk and
// libewf look for those by name. Chosen by name only, so nothing of the
// untrusted image is parsed before the fence.
std::vector<fs::path> image_files(const std::vector<std::string>& named) {
  std::vector<fs::path> files(named.begin(), named.end());
  if (named.size() != 1) {
    return files;
  }
  const fs::path first = fs::absolute(named.front());
  const std::string same_stem = first.stem().string() + ".";
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(first.parent_path(), ec)) {
    if (entry.path().filename().string().starts_with(same_stem) && entry.path() != first) {
      files.push_back(entry.path());
    }
  }
  return files;
}

}  // namespace

sandbox::file_access scan_file_access(const protocol::worker_invocation& args) {
  sandbox::file_access access;
  access.read_only = sandbox::system_read_only_paths();
  for (auto& f : image_files(args.image)) {
    access.read_only.push_back(std::move(f));
  }
  // Rules load after the fence: their sources, hash sets and the compiled file stay readable.
  try {
    const sc::rule_sources sources = sc::rule_sources_for(args.rule_paths, args.hashsets);
    access.read_only.insert(access.read_only.end(), sources.rule_paths.begin(), sources.rule_paths.end());
    for (const auto& [path, kind] : sources.hashsets) {
      access.read_only.push_back(path);
    }
  } catch (const sc::scan_error&) {
    // A malformed --hashset: loading the rules after the fence says so (rules_invalid).
  }
  if (!args.compiled_rules.empty()) {
    access.read_only.emplace_back(args.compiled_rules);
  }
  access.read_write = args.work_dir;
  return access;
}

sandbox::landlock_status install_fence(const protocol::worker_invocation& args, int scratch_dir_fd) {
  sandbox::resource_limits rl;
#if defined(__SANITIZE_ADDRESS__)
  // AddressSanitizer reserves terabytes of address space: RLIMIT_AS would stop it cold.
  rl.address_space_bytes = 0;
#else
  rl.address_space_bytes = args.memory_limit;
#endif
  rl.cpu_seconds = args.cpu_limit;
  sandbox::apply_limits(rl);
  if (args.no_seccomp) {
    return {.abi = 0, .enforced = false, .reason = "--no-seccomp: no fence (debugging only)"};
  }
  sandbox::landlock_status landlock = sandbox::restrict_file_access(scan_file_access(args));
  sandbox::install_filter({.scratch_dir_fd = scratch_dir_fd});
  return landlock;
}

}  // namespace borderscan::cli
