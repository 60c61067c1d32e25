#include "support/test_support.hpp"

#include <gtest/gtest.h>
#include <unistd.h>
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>

#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validator.hpp>

namespace borderscan::test {
namespace fs = std::filesystem;

fs::path source_dir() {
  return BORDERSCAN_SOURCE_DIR;
}

fs::path corpus_dir() {
  const char* env = std::getenv("BORDERSCAN_CORPUS");
  return env != nullptr && *env != '\0' ? fs::path(env) : fs::path(BORDERSCAN_DEFAULT_CORPUS);
}

bool corpus_available() {
  std::error_code ec;
  return fs::is_directory(corpus_dir() / "images", ec) && fs::is_directory(corpus_dir() / "hostile", ec);
}

std::string corpus_missing_message() {
  return "shared corpus not found at " + corpus_dir().string() +
         " (../shared/corpus beside the repository, or set BORDERSCAN_CORPUS): skipped";
}

fs::path fixture_dir() {
  fs::path dir = BORDERSCAN_FIXTURE_DIR;
  if (!fs::exists(dir / "gpt-two-volumes.img")) {
    ADD_FAILURE() << "fixture images missing in " << dir << " (ctest runs make_fixtures first)";
  }
  return dir;
}

fs::path clean_image() {
  return fixture_dir() / "fat-clean.img";
}

fs::path rules_dir() {
  return source_dir() / "rules";
}

scratch_dir::scratch_dir() {
  std::random_device rd;
  for (int attempt = 0; attempt < 100; ++attempt) {
    fs::path p = fs::temp_directory_path() / ("borderscan-test-" + std::to_string(rd()));
    std::error_code ec;
    if (fs::create_directory(p, ec)) {
      path_ = p;
      return;
    }
  }
  throw std::runtime_error("cannot create a scratch directory");
}

scratch_dir::~scratch_dir() {
  // BORDERSCAN_KEEP_SCRATCH=1 keeps what the tests built (images to scan again,
  // e.g. with bench/compare-reports.sh).
  if (const char* keep = std::getenv("BORDERSCAN_KEEP_SCRATCH"); keep != nullptr && std::string(keep) == "1") {
    return;
  }
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

fs::path gunzip_to(const fs::path& gz, const fs::path& dir) {
  fs::path out = dir / gz.stem();
  const std::string cmd = "gzip -dc " + shell_quote(gz.string()) + " > " + shell_quote(out.string());
  if (std::system(cmd.c_str()) != 0) {
    throw std::runtime_error("gunzip failed: " + gz.string());
  }
  return out;
}

std::vector<fs::path> hostile_images(const fs::path& dir) {
  std::vector<fs::path> images;
  for (const auto& e : fs::directory_iterator(corpus_dir() / "hostile")) {
    const auto name = e.path().filename().string();
    if (name.ends_with(".img")) {
      images.push_back(e.path());
    } else if (name.ends_with(".img.gz")) {
      images.push_back(gunzip_to(e.path(), dir));
    }
  }
  images.push_back(source_dir() / "tests" / "fuzz" / "corpus" / "image" / "regress-ext3-root-claims-4gib.img");
  return images;
}

namespace {

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

const valijson::Schema& report_schema() {
  static valijson::Schema schema;
  static std::once_flag once;
  std::call_once(once, [] {
    // BORDERSCAN_REPORT_SCHEMA lets a developer try a schema change before it lands.
    const char* env = std::getenv("BORDERSCAN_REPORT_SCHEMA");
    const fs::path path = env != nullptr && *env != '\0' ? fs::path(env) : source_dir() / "docs" / "report-schema.json";
    const nlohmann::json doc = nlohmann::json::parse(read_file(path));
    valijson::SchemaParser parser;
    valijson::adapters::NlohmannJsonAdapter adapter(doc);
    parser.populateSchema(adapter, schema);
  });
  return schema;
}

}  // namespace

bool validate_report(const nlohmann::json& report) {
  valijson::Validator validator;
  valijson::ValidationResults results;
  valijson::adapters::NlohmannJsonAdapter adapter(report);
  if (validator.validate(report_schema(), adapter, &results)) {
    return true;
  }
  valijson::ValidationResults::Error error;
  int shown = 0;
  while (results.popError(error) && shown++ < 20) {
    std::string where;
    for (const auto& c : error.context) {
      where += c;
    }
    ADD_FAILURE() << "report violates docs/report-schema.json at " << where << ": " << error.description;
  }
  return false;
}

std::shared_ptr<const scanner::rule_set> shipped_rules() {
  static scanner::yara_library yara;
  static std::shared_ptr<const scanner::rule_set> rules = [] {
    scanner::rule_sources src;
    src.rule_paths.push_back(rules_dir());
    return scanner::rule_set::load(src);
  }();
  return rules;
}

nlohmann::json scan_image(const std::vector<fs::path>& segments, const scanner::limits& lim,
                          std::shared_ptr<const scanner::rule_set> rules) {
  const scanner::engine eng(lim, rules ? rules : shipped_rules());
  scanner::scan_options opts;
  opts.jobs = 2;
  nlohmann::json j = eng.scan(segments, opts);
  validate_report(j);
  return j;
}

nlohmann::json scan_image(const fs::path& image, const scanner::limits& lim,
                          std::shared_ptr<const scanner::rule_set> rules) {
  return scan_image(std::vector<fs::path>{image}, lim, std::move(rules));
}

command_result run_command(const std::string& command_line) {
  scratch_dir tmp;
  const fs::path out = tmp / "stdout", err = tmp / "stderr";
  const std::string full =
      "( " + command_line + " ) > " + shell_quote(out.string()) + " 2> " + shell_quote(err.string());
  const int status = std::system(full.c_str());
  command_result r;
  if (status != -1 && WIFEXITED(status)) {
    r.exit_code = WEXITSTATUS(status);
  }
  r.out = read_file(out);
  r.err = read_file(err);
  return r;
}

std::string eicar() {
  std::string s = "K5B!C%@NC[4\\CMK54(C^)7PP)7}$RVPNE-FGNAQNEQ-NAGVIVEHF-GRFG-SVYR!$U+U*";
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>('A' + (c - 'A' + 13) % 26);
    }
  }
  return s;
}

const nlohmann::json* find_file(const nlohmann::json& report, int volume, const std::string& path) {
  for (const auto& f : report.at("files")) {
    if (f.at("volume") == volume && f.at("path") == path) {
      return &f;
    }
  }
  return nullptr;
}

bool has_finding(const nlohmann::json& file, const std::string& rule) {
  for (const auto& f : file.at("findings")) {
    if (f.at("rule") == rule) {
      return true;
    }
  }
  return false;
}

}  // namespace borderscan::test
