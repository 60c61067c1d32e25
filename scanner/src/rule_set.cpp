#include "borderscan/scanner/rule_set.hpp"

#include <yara.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <cctype>
#include <fstream>
#include <iterator>
#include <optional>

#include "borderscan/scanner/atomic_file.hpp"
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

void rule_set::yara_rules_deleter::operator()(YR_RULES* r) const noexcept {
  yr_rules_destroy(r);
}

rule_set::~rule_set() = default;

namespace {

using yara_rules_ptr = std::unique_ptr<YR_RULES, detail::c_deleter<&yr_rules_destroy>>;

// The rule files of a rule set, in the order that defines its digest.
struct rule_files {
  std::vector<std::pair<std::string, fs::path>> yara;  // label, path
  std::vector<std::tuple<std::string, fs::path, hashset_kind>> hashsets;
};

rule_files collect(const rule_sources& sources) {
  // Sorted, so the digest does not depend on directory order.
  rule_files files;
  for (const auto& root : sources.rule_paths) {
    std::error_code ec;
    if (fs::is_directory(root, ec)) {
      std::vector<fs::path> found;
      // An unreadable folder is an error, never skipped: a rule set silently
      // missing its rules would pass every image as clean.
      for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::recursive_directory_iterator();
           it.increment(ec)) {
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
          files.yara.emplace_back(label, p);
        } else if (auto kind = hashset_kind_of(p)) {
          files.hashsets.emplace_back(label, p, *kind);
        }
      }
    } else if (fs::is_regular_file(root, ec)) {
      files.yara.emplace_back(root.filename().string(), root);
    } else {
      throw scan_error(scan_errc::rules_invalid, root.string() + ": no such rule file or directory");
    }
  }
  for (const auto& [path, kind] : sources.hashsets) {
    files.hashsets.emplace_back(path.filename().string(), path, kind);
  }
  return files;
}

yara_rules_ptr compile(const std::vector<std::pair<std::string, fs::path>>& sources) {
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
  for (const auto& [label, path] : sources) {
    file_ptr f(std::fopen(path.c_str(), "rb"));
    if (!f) {
      throw scan_error(scan_errc::rules_invalid, path.string() + ": cannot open: " + std::strerror(errno));
    }
    // One namespace for all files: rules may refer to rules in other files.
    // By file (not by string) so that `include` resolves beside the file.
    if (yr_compiler_add_file(compiler.get(), f.get(), nullptr, path.c_str()) > 0) {
      // A compiler that failed cannot take more sources: report this file's errors.
      std::string text;
      for (const auto& e : messages.errors) {
        text += (text.empty() ? "" : "\n") + e;
      }
      throw scan_error(scan_errc::rules_invalid, text);
    }
  }
  YR_RULES* rules = nullptr;
  if (yr_compiler_get_rules(compiler.get(), &rules) != ERROR_SUCCESS) {
    throw scan_error(scan_errc::rules_invalid, "YARA rules could not be finalised (out of memory?)");
  }
  return yara_rules_ptr(rules);
}

// A compiled-rules file: this header line, the rule-set digest line, then
// libyara's own serialisation (yr_rules_save_stream).
constexpr std::string_view compiled_magic = "borderscan compiled YARA rules 1\n";

struct compiled_file {
  std::string digest;  // the rule set it was made from
  std::string yara;    // libyara's bytes
  std::string sha256;  // of the whole file
};

// Reads a compiled-rules file whole (a few MB at most), so that what is
// checked is exactly what is loaded. nullopt when it is missing or not one.
std::optional<compiled_file> read_compiled(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return std::nullopt;
  }
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad() || !text.starts_with(compiled_magic)) {
    return std::nullopt;
  }
  const auto digest_end = text.find('\n', compiled_magic.size());
  if (digest_end == std::string::npos) {
    return std::nullopt;
  }
  compiled_file out;
  out.digest = text.substr(compiled_magic.size(), digest_end - compiled_magic.size());
  out.yara = text.substr(digest_end + 1);
  out.sha256 = sha256_hex(text);
  return out;
}

struct memory_stream {
  std::string_view data;
  std::size_t pos = 0;
  static size_t read(void* ptr, size_t size, size_t count, void* user_data) {
    auto* self = static_cast<memory_stream*>(user_data);
    if (size == 0 || self->pos + size * count > self->data.size()) {
      return 0;
    }
    std::memcpy(ptr, self->data.data() + self->pos, size * count);
    self->pos += size * count;
    return count;
  }
};

yara_rules_ptr load_yara_bytes(std::string_view bytes) {
  memory_stream source{bytes};
  YR_STREAM stream{};
  stream.user_data = &source;
  stream.read = &memory_stream::read;
  YR_RULES* rules = nullptr;
  if (yr_rules_load_stream(&stream, &rules) != ERROR_SUCCESS) {
    return nullptr;
  }
  return yara_rules_ptr(rules);
}

struct obtained_yara {
  yara_rules_ptr rules;
  bool compiled_here = false;
};

