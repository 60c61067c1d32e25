#include "borderscan/scanner/rule_set.hpp"

#include <yara.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <cctype>
#include <fstream>
#include <iterator>
#include <unistd.h>

#include "borderscan/scanner/digest.hpp"
#include "borderscan/scanner/error.hpp"
#include "borderscan/scanner/text.hpp"
#include "c_handle.hpp"
#include "digest.hpp"

namespace borderscan::scanner {
namespace fs = std::filesystem;
namespace {

using compiler_ptr = std::unique_ptr<YR_COMPILER, detail::c_deleter<&yr_compiler_destroy>>;
using file_ptr = std::unique_ptr<FILE, detail::c_deleter<&std::fclose>>;

// Externals every rule may use; the object scanner sets them per file.
constexpr const char* string_externals[] = {"filename", "filepath", "extension", "filetype", "owner"};

bool is_yara_source(const fs::path& p) {
  const auto ext = p.extension().string();
  return ext == ".yar" || ext == ".yara";
}

std::optional<hashset_kind> hashset_kind_of(const fs::path& p) {
  const auto name = p.filename().string();
  if (name.ends_with(".known-bad.txt")) return hashset_kind::known_bad;
  if (name.ends_with(".known-good.txt")) return hashset_kind::known_good;
  return std::nullopt;
}

struct compile_messages {
  std::vector<std::string> errors;
  std::vector<std::string> warnings;
};

void on_compiler_message(int error_level, const char* file_name, int line_number, const YR_RULE* /*rule*/,
                         const char* message, void* user_data) {
  auto* out = static_cast<compile_messages*>(user_data);
  std::string text = std::string(file_name ? file_name : "<rules>") + ":" + std::to_string(line_number) + ": " +
                     (message ? message : "");
  (error_level == YARA_ERROR_LEVEL_ERROR ? out->errors : out->warnings).push_back(std::move(text));
}

bool is_ident_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
}

}  // namespace

namespace detail {

// A lexical check, on the safe side: it skips only what cannot be a reference
// to an external variable, and answers "yes" whenever in doubt.
//  - comments (// and /* */), text strings ("..." with escapes) and regular
//    expressions (/.../: YARA has no '/' operator, division is '\');
//  - identifiers after '$', '#', '@' or '!' (string identifiers) and after a
//    single '.' (a module or structure field, e.g. pe.owner);
//  - identifiers followed by a single '=' (meta keys such as `filetype = "PE"`:
//    a condition has no assignment).
// Everything else named like an external counts, including rule names, tags
// and loop variables. An `include` counts too: the included file is not read.
bool yara_source_mentions_external(std::string_view text) {
  // Most files never spell any of the names (nor "include"): no need to lex them.
  const bool spelled = std::any_of(std::begin(string_externals), std::end(string_externals),
                                   [&](const char* e) { return text.find(e) != std::string_view::npos; }) ||
                       text.find("include") != std::string_view::npos;
  if (!spelled) {
    return false;
  }
  const std::size_t n = text.size();
  std::size_t i = 0;
  auto prev_significant = [&](std::size_t pos) -> std::size_t {  // index of the last non-space before pos, or npos
    while (pos > 0) {
      --pos;
      if (!std::isspace(static_cast<unsigned char>(text[pos]))) {
        return pos;
      }
    }
    return std::string_view::npos;
  };
  while (i < n) {
    const char c = text[i];
    if (c == '/' && i + 1 < n && text[i + 1] == '/') {
      while (i < n && text[i] != '\n') ++i;
    } else if (c == '/' && i + 1 < n && text[i + 1] == '*') {
      const auto end = text.find("*/", i + 2);
      i = end == std::string_view::npos ? n : end + 2;
    } else if (c == '"' || c == '/') {
      // A text string or a regular expression: up to the closing quote or
      // slash that is not escaped. Neither spans lines.
      ++i;
      while (i < n && text[i] != c && text[i] != '\n') {
        i += text[i] == '\\' && i + 1 < n ? 2 : 1;
      }
      ++i;
    } else if (is_ident_char(c) && !std::isdigit(static_cast<unsigned char>(c))) {
      const std::size_t start = i;
      while (i < n && is_ident_char(text[i])) ++i;
      const std::string_view word = text.substr(start, i - start);
      if (start > 0 && std::strchr("$#@!", text[start - 1]) != nullptr) {
        continue;  // $filename, #filename, ...: a string identifier
      }
      if (word == "include") {
        return true;
      }
      const bool external = std::any_of(std::begin(string_externals), std::end(string_externals),
                                        [&](const char* e) { return word == e; });
      if (!external) {
        continue;
      }
      const std::size_t before = prev_significant(start);
      if (before != std::string_view::npos && text[before] == '.' && (before == 0 || text[before - 1] != '.')) {
        continue;  // module.field
      }
      std::size_t after = i;
      while (after < n && std::isspace(static_cast<unsigned char>(text[after]))) ++after;
      if (after < n && text[after] == '=' && (after + 1 >= n || text[after + 1] != '=')) {
        continue;  // meta key
      }
      return true;
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      while (i < n && is_ident_char(text[i])) ++i;  // numbers such as 10MB or 0x4d5a
    } else {
      ++i;
    }
  }
  return false;
}

}  // namespace detail

