// Micro-benchmarks of the per-object stages: the three digests together,
// libmagic on a prefix, YARA on a block (shipped and public rule sets), and
// hash-set load and lookup with 10 million SHA-256 entries.
//   build/bin/borderscan_micro_bench [--benchmark_filter=...]
// BORDERSCAN_COMMUNITY_RULES: directory of the public rule set (default
// ../shared/corpus/yara-community/signature-base, compile-noext.txt list).
// BM_HashSetCompact / BM_HashSetText measure files that bench/hashset.sh
// makes (BORDERSCAN_BENCH_HASHSET = the .bhs, BORDERSCAN_BENCH_HASHSET_TEXT =
// the text file it was imported from); run each in a process of its own, so
// that the peak RSS is its own.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <vector>

#include "borderscan/scanner/hashset.hpp"
#include "borderscan/scanner/object_scanner.hpp"
#include "borderscan/scanner/rule_set.hpp"
#include "borderscan/scanner/text.hpp"
#include "digest.hpp"
#include "magic_classifier.hpp"

namespace sc = borderscan::scanner;
namespace fs = std::filesystem;

namespace {

std::vector<std::byte> random_bytes(std::size_t n, unsigned seed = 42) {
  std::mt19937_64 rng(seed);
  std::vector<std::byte> out(n);
  for (std::size_t i = 0; i + 8 <= n; i += 8) {
    const std::uint64_t v = rng();
    std::memcpy(out.data() + i, &v, 8);
  }
  return out;
}

sc::yara_library& yara() {
  static sc::yara_library lib;
  return lib;
}

std::shared_ptr<const sc::rule_set> shipped() {
  yara();
  static auto rules = [] {
    sc::rule_sources src;
    src.rule_paths.push_back(sc::default_rules_dir());
    return sc::rule_set::load(src);
  }();
  return rules;
}

std::shared_ptr<const sc::rule_set> community() {
  yara();
  static auto rules = []() -> std::shared_ptr<const sc::rule_set> {
    const char* env = std::getenv("BORDERSCAN_COMMUNITY_RULES");
    const fs::path base = env != nullptr ? fs::path(env)
                                         : fs::path(BORDERSCAN_SOURCE_DIR) / ".." / "shared" / "corpus" /
                                               "yara-community" / "signature-base";
    std::ifstream list(base / "compile-noext.txt");
    if (!list) {
      return nullptr;
    }
    sc::rule_sources src;
    for (std::string line; std::getline(list, line);) {
      if (!line.empty()) src.rule_paths.push_back(base / line);
    }
    return sc::rule_set::load(src);
  }();
  return rules;
}

void BM_Digests(benchmark::State& state) {
  const auto data = random_bytes(4 << 20);
  sc::detail::multi_hasher hasher;
  for (auto _ : state) {
    hasher.reset();
    hasher.update(data);
    benchmark::DoNotOptimize(hasher.finish());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * data.size()));
}
BENCHMARK(BM_Digests)->Unit(benchmark::kMillisecond);

void BM_Magic(benchmark::State& state) {
  std::vector<std::byte> data(64 << 10);
  const std::string text = "The quick brown fox jumps over the lazy dog. 12345\n";
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::byte>(text[i % text.size()]);
  const auto binary = random_bytes(64 << 10);
  sc::detail::magic_classifier magic;
  const bool is_text = state.range(0) == 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(magic.classify(is_text ? data : binary));
  }
  state.SetLabel(is_text ? "64 KiB text" : "64 KiB random");
}
BENCHMARK(BM_Magic)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

// The whole object pipeline on one object of random bytes: digests + magic + YARA.
void run_object(benchmark::State& state, std::shared_ptr<const sc::rule_set> rules, std::size_t bytes) {
  if (!rules) {
    state.SkipWithError("public rule set not found");
    return;
  }
  const auto data = random_bytes(bytes);
  sc::limits lim;
  sc::object_scanner scanner(lim, rules);
  for (auto _ : state) {
    sc::memory_source src(data);
    sc::file_entry e;
    e.path = "/bench.bin";
    e.size = data.size();
    e.type = "regular";
    benchmark::DoNotOptimize(scanner.scan(e, src));
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * data.size()));
}
void BM_ObjectShippedRules(benchmark::State& state) {
  run_object(state, shipped(), 4 << 20);
}
void BM_ObjectPublicRules(benchmark::State& state) {
  run_object(state, community(), 4 << 20);
}
BENCHMARK(BM_ObjectShippedRules)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ObjectPublicRules)->Unit(benchmark::kMillisecond);

