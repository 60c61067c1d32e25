#pragma once
// Shared set-up for the fuzz targets: rules compiled once, tight limits so a
// single input cannot run long, and a sink that drops what it is given.

#include <algorithm>
#include <cstring>
#include <memory>

#include "borderscan/scanner/archive.hpp"
#include "borderscan/scanner/object_scanner.hpp"
#include "borderscan/scanner/rule_set.hpp"

namespace borderscan::fuzz {

struct fuzz_environment {
  scanner::yara_library yara;
  scanner::limits lim = [] {
    scanner::limits l;
    l.max_depth = 3;
    l.max_members = 200;
    l.max_total_expanded_bytes = 64 << 20;
    l.member_memory_bytes = 8 << 20;
    l.yara_timeout_seconds = 5;
    return l;
  }();
  std::shared_ptr<const scanner::rule_set> rules = [] {
    scanner::rule_sources src;
    src.rule_paths.push_back(scanner::default_rules_dir());
    return scanner::rule_set::load(src);
  }();
  scanner::object_scanner scanner{lim, rules};
  scanner::expansion_sink sink = [] {
    scanner::expansion_sink s;
    s.member = [](scanner::file_entry&&) {};
    s.error = [](scanner::error_entry&&) {};
    s.limit = [](scanner::limit_hit&&) {};
    s.stop = [] { return false; };
    s.on_bytes = [](std::uint64_t) {};
    return s;
  }();
};

inline fuzz_environment& environment() {
  static fuzz_environment env;
  return env;
}

}  // namespace borderscan::fuzz