namespace {

// Adds a file's path and bytes to the rule-set digest. If text is given, the
// bytes are also kept there.
void digest_file(sha256_hasher& h, const std::string& label, const fs::path& file, std::string* text = nullptr) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    throw scan_error(scan_errc::rules_invalid, file.string() + ": cannot read");
  }
  h.update(std::as_bytes(std::span(label.data(), label.size() + 1)));
  std::vector<char> buf(1 << 16);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const auto n = static_cast<std::size_t>(in.gcount());
    h.update(std::as_bytes(std::span(buf.data(), n)));
    if (text != nullptr) {
      text->append(buf.data(), n);
    }
  }
}

}  // namespace

yara_library::yara_library() {
  if (const int rc = yr_initialize(); rc != ERROR_SUCCESS) {
    throw scan_error(scan_errc::internal, "yr_initialize failed with code " + std::to_string(rc));
  }
}

yara_library::~yara_library() {
  yr_finalize();
}

rule_set::~rule_set() {
  if (yara_ != nullptr) {
    yr_rules_destroy(yara_);
  }
}

std::shared_ptr<const rule_set> rule_set::load(const rule_sources& sources) {
  // Collect sources first, sorted, so the digest does not depend on directory order.
  std::vector<std::pair<std::string, fs::path>> yara_files;  // label, path
  std::vector<std::tuple<std::string, fs::path, hashset_kind>> hash_files;
  for (const auto& root : sources.rule_paths) {
    std::error_code ec;
    if (fs::is_directory(root, ec)) {
      std::vector<fs::path> found;
      for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::skip_permission_denied, ec);
           !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (it->is_regular_file(ec)) {
          found.push_back(it->path());
        }
      }
      if (ec) {
        throw scan_error(scan_errc::rules_invalid, root.string() + ": " + ec.message());
      }
      std::sort(found.begin(), found.end());
      for (const auto& p : found) {
        const std::string label = fs::relative(p, root).generic_string();
        if (is_yara_source(p)) {
          yara_files.emplace_back(label, p);
        } else if (auto kind = hashset_kind_of(p)) {
          hash_files.emplace_back(label, p, *kind);
        }
      }
    } else if (fs::is_regular_file(root, ec)) {
      yara_files.emplace_back(root.filename().string(), root);
    } else {
      throw scan_error(scan_errc::rules_invalid, root.string() + ": no such rule file or directory");
    }
  }
  for (const auto& [path, kind] : sources.hashsets) {
    hash_files.emplace_back(path.filename().string(), path, kind);
  }

  std::shared_ptr<rule_set> set(new rule_set());
  sha256_hasher digest;

  if (!yara_files.empty()) {
    YR_COMPILER* raw = nullptr;
    if (yr_compiler_create(&raw) != ERROR_SUCCESS) {
      throw scan_error(scan_errc::internal, "yr_compiler_create failed");
    }
    compiler_ptr compiler(raw);
    compile_messages messages;
    yr_compiler_set_callback(compiler.get(), on_compiler_message, &messages);
    for (const char* name : string_externals) {
      yr_compiler_define_string_variable(compiler.get(), name, "");
    }
    for (const auto& [label, path] : yara_files) {
      std::string text;
      digest_file(digest, "yara:" + label, path, set->uses_externals_ ? nullptr : &text);
      set->uses_externals_ = set->uses_externals_ || detail::yara_source_mentions_external(text);
      file_ptr f(std::fopen(path.c_str(), "rb"));
      if (!f) {
        throw scan_error(scan_errc::rules_invalid, path.string() + ": cannot open: " + std::strerror(errno));
      }
      // One namespace for all files: rules may refer to rules in other files.
      const int errors = yr_compiler_add_file(compiler.get(), f.get(), nullptr, path.c_str());
      if (errors > 0) {
        // A compiler that failed cannot take more sources: report this file's errors.
        std::string text;
        for (const auto& e : messages.errors) {
          text += (text.empty() ? "" : "\n") + e;
        }
        throw scan_error(scan_errc::rules_invalid, text);
      }
      set->info_.yara_files.push_back(label);
    }
    YR_RULES* rules = nullptr;
    if (yr_compiler_get_rules(compiler.get(), &rules) != ERROR_SUCCESS) {
      throw scan_error(scan_errc::rules_invalid, "YARA rules could not be finalised (out of memory?)");
    }
    set->yara_ = rules;
    const YR_RULE* rule = nullptr;
    yr_rules_foreach(rules, rule) {
      ++set->info_.yara_rules;
    }
  }

  for (const auto& [label, path, kind] : hash_files) {
    digest_file(digest, std::string("hashset:") + to_string(kind) + ":" + label, path);
    set->hashsets_.load(path, kind);
  }
  set->hashsets_.seal();
  for (const auto& s : set->hashsets_.sets()) {
    set->info_.hashsets.push_back({s.name, to_string(s.kind), s.entries});
  }
  const auto d = digest.finish();
  set->info_.digest = "sha256:" + to_hex(d);
  return set;
}

fs::path default_rules_dir() {
  if (const char* env = std::getenv("BORDERSCAN_RULES"); env != nullptr && *env != '\0') {
    return env;
  }
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path installed = exe.parent_path().parent_path() / "share" / "borderscan" / "rules";
    if (fs::is_directory(installed, ec)) {
      return installed;
    }
  }
  return BORDERSCAN_SOURCE_RULES_DIR;
}

}  // namespace borderscan::scanner