// The YARA rules of a rule set with digest `digest`, as `compiled` asks.
obtained_yara obtain_yara(const std::vector<std::pair<std::string, fs::path>>& sources, const std::string& digest,
                          const compiled_rules& compiled) {
  if (compiled.how == compiled_rules::mode::compile) {
    return {compile(sources), true};
  }
  const auto file = read_compiled(compiled.file);
  if (compiled.how == compiled_rules::mode::require) {
    if (!file) {
      throw scan_error(scan_errc::rules_mismatch, compiled.file.string() + ": no compiled rules there");
    }
    if (file->sha256 != compiled.sha256) {
      throw scan_error(scan_errc::rules_mismatch, compiled.file.string() +
                                                      ": compiled rules changed since written (sha256 " + file->sha256 +
                                                      ", expected " + compiled.sha256 + ")");
    }
    if (file->digest != digest) {
      throw scan_error(scan_errc::rules_mismatch, compiled.file.string() + ": compiled for rule set " + file->digest +
                                                      ", but the rule sources are now " + digest);
    }
    auto rules = load_yara_bytes(file->yara);
    if (!rules) {
      throw scan_error(scan_errc::rules_mismatch,
                       compiled.file.string() + ": libyara cannot load these compiled rules");
    }
    return {std::move(rules), false};
  }
  // A cache: anything unusable is rebuilt.
  if (file && file->digest == digest) {
    if (auto rules = load_yara_bytes(file->yara)) {
      return {std::move(rules), false};
    }
  }
  return {compile(sources), true};
}

size_t write_to_string(const void* ptr, size_t size, size_t count, void* user_data) {
  static_cast<std::string*>(user_data)->append(static_cast<const char*>(ptr), size * count);
  return count;
}

}  // namespace

std::shared_ptr<const rule_set> rule_set::load(const rule_sources& sources, const compiled_rules& compiled) {
  const rule_files files = collect(sources);
  std::shared_ptr<rule_set> set(new rule_set());
  // The digest covers every source's label and bytes, YARA first, then the
  // hash sets: the same whether the YARA part is compiled here or loaded.
  sha256_hasher digest;
  for (const auto& [label, path] : files.yara) {
    std::string text;
    digest_file(digest, "yara:" + label, path, set->uses_externals_ ? nullptr : &text);
    set->uses_externals_ = set->uses_externals_ || detail::yara_source_mentions_external(text);
    set->info_.yara_files.push_back(label);
  }
  for (const auto& [label, path, kind] : files.hashsets) {
    const std::string tag = std::string("hashset:") + to_string(kind) + ":" + label;
    set->hashsets_.load(path, kind);
    // A compact set counts by its header, which holds the SHA-256 of all the
    // rest: 512 bytes instead of re-reading gigabytes at every load. Taken
    // from the loaded set, so it describes exactly the mapped file.
    if (const std::string& header = set->hashsets_.sets().back().fingerprint; !header.empty()) {
      digest.update(tag.data(), tag.size() + 1);
      digest.update(header.data(), header.size());
    } else {
      digest_file(digest, tag, path);
    }
  }
  set->hashsets_.seal();
  for (const auto& s : set->hashsets_.sets()) {
    set->info_.hashsets.push_back({s.name, to_string(s.kind), s.entries});
  }
  set->info_.digest = "sha256:" + to_hex(digest.finish());

  if (!files.yara.empty()) {
    obtained_yara yara = obtain_yara(files.yara, set->info_.digest, compiled);
    set->yara_.reset(yara.rules.release());
    if (compiled.how == compiled_rules::mode::cache && yara.compiled_here) {
      set->save_compiled(compiled.file);
    }
    const YR_RULE* rule = nullptr;
    yr_rules_foreach(set->yara_.get(), rule) {
      ++set->info_.yara_rules;
    }
  }
  return set;
}

std::string rule_set::save_compiled(const fs::path& file) const {
  std::string bytes(compiled_magic);
  bytes += info_.digest + "\n";
  if (yara_) {
    YR_STREAM stream{};
    stream.user_data = &bytes;
    stream.write = &write_to_string;
    if (yr_rules_save_stream(yara_.get(), &stream) != ERROR_SUCCESS) {
      throw scan_error(scan_errc::internal, file.string() + ": libyara cannot serialise the rules");
    }
  }
  try {
    write_file_atomically(file, bytes);
  } catch (const std::system_error& e) {
    throw scan_error(scan_errc::internal, e.what());
  }
  return sha256_hex(bytes);
}

rule_sources rule_sources_for(const std::vector<std::string>& rule_paths, const std::vector<std::string>& hashsets) {
  rule_sources sources;
  for (const auto& p : rule_paths) {
    sources.rule_paths.emplace_back(p);
  }
  if (sources.rule_paths.empty()) {
    sources.rule_paths.push_back(default_rules_dir());
  }
  for (const auto& h : hashsets) {
    sources.hashsets.push_back(parse_hashset_arg(h));
  }
  return sources;
}

fs::path default_rules_dir() {
  if (const char* env = std::getenv("BORDERSCAN_RULES"); env != nullptr && *env != '\0') {
    return env;
  }
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path installed = (exe.parent_path() / BORDERSCAN_DATA_FROM_BIN / "rules").lexically_normal();
    if (fs::is_directory(installed, ec)) {
      return installed;
    }
  }
  return BORDERSCAN_SOURCE_RULES_DIR;
}

}  // namespace borderscan::scanner