// The fixed cost of one object: a tiny file, so neither hashing nor matching
// bytes count. With the public set this is mostly libyara loading the `pe`
// module for every scan (it builds the module's object tree and sets a few
// hundred constants by name each time, whatever the content).
void BM_TinyObjectShippedRules(benchmark::State& state) {
  run_object(state, shipped(), 1);
}
void BM_TinyObjectPublicRules(benchmark::State& state) {
  run_object(state, community(), 1);
}
BENCHMARK(BM_TinyObjectShippedRules)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_TinyObjectPublicRules)->Unit(benchmark::kMicrosecond);

// A copy of content already seen in the same scan (duplicate files, archive
// members that are copies of files): the shared cache answers libmagic and
// YARA, only the digests are computed again.
void BM_DuplicateTextObject(benchmark::State& state) {
  auto rules = state.range(0) == 0 ? shipped() : community();
  if (!rules) {
    state.SkipWithError("public rule set not found");
    return;
  }
  std::vector<std::byte> data(16 << 10);
  const std::string text = "The quick brown fox jumps over the lazy dog. 12345\n";
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::byte>(text[i % text.size()]);
  sc::limits lim;
  sc::yara_result_cache cache;
  sc::object_scanner scanner(lim, rules, 4 << 20, 64 << 10, &cache);
  for (auto _ : state) {
    sc::memory_source src(data);
    sc::file_entry e;
    e.path = "/copy.txt";
    e.size = data.size();
    e.type = "regular";
    benchmark::DoNotOptimize(scanner.scan(e, src));
  }
  state.SetLabel(state.range(0) == 0 ? "shipped rules, 16 KiB text" : "public rules, 16 KiB text");
}
BENCHMARK(BM_DuplicateTextObject)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

long max_rss_kib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

