// Measures and compares libmagic configurations on real content, outside the
// scanner (issue #12). Not part of the build: compile it by hand, from the
// repository's root, against the classifier's source:
//
//   g++ -O2 -g -std=c++20 -Iscanner/include -Iscanner/src bench/magic-harness.cpp
//       scanner/src/magic_classifier.cpp scanner/src/error.cpp -lmagic -o /tmp/magic-harness
//
//   magic-harness [options] PATH...     (files, or folders walked recursively)
//     --bytes N        prefix handed to libmagic (default 65536, the scanner's limits.magic_bytes)
//     --config NAME    `shipped` (default): the classifier as built (magic_classifier::classify);
//                      `reference`: the untrimmed configuration, spelled out here with
//                      magic_open/magic_buffer (what the classifier did before issue #12);
//                      `custom`: the reference plus --add-flags / --param, to try a lever
//     --add-flags LIST comma list of MAGIC_NO_CHECK_* names (tar, json, csv, cdf, elf, encoding,
//                      tokens, text, soft, apptype) added to every pass of `custom`
//     --param K=V      MAGIC_PARAM_* for `custom` (regex_max, encoding_max, bytes_max, indir_max,
//                      name_max, elf_phnum_max, elf_shnum_max, elf_notes_max); repeatable
//     --dump           print "path<TAB>mime<TAB>description" per file (to diff two configurations)
//     --repeat N       classify each prefix N times (timing only)
//   Without --dump: thread CPU time per MIME type (count, total ms, mean us), sorted by total.

#include <magic.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "magic_classifier.hpp"

namespace fs = std::filesystem;

namespace {

struct type_pair {
  std::string mime;
  std::string description;
};

// The configuration the classifier shipped before issue #12, spelled out so
// that it stays fixed whatever the classifier becomes.
class reference_magic {
 public:
  explicit reference_magic(int extra_flags = 0, const std::map<int, std::size_t>& params = {}) {
    mime_ = open(MAGIC_MIME_TYPE | MAGIC_NO_CHECK_COMPRESS | extra_flags, params);
    description_ = open(MAGIC_NONE | MAGIC_NO_CHECK_COMPRESS | extra_flags, params);
    text_ = open(MAGIC_NONE | MAGIC_NO_CHECK_COMPRESS | MAGIC_NO_CHECK_SOFT | extra_flags, params);
  }
  ~reference_magic() {
    magic_close(mime_);
    magic_close(description_);
    magic_close(text_);
  }
  reference_magic(const reference_magic&) = delete;
  reference_magic& operator=(const reference_magic&) = delete;

  // Not inlined: callgrind counts it by name (--toggle-collect).
  [[gnu::noinline]] type_pair classify(const std::vector<char>& prefix) {
    type_pair r{call(mime_, prefix), {}};
    r.description = call(r.mime == "text/plain" ? text_ : description_, prefix);
    return r;
  }

 private:
  static magic_t open(int flags, const std::map<int, std::size_t>& params) {
    magic_t cookie = magic_open(flags);
    if (cookie == nullptr) {
      throw std::runtime_error("magic_open failed");
    }
    std::map<int, std::size_t> all{{MAGIC_PARAM_ENCODING_MAX, 4096}, {MAGIC_PARAM_REGEX_MAX, 4096}};
    for (const auto& [k, v] : params) {
      all[k] = v;
    }
    for (const auto& [k, v] : all) {
      if (magic_setparam(cookie, k, &v) != 0) {
        throw std::runtime_error("magic_setparam failed");
      }
    }
    if (magic_load(cookie, nullptr) != 0) {
      throw std::runtime_error("magic_load failed");
    }
    return cookie;
  }
  static std::string call(magic_t cookie, const std::vector<char>& prefix) {
    const char* text = magic_buffer(cookie, prefix.data(), prefix.size());
    if (text == nullptr) {
      const char* why = magic_error(cookie);
      throw std::runtime_error(std::string("libmagic: ") + (why ? why : "unknown error"));
    }
    return text;
  }

