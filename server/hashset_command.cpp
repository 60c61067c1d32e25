// borderscand hashset import|list|verify: imports hash sets from the field
// (text, NIST NSRL RDS v3, Project VIC VICS JSON) into the compact files the
// scanner memory-maps, and lists and checks what was imported.
#include "hashset_command.hpp"

#include "admin_commands.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>

#include "borderscan/scanner/error.hpp"
#include "borderscan/scanner/hashset.hpp"

namespace borderscan::server {
namespace fs = std::filesystem;
namespace sc = borderscan::scanner;
namespace {

struct import_args {
  std::string format, kind, name, digests, file;
  std::vector<std::string> categories;
  std::size_t memory_mib = 64;
  bool replace = false;
};

// The folder holds what decides verdicts: owner only, whatever the umask.
fs::path private_hashsets_dir(const server_config& config) {
  const fs::path dir = hashsets_dir(config.storage.data_dir);
  fs::create_directories(dir);
  fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace);
  return dir;
}

std::string with_thousands(std::uint64_t n) {
  std::string s = std::to_string(n);
  for (auto i = static_cast<std::ptrdiff_t>(s.size()) - 3; i > 0; i -= 3) {
    s.insert(static_cast<std::size_t>(i), " ");
  }
  return s;
}

int import_set(const server_config& config, const import_args& a) {
  const auto format = sc::parse_hashset_source(a.format);
  if (!format) {
    std::cerr << "borderscand: --format must be text, nsrl-rds3 or vics\n";
    return 2;
  }
  if (a.kind != "known-good" && a.kind != "known-bad") {
    std::cerr << "borderscand: --kind must be known-good or known-bad\n";
    return 2;
  }
  if (!sc::is_valid_hashset_name(a.name)) {
    std::cerr << "borderscand: --name must be 1 to 64 characters of A-Z a-z 0-9 . _ - (not starting with '.')\n";
    return 2;
  }
  sc::hashset_import_options opt;
  opt.name = a.name;
  opt.kind = a.kind == "known-good" ? sc::hashset_kind::known_good : sc::hashset_kind::known_bad;
  if (a.digests == "all") {
    opt.which = sc::hashset_import_options::digests::all;
  } else if (a.digests == "strongest") {
    opt.which = sc::hashset_import_options::digests::strongest;
  } else if (!a.digests.empty()) {
    std::cerr << "borderscand: --digests must be all or strongest\n";
    return 2;
  }
  if (!a.categories.empty() && *format != sc::hashset_source::vics) {
    std::cerr << "borderscand: --category applies to --format vics only\n";
    return 2;
  }
  opt.categories = a.categories;
  opt.memory_bytes = a.memory_mib << 20;

  const fs::path out = private_hashsets_dir(config) / (a.name + ".bhs");
  const bool exists = fs::exists(out);
  if (exists && !a.replace) {
    std::cerr << "borderscand: a hash set named '" << a.name << "' exists (" << out.string()
              << "); add --replace to replace it\n";
    return 1;
  }
  const auto t0 = std::chrono::steady_clock::now();
  const sc::hashset_import_result r = sc::import_hashset(*format, a.file, out, opt);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto& info = r.written.info;
  char took[32];
  std::snprintf(took, sizeof took, "%.1f", seconds);
  std::cout << (exists ? "replaced" : "imported") << " " << a.kind << " hash set '" << a.name << "' from " << a.format
            << " " << a.file << " in " << took << " s\n"
            << "  entries: " << with_thousands(info.entries()) << " (sha256 " << with_thousands(info.sha256)
            << ", sha1 " << with_thousands(info.sha1) << ", md5 " << with_thousands(info.md5) << ")\n"
            << "  read " << with_thousands(r.records) << " records, " << with_thousands(r.written.duplicates)
            << " duplicate digests merged, " << with_thousands(r.skipped) << " records skipped\n"
            << "  file: " << out.string() << " (" << with_thousands(info.file_size) << " bytes, content sha256 "
            << info.content_sha256 << ")\n"
            << "the daemon uses it from its next start or rules reload (POST /api/v1/rules/reload, SIGHUP)\n";
  audit_locally(config, "hashset_imported",
                {{"name", a.name},
                 {"kind", a.kind},
                 {"format", a.format},
                 {"source", fs::path(a.file).filename().string()},
                 {"entries", info.entries()},
                 {"content_sha256", info.content_sha256},
                 {"replaced", exists}});
  return 0;
}

std::vector<fs::path> set_files(const fs::path& dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return files;
  }
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    // Hidden files are imports in progress (temporary files).
    if (e.is_regular_file() && name.ends_with(".bhs") && !name.starts_with(".")) {
      files.push_back(e.path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

int list_sets(const server_config& config) {
  std::cout << "NAME\tKIND\tSHA256\tSHA1\tMD5\tBYTES\tSOURCE\n";
  int rc = 0;
  for (const auto& file : set_files(hashsets_dir(config.storage.data_dir))) {
    try {
      const auto info = sc::read_compact_hashset_info(file);
      if (!info) {
        throw sc::scan_error(sc::scan_errc::rules_invalid, file.string() + ": not a compact hash set");
      }
      std::cout << info->name << "\t" << sc::to_string(info->kind) << "\t" << info->sha256 << "\t" << info->sha1 << "\t"
                << info->md5 << "\t" << info->file_size << "\t" << info->source_format << ":" << info->source_file
                << "\n";
    } catch (const sc::scan_error& e) {
      std::cout << file.stem().string() << "\tINVALID\t" << e.what() << "\n";
      rc = 1;
    }
  }
  return rc;
}

int verify_sets(const server_config& config, const std::vector<std::string>& names) {
  std::vector<fs::path> files;
  const fs::path dir = hashsets_dir(config.storage.data_dir);
  if (names.empty()) {
    files = set_files(dir);
  } else {
    for (const auto& n : names) {
      if (!sc::is_valid_hashset_name(n) || !fs::exists(dir / (n + ".bhs"))) {
        std::cerr << "borderscand: no imported hash set named '" << n << "'\n";
        return 1;
      }
      files.push_back(dir / (n + ".bhs"));
    }
  }
  int rc = 0;
  for (const auto& file : files) {
    try {
      const bool ok = sc::verify_compact_hashset(file);
      std::cout << file.stem().string() << "\t" << (ok ? "ok" : "CHANGED: content does not match its header's SHA-256")
                << "\n";
      rc = ok ? rc : 1;
    } catch (const sc::scan_error& e) {
      std::cout << file.stem().string() << "\tINVALID\t" << e.what() << "\n";
      rc = 1;
    }
  }
  return rc;
}

}  // namespace

fs::path hashsets_dir(const fs::path& data_dir) {
  return data_dir / "hashsets";
}

std::vector<std::string> imported_hashsets(const fs::path& data_dir) {
  std::vector<std::string> out;
  for (const auto& file : set_files(hashsets_dir(data_dir))) {
    const auto info = sc::read_compact_hashset_info(file);
    if (!info) {
      throw sc::scan_error(sc::scan_errc::rules_invalid, file.string() + ": not a compact hash set");
    }
    out.push_back(file.string() + ":" + sc::to_string(info->kind));
  }
  return out;
}

hashset_commands add_hashset_commands(CLI::App& app) {
  auto* hashset = app.add_subcommand("hashset", "import and list hash sets (NSRL RDS v3, Project VIC VICS, text)");
  hashset->require_subcommand(1);
  auto* import = hashset->add_subcommand(
      "import", "import FILE into <data_dir>/hashsets/NAME.bhs (replaced atomically), printing the entry counts");
  auto a = std::make_shared<import_args>();
  import->add_option("--format", a->format, "text, nsrl-rds3 (NIST NSRL RDS v3 SQLite) or vics (Project VIC JSON)")
      ->required();
  import->add_option("--kind", a->kind, "known-good (e.g. NSRL) or known-bad (e.g. VICS)")->required();
  import->add_option("--name", a->name, "the set's name, shown in findings (A-Z a-z 0-9 . _ -)")->required();
  import->add_option("--digests", a->digests,
                     "all: every digest of a record; strongest: SHA-256, else SHA-1, else MD5. Default: strongest "
                     "for nsrl-rds3, all otherwise");
  import->add_option("--category", a->categories, "vics: import only media of this Category (repeatable)");
  import->add_option("--memory-mib", a->memory_mib, "sort buffer in MiB (the import's memory is about twice this)")
      ->capture_default_str()
      ->check(CLI::Range(8, 65536));
  import->add_flag("--replace", a->replace, "replace a set of the same name");
  import->add_option("FILE", a->file, "the hash set to import")->required()->check(CLI::ExistingFile);
  auto* list = hashset->add_subcommand("list", "list imported hash sets and their entry counts");
  auto* verify = hashset->add_subcommand("verify", "re-hash imported sets and compare with their headers");
  auto verify_names = std::make_shared<std::vector<std::string>>();
  verify->add_option("NAME", *verify_names, "set names (default: all)");
  for (auto* sub : {hashset, import, list, verify}) {
    sub->fallthrough();  // --config and --data-dir may follow the subcommand
  }
  hashset_commands out;
  out.run = [=](const server_config& config) -> std::optional<int> {
    if (import->parsed()) {
      return import_set(config, *a);
    }
    if (list->parsed()) {
      return list_sets(config);
    }
    if (verify->parsed()) {
      return verify_sets(config, *verify_names);
    }
    return std::nullopt;
  };
  return out;
}

}  // namespace borderscan::server