// Loading 10 million SHA-256 lines (target: under 2 s and under 400 MB) and
// looking digests up in them.
void BM_HashSet10M(benchmark::State& state) {
  const fs::path file = fs::temp_directory_path() / "borderscan-bench-10m-v2.txt";
  constexpr std::uint64_t entries = 10'000'000;
  if (!fs::exists(file) || fs::file_size(file) != entries * 65) {
    std::FILE* out = std::fopen(file.c_str(), "wb");
    std::mt19937_64 rng(7);
    char line[80];
    for (std::uint64_t i = 0; i < entries; ++i) {
      // Drawn in order first: the order in which arguments are evaluated is
      // unspecified, and the lookups below replay the same sequence.
      const unsigned long long w0 = rng(), w1 = rng(), w2 = rng(), w3 = rng();
      std::snprintf(line, sizeof line, "%016llx%016llx%016llx%016llx\n", w0, w1, w2, w3);
      std::fwrite(line, 1, 65, out);
    }
    std::fclose(out);
  }
  const long rss_before = max_rss_kib();
  double load_seconds = 0;
  std::unique_ptr<sc::hashset_db> db;
  for (auto _ : state) {
    db = std::make_unique<sc::hashset_db>();
    const auto t0 = std::chrono::steady_clock::now();
    db->load(file, sc::hashset_kind::known_bad);
    db->seal();
    load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  state.counters["load_s"] = load_seconds;
  state.counters["rss_growth_MiB"] = static_cast<double>(max_rss_kib() - rss_before) / 1024.0;
  // Lookups: half hits (known digests), half misses.
  std::mt19937_64 rng(7);
  std::array<std::uint8_t, 32> key{};
  std::array<std::uint8_t, 16> md5{};
  std::array<std::uint8_t, 20> sha1{};
  const auto t0 = std::chrono::steady_clock::now();
  std::uint64_t hits = 0;
  constexpr int lookups = 1'000'000;
  for (int i = 0; i < lookups; ++i) {
    for (int w = 0; w < 4; ++w) {
      const std::uint64_t v = rng();
      for (int b = 0; b < 8; ++b) key[w * 8 + b] = static_cast<std::uint8_t>(v >> (56 - 8 * b));
    }
    if (i % 2 == 1) key[0] ^= 0x5a;
    hits += db->lookup(md5, sha1, key).size();
  }
  state.counters["lookup_ns"] =
      std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() / lookups;
  state.counters["hit_rate"] = static_cast<double>(hits) / lookups;
}
BENCHMARK(BM_HashSet10M)->Iterations(1)->Unit(benchmark::kSecond);

// Keys for the 50 M-entry comparison: the first `n` lines of the text set
// (hits: a random sample of the set, since its digests are random) and as
// many random digests (misses).
struct bench_keys {
  std::vector<std::array<std::uint8_t, 32>> hits, misses;
};

bench_keys read_keys(const fs::path& text, std::size_t n) {
  bench_keys k;
  std::ifstream in(text);
  for (std::string line; k.hits.size() < n && std::getline(in, line);) {
    std::array<std::uint8_t, 32> d{};
    if (line.size() >= 64 && sc::from_hex(std::string_view(line).substr(0, 64), d)) {
      k.hits.push_back(d);
    }
  }
  std::mt19937_64 rng(99);
  k.misses.resize(k.hits.size());
  for (auto& d : k.misses) {
    for (std::size_t i = 0; i < 32; i += 8) {
      const std::uint64_t v = rng();
      std::memcpy(d.data() + i, &v, 8);
    }
  }
  return k;
}

// Nanoseconds per lookup of every key; `found` counts the hits.
double time_lookups(const sc::hashset_db& db, const std::vector<std::array<std::uint8_t, 32>>& keys,
                    std::size_t& found) {
  const std::array<std::uint8_t, 16> md5{};
  const std::array<std::uint8_t, 20> sha1{};
  const auto t0 = std::chrono::steady_clock::now();
  for (const auto& k : keys) {
    found += db.lookup(md5, sha1, k).size();
  }
  return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() /
         static_cast<double>(keys.size());
}

const char* bench_env(benchmark::State& state, const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') {
    state.SkipWithError((std::string(name) + " is not set: run bench/hashset.sh").c_str());
    return nullptr;
  }
  return v;
}

// RssAnon and RssFile of this process in MiB (/proc/self/status): private
// memory, and pages of mapped files (the page cache, shared, reclaimable).
std::pair<double, double> rss_anon_file_mib() {
  std::ifstream in("/proc/self/status");
  double anon = 0, file = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("RssAnon:")) anon = std::stod(line.substr(8)) / 1024.0;
    if (line.starts_with("RssFile:")) file = std::stod(line.substr(8)) / 1024.0;
  }
  return {anon, file};
}

// Lookups in one loaded set: each key once after loading ("first": every
// page of the mapping touched for the first time, from the page cache), then
// again ("repeat"). Hits and misses apart.
void lookup_counters(benchmark::State& state, const sc::hashset_db& db, const bench_keys& keys) {
  std::size_t found = 0;
  state.counters["hit_ns_first"] = time_lookups(db, keys.hits, found);
  state.counters["miss_ns_first"] = time_lookups(db, keys.misses, found);
  state.counters["hit_ns_repeat"] = time_lookups(db, keys.hits, found);
  state.counters["miss_ns_repeat"] = time_lookups(db, keys.misses, found);
  state.counters["hit_rate"] = static_cast<double>(found) / static_cast<double>(4 * keys.hits.size());
  state.counters["keys"] = static_cast<double>(keys.hits.size());
  const auto [anon, file] = rss_anon_file_mib();
  state.counters["rss_anon_MiB"] = anon;
  state.counters["rss_file_MiB"] = file;
}

