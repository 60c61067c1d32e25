#pragma once
// Shared helpers for the test suites: where the corpus and fixtures are, a
// scratch directory, running the CLI, and validating reports against
// docs/report-schema.json (every report a test produces goes through it).

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "borderscan/scanner/engine.hpp"

#define BORDERSCAN_REQUIRE_CORPUS()                               \
  if (!::borderscan::test::corpus_available()) {                  \
    GTEST_SKIP() << ::borderscan::test::corpus_missing_message(); \
  }

namespace borderscan::test {

std::filesystem::path source_dir();
// The shared corpus: ../shared/corpus beside the repository, or $BORDERSCAN_CORPUS.
// A clone of the repository alone has none: every test that reads it starts
// with BORDERSCAN_REQUIRE_CORPUS(), has "Corpus" in its name (CTest gives
// those the label `corpus`) and is skipped with a message when it is absent.
std::filesystem::path corpus_dir();
bool corpus_available();
std::string corpus_missing_message();
std::filesystem::path fixture_dir();  // built by tests/data/make-fixtures.sh
// tests/data/README.md "fat-clean.img": a small device on which nothing is flagged.
std::filesystem::path clean_image();
std::filesystem::path rules_dir();  // the shipped rules/

// A fresh directory under the system temp dir ($TMPDIR), removed when
// destroyed unless BORDERSCAN_KEEP_SCRATCH=1.
class scratch_dir {
 public:
  scratch_dir();
  ~scratch_dir();
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// Decompresses a .gz from the corpus into dir; returns the new path.
std::filesystem::path gunzip_to(const std::filesystem::path& gz, const std::filesystem::path& dir);

// Every image of the corpus's hostile/ folder (.gz ones decompressed into
// dir), plus the fuzzer's image on which libtsk once spent minutes (a root
// directory claiming 4 GiB in a 64 KiB ext3).
std::vector<std::filesystem::path> hostile_images(const std::filesystem::path& dir);

// Adds a gtest failure for every schema violation; returns true if valid.
bool validate_report(const nlohmann::json& report);

// The shipped rule set, loaded once per test binary.
std::shared_ptr<const scanner::rule_set> shipped_rules();

// Scans with the engine in-process and validates the report against the schema.
nlohmann::json scan_image(const std::vector<std::filesystem::path>& segments, const scanner::limits& lim = {},
                          std::shared_ptr<const scanner::rule_set> rules = nullptr);
nlohmann::json scan_image(const std::filesystem::path& image, const scanner::limits& lim = {},
                          std::shared_ptr<const scanner::rule_set> rules = nullptr);

struct command_result {
  int exit_code = -1;  // -1: killed by a signal or timeout
  std::string out;     // stdout
  std::string err;     // stderr
};
// Runs a shell command line; stdout and stderr are captured through files.
command_result run_command(const std::string& command_line);
std::string shell_quote(const std::string& s);

// The EICAR test string (stored ROT13-encoded so no source file is itself one).
std::string eicar();

// Entries of a report by (volume, path).
const nlohmann::json* find_file(const nlohmann::json& report, int volume, const std::string& path);
bool has_finding(const nlohmann::json& file, const std::string& rule);

}  // namespace borderscan::test