  magic_t mime_ = nullptr;
  magic_t description_ = nullptr;
  magic_t text_ = nullptr;
};

int flag_named(const std::string& name) {
  static const std::map<std::string, int> flags{
      {"tar", MAGIC_NO_CHECK_TAR},         {"json", MAGIC_NO_CHECK_JSON},     {"csv", MAGIC_NO_CHECK_CSV},
      {"cdf", MAGIC_NO_CHECK_CDF},         {"elf", MAGIC_NO_CHECK_ELF},       {"encoding", MAGIC_NO_CHECK_ENCODING},
      {"text", MAGIC_NO_CHECK_TEXT},       {"tokens", MAGIC_NO_CHECK_TOKENS}, {"soft", MAGIC_NO_CHECK_SOFT},
      {"apptype", MAGIC_NO_CHECK_APPTYPE},
  };
  const auto it = flags.find(name);
  if (it == flags.end()) {
    throw std::runtime_error("unknown flag: " + name);
  }
  return it->second;
}

int param_named(const std::string& name) {
  static const std::map<std::string, int> params{
      {"regex_max", MAGIC_PARAM_REGEX_MAX},         {"encoding_max", MAGIC_PARAM_ENCODING_MAX},
      {"bytes_max", MAGIC_PARAM_BYTES_MAX},         {"indir_max", MAGIC_PARAM_INDIR_MAX},
      {"name_max", MAGIC_PARAM_NAME_MAX},           {"elf_phnum_max", MAGIC_PARAM_ELF_PHNUM_MAX},
      {"elf_shnum_max", MAGIC_PARAM_ELF_SHNUM_MAX}, {"elf_notes_max", MAGIC_PARAM_ELF_NOTES_MAX},
  };
  const auto it = params.find(name);
  if (it == params.end()) {
    throw std::runtime_error("unknown parameter: " + name);
  }
  return it->second;
}

std::vector<char> read_prefix(const fs::path& path, std::size_t bytes) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> data(bytes);
  in.read(data.data(), static_cast<std::streamsize>(bytes));
  data.resize(static_cast<std::size_t>(in.gcount()));
  return data;
}

double thread_cpu_us() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
}

// Descriptions may hold control bytes; keep one line per file.
std::string one_line(const std::string& s) {
  std::string out;
  for (const char c : s) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::size_t bytes = 65536;
    std::string config = "shipped";
    int extra_flags = 0;
    std::map<int, std::size_t> params;
    bool dump = false;
    int repeat = 1;
    std::vector<fs::path> roots;
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      auto value = [&]() -> std::string {
        if (i + 1 >= argc) {
          throw std::runtime_error(arg + " needs a value");
        }
        return argv[++i];
      };
      if (arg == "--bytes") {
        bytes = std::stoul(value());
      } else if (arg == "--config") {
        config = value();
      } else if (arg == "--add-flags") {
        std::stringstream list(value());
        for (std::string name; std::getline(list, name, ',');) {
          extra_flags |= flag_named(name);
        }
      } else if (arg == "--param") {
        const std::string kv = value();
        const auto eq = kv.find('=');
        if (eq == std::string::npos) {
          throw std::runtime_error("--param wants NAME=VALUE");
        }
        params[param_named(kv.substr(0, eq))] = std::stoul(kv.substr(eq + 1));
      } else if (arg == "--dump") {
        dump = true;
      } else if (arg == "--repeat") {
        repeat = std::stoi(value());
      } else {
        roots.emplace_back(arg);
      }
    }
    if (config != "shipped" && config != "reference" && config != "custom") {
      throw std::runtime_error("unknown configuration: " + config);
    }
    if (config == "reference" && (extra_flags != 0 || !params.empty())) {
      throw std::runtime_error("--add-flags and --param need --config custom");
    }

    std::vector<fs::path> files;
    for (const auto& root : roots) {
      if (fs::is_directory(root)) {
        for (const auto& e : fs::recursive_directory_iterator(root)) {
          if (e.is_regular_file()) {
            files.push_back(e.path());
          }
        }
      } else {
        files.push_back(root);
      }
    }
    std::sort(files.begin(), files.end());

    borderscan::scanner::detail::magic_classifier shipped;
    reference_magic reference(extra_flags, params);
    auto classify = [&](const std::vector<char>& prefix) {
      if (config == "shipped") {
        const auto r = shipped.classify(std::as_bytes(std::span(prefix)));
        return type_pair{r.mime, r.description};
      }
      return reference.classify(prefix);
    };

    struct tally {
      std::size_t files = 0;
      double us = 0;
    };
    std::map<std::string, tally> by_mime;
    double total_us = 0;
    for (const auto& path : files) {
      const auto prefix = read_prefix(path, bytes);
      type_pair r;
      const double start = thread_cpu_us();
      for (int k = 0; k < repeat; ++k) {
        r = classify(prefix);
      }
      const double spent = thread_cpu_us() - start;
      if (dump) {
        std::cout << one_line(path.string()) << '\t' << r.mime << '\t' << one_line(r.description) << '\n';
      }
      auto& t = by_mime[r.mime];
      ++t.files;
      t.us += spent;
      total_us += spent;
    }
    if (!dump) {
      std::vector<std::pair<std::string, tally>> rows(by_mime.begin(), by_mime.end());
      std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.us > b.second.us; });
      std::printf("%-40s %7s %10s %10s %6s\n", "mime", "files", "total_ms", "mean_us", "share");
      for (const auto& [mime, t] : rows) {
        std::printf("%-40s %7zu %10.1f %10.1f %5.1f%%\n", mime.c_str(), t.files, t.us / 1e3,
                    t.us / static_cast<double>(t.files), 100.0 * t.us / total_us);
      }
      std::printf("%-40s %7zu %10.1f\n", "total", files.size(), total_us / 1e3);
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "magic-harness: " << e.what() << '\n';
    return 2;
  }
}