// What one memory access costs on this machine when it depends on the one
// before (as a lookup's steps do): random 8-byte reads across the mapped
// file, its pages already touched. The floor under any lookup that misses
// the caches.
double dependent_read_ns(const char* file) {
  const int fd = ::open(file, O_RDONLY);
  const auto size = static_cast<std::size_t>(fs::file_size(file));
  void* base = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (base == MAP_FAILED) {
    return 0;
  }
  const auto* p = static_cast<const std::uint8_t*>(base);
  std::uint64_t x = 12345, sink = 0;
  for (std::size_t i = 0; i < size; i += 4096) sink += p[i];  // touch every page first
  constexpr int reads = 1'000'000;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < reads; ++i) {
    std::uint64_t v = 0;
    std::memcpy(&v, p + x % (size - 8), 8);
    x = x * 6364136223846793005ULL + v + 1442695040888963407ULL;
  }
  const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() / reads;
  benchmark::DoNotOptimize(x + sink);
  ::munmap(base, size);
  return ns;
}

// A compact (.bhs) set: load = open, check the header, map; no per-entry work.
void BM_HashSetCompact(benchmark::State& state) {
  const char* file = bench_env(state, "BORDERSCAN_BENCH_HASHSET");
  const char* text = bench_env(state, "BORDERSCAN_BENCH_HASHSET_TEXT");
  if (file == nullptr || text == nullptr) {
    return;
  }
  const bench_keys keys = read_keys(text, 500'000);
  const long rss_before = max_rss_kib();
  double load_us = 0;
  double evicted_hit_us = 0;
  for (auto _ : state) {
    // The load as a worker does it, ten times (the best and the mean count).
    double best = 1e30, total = 0;
    for (int i = 0; i < 10; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      sc::hashset_db db;
      db.load(file, sc::hashset_kind::known_bad);
      db.seal();
      const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
      best = std::min(best, us);
      total += us;
      benchmark::DoNotOptimize(db.size());
    }
    load_us = total / 10;
    state.counters["load_us_best"] = best;

    {
      sc::hashset_db db;
      db.load(file, sc::hashset_kind::known_bad);
      db.seal();
      lookup_counters(state, db, keys);
    }
    state.counters["memory_dependent_ns"] = dependent_read_ns(file);

    // Last, with no mapping left: lookups with the file's pages dropped from
    // the page cache (the first scan after a reboot), each reading a few
    // pages from disk.
    const int fd = ::open(file, O_RDONLY);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
    sc::hashset_db db;
    db.load(file, sc::hashset_kind::known_bad);
    const std::vector<std::array<std::uint8_t, 32>> few(
        keys.hits.begin(),
        keys.hits.begin() + static_cast<std::ptrdiff_t>(std::min<std::size_t>(2000, keys.hits.size())));
    std::size_t found = 0;
    evicted_hit_us = time_lookups(db, few, found) / 1000.0;
  }
  state.counters["load_us_mean"] = load_us;
  state.counters["hit_us_evicted"] = evicted_hit_us;
  state.counters["rss_growth_MiB"] = static_cast<double>(max_rss_kib() - rss_before) / 1024.0;
}
BENCHMARK(BM_HashSetCompact)->Iterations(1)->Unit(benchmark::kSecond);

// The same set from its text file, parsed into memory (the baseline).
void BM_HashSetText(benchmark::State& state) {
  const char* text = bench_env(state, "BORDERSCAN_BENCH_HASHSET_TEXT");
  if (text == nullptr) {
    return;
  }
  const bench_keys keys = read_keys(text, 500'000);
  const long rss_before = max_rss_kib();
  for (auto _ : state) {
    sc::hashset_db db;
    const auto t0 = std::chrono::steady_clock::now();
    db.load(text, sc::hashset_kind::known_bad);
    db.seal();
    state.counters["load_s"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    state.counters["rss_growth_MiB"] = static_cast<double>(max_rss_kib() - rss_before) / 1024.0;
    lookup_counters(state, db, keys);
  }
}
BENCHMARK(BM_HashSetText)->Iterations(1)->Unit(benchmark::kSecond);

}  // namespace

BENCHMARK_MAIN();
