// "Seen before?" at a million file rows: sqlite_report_store::find_by_hash
// (GET /api/v1/files?sha256=|sha1=|md5=, issue #14) on a real SQLite store,
// measured against a primary-key lookup of the same store in the same run
// (find_scan, the baseline: the machine is shared, so the ratios are the
// figures to quote), and the same query on a copy of the store without the
// hash indexes (what the indexes buy).
//   build-bench/bin/borderscan_store_bench [--benchmark_filter=...]
//   bench/hash-search.sh runs it and prints the table.
//
// The store is built once through the store's own API, the way the daemon
// fills it (add_scan, claim_next, begin_report, add_report_rows in batches of
// 1 000 rows as report_ingest does, complete), and kept for later runs:
//   BORDERSCAN_STORE_BENCH_ROWS            file rows (default 1000000)
//   BORDERSCAN_STORE_BENCH_FILES_PER_SCAN  file rows per report (default 1000)
//   BORDERSCAN_STORE_BENCH_DIR             where the stores are kept (default
//                                          $TMPDIR/borderscan-store-bench)
//   BORDERSCAN_STORE_BENCH_REBUILD=1       build again even when a store of
//                                          these parameters is there
// The file name holds the row count, files per scan, the schema version and
// the generator's version, so a changed schema or generator builds a new one.
// The copy without hash indexes is made (and kept) by the first BM_*NoIndex
// benchmark that runs.
//
// Content: each report has 1 000 rows; 3 % are folders (no hashes, NULL in
// the store, like unread content), 1 % carry one of 100 "popular" contents
// (EICAR, common DLLs: Zipf-distributed, so the most common one, an EICAR
// copy, is in 1 964 rows of 867 reports at a million rows), the rest unique
// random MD5/SHA-1/SHA-256. Each row's JSON is a compact file entry with the
// fields of the scanner's report (path, times, type, description, the three
// hashes, ...), 650 bytes on average (bench/report.sh's 100 000-file report
// has about 660 per entry). Every hash is a function of the row's number, so
// queries for existing content are made without keeping a million hashes.
//
// Besides the store's calls, BM_LastPageSql runs the last page's query in
// plain SQL with the cursor written two ways (see there): the store's cursor
// is not part of the hash index's range, so a deep page reads the table row
// of every newer row with that content.
//
// Per-scan store overhead, SQLite against PostgreSQL (issue #18):
// BM_ScanCycle/<rows>/<backend> runs, per iteration, every store call one
// small scan makes on its way through the daemon (add_scan at the upload,
// claim_next, a progress write, renew_leases, begin_report, add_report_rows
// of <rows> file rows, complete), on a fresh SQLite file (backend 0) or a
// fresh PostgreSQL database (backend 1). PostgreSQL: $BORDERSCAN_BENCH_POSTGRES
// (a postgresql:// URL of a database the bench may create databases from),
// or the state file of tests/support/pg-server.sh in
// $BORDERSCAN_TEST_POSTGRES; without either the PostgreSQL runs are skipped
// with a message. bench/store-backends.sh starts a throw-away server and runs
// only these (--benchmark_filter=BM_ScanCycle skips the million-row store).
#include <benchmark/benchmark.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "borderscan/server/postgres_store.hpp"
#include "borderscan/server/sqlite_store.hpp"

namespace bs = borderscan::server;
namespace fs = std::filesystem;

namespace {

constexpr int generator_version = 1;  // bump when rows or their content change
constexpr int popular_contents = 100;
constexpr std::uint64_t popular_base = 1ULL << 62;  // content keys of popular content
constexpr std::uint64_t missing_base = 1ULL << 63;  // content keys never stored
constexpr std::size_t query_keys = 4096;            // distinct keys each benchmark cycles through
constexpr unsigned page_limit = 50;                 // the API's default page

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// A pseudo-random word for (key, stream).
std::uint64_t word(std::uint64_t key, std::uint64_t stream) {
  return splitmix64(splitmix64(key) ^ (stream * 0xd1b54a32d192ed03ULL));
}

std::string hex_words(std::uint64_t key, std::uint64_t stream, std::size_t chars) {
  std::string out;
  char buf[17];
  for (std::uint64_t w = 0; out.size() < chars; ++w) {
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(word(key, stream + w)));
    out += buf;
  }
  out.resize(chars);
  return out;
}

struct content {
  std::string md5, sha1, sha256;
};

content content_of(std::uint64_t key) {
  return {hex_words(key, 30, 32), hex_words(key, 20, 40), hex_words(key, 10, 64)};
}

enum class row_kind { folder, popular, unique };

row_kind kind_of(std::uint64_t row) {
  const auto r = word(row, 1) % 1000;
  return r < 30 ? row_kind::folder : r < 40 ? row_kind::popular : row_kind::unique;
}

// Which popular content a popular row has: rank k with weight 1 / (k + 1).
int rank_of(std::uint64_t row) {
  static const std::array<double, popular_contents> cdf = [] {
    std::array<double, popular_contents> c{};
    double sum = 0;
    for (int k = 0; k < popular_contents; ++k) c[k] = sum += 1.0 / (k + 1);
    for (auto& v : c) v /= sum;
    return c;
  }();
  const double u = static_cast<double>(word(row, 2) >> 11) * 0x1.0p-53;
  return static_cast<int>(std::upper_bound(cdf.begin(), cdf.end() - 1, u) - cdf.begin());
}

std::string scan_id_of(std::uint64_t scan) {
  return hex_words(scan, 40, 32);
}

std::uint64_t env_number(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::strtoull(v, nullptr, 10) : fallback;
}

struct model {
  std::uint64_t rows = 0, files_per_scan = 0, scans = 0;
  std::uint64_t rows_in(std::uint64_t scan) const { return std::min(files_per_scan, rows - scan * files_per_scan); }
};

struct file_kind {
  const char* ext;
  const char* mime;
  const char* description;
};
constexpr std::array<file_kind, 8> kinds{{
    {"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "Microsoft Word 2007+"},
    {"pdf", "application/pdf", "PDF document, version 1.4, 3 pages"},
    {"jpg", "image/jpeg", "JPEG image data, JFIF standard 1.01, resolution (DPI), density 72x72, 4032x3024"},
    {"txt", "text/plain", "UTF-8 Unicode text, with CRLF line terminators"},
    {"png", "image/png", "PNG image data, 1920 x 1080, 8-bit/color RGB, non-interlaced"},
    {"zip", "application/zip", "Zip archive data, at least v2.0 to extract, compression method=deflate"},
    {"xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "Microsoft Excel 2007+"},
    {"mp4", "video/mp4", "ISO Media, MP4 v2 [ISO 14496-14]"},
}};
constexpr std::array<const char*, 6> folders{
    {"Documents", "Pictures/Holiday 2025", "Downloads", "Desktop", "Backup/phone/DCIM/Camera", "AppData/Local/Temp"}};

std::string iso_time(std::int64_t unix_s) {
  const std::time_t t = unix_s;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// One file row as report_ingest stores it.
bs::report_file_row make_row(std::uint64_t scan, std::uint64_t index, std::uint64_t row) {
  bs::report_file_row r;
  r.index = static_cast<std::int64_t>(index);
  const auto kind = kind_of(row);
  const std::uint64_t w = word(row, 3);
  const auto& fk = kinds[w % kinds.size()];
  const char* folder = folders[(w >> 8) % folders.size()];
  char path[200];
  std::string type = "regular", mime = fk.mime, description = fk.description, findings = "[]";
  std::uint64_t size = 1000 + (w >> 16) % 4'000'000;
  content c;
  if (kind == row_kind::folder) {
    std::snprintf(path, sizeof path, "/Users/user%02llu/%s/folder %llu", static_cast<unsigned long long>(scan % 50),
                  folder, static_cast<unsigned long long>(index));
    type = "directory";
    mime = "inode/directory";
    description = "directory";
    size = 4096;
  } else if (kind == row_kind::popular) {
    const int rank = rank_of(row);
    c = content_of(popular_base + static_cast<std::uint64_t>(rank));
    if (rank == 0) {
      std::snprintf(path, sizeof path, "/Users/user%02llu/Downloads/eicar_%llu.com",
                    static_cast<unsigned long long>(scan % 50), static_cast<unsigned long long>(index));
      mime = "text/plain";
      description = "EICAR virus test files";
      size = 68;
      findings =
          R"([{"id":"4f0c2a9e7b1d3c5a","source":"yara","rule":"SUSP_Just_EICAR","severity":"high","tags":[],"meta":{}}])";
    } else {
      std::snprintf(path, sizeof path, "/Windows/System32/common%03d.dll", rank);
      mime = "application/vnd.microsoft.portable-executable";
      description = "PE32+ executable (DLL) (GUI) x86-64, for MS Windows";
      size = 50'000 + static_cast<std::uint64_t>(rank) * 1000;
    }
  } else {
    c = content_of(row);
    std::snprintf(path, sizeof path, "/Users/user%02llu/%s/file_%06llu.%s", static_cast<unsigned long long>(scan % 50),
                  folder, static_cast<unsigned long long>(index), fk.ext);
  }
  const std::int64_t mtime = 1'700'000'000 + static_cast<std::int64_t>(w % 60'000'000);
  const auto quoted = [](const std::string& s) { return s.empty() ? std::string("null") : "\"" + s + "\""; };
  std::ostringstream j;
  j << R"({"path":")" << path << R"(","volume":0,"inode":)" << (1000 + index) << R"(,"size":)" << size
    << R"(,"deleted":false,"type":")" << type << R"(","mtime":")" << iso_time(mtime) << R"(","atime":")"
    << iso_time(mtime + 86'400) << R"(","ctime":")" << iso_time(mtime) << R"(","crtime":null,"mime":")" << mime
    << R"(","description":")" << description << R"(","md5":)" << quoted(c.md5) << R"(,"sha1":)" << quoted(c.sha1)
    << R"(,"sha256":)" << quoted(c.sha256) << R"(,"bytes_read":)" << (kind == row_kind::folder ? 0 : size)
    << R"(,"content_complete":)" << (kind == row_kind::folder ? "false" : "true")
    << R"(,"skipped":null,"known":[],"extension_mismatch":false,"container":null,"depth":0,"findings":)" << findings
    << R"(,"evidence":null})";
  r.path = path;
  r.mime = mime;
  r.flagged = findings != "[]";
  r.json = j.str();
  r.md5 = c.md5;
  r.sha1 = c.sha1;
  r.sha256 = c.sha256;
  return r;
}

struct build_info {
  bool cached = false;
  double seconds = 0;  // of the build (from the meta file when cached)
  std::uint64_t bytes = 0;
  std::uint64_t json_bytes = 0;                       // sum of the rows' JSON text
  std::map<std::string, std::uint64_t> object_bytes;  // dbstat: bytes per table and index
};

void exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    const std::string what = err != nullptr ? err : "?";
    sqlite3_free(err);
    throw std::runtime_error(std::string(sql) + ": " + what);
  }
}

sqlite3* open_raw(const fs::path& file) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    const std::string what = db != nullptr ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    throw std::runtime_error(file.string() + ": " + what);
  }
  return db;
}

// Bytes per table and index (dbstat), when this SQLite has it.
std::map<std::string, std::uint64_t> object_bytes(const fs::path& file) {
  std::map<std::string, std::uint64_t> out;
  sqlite3* db = open_raw(file);
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name", -1, &s, nullptr) == SQLITE_OK) {
    while (sqlite3_step(s) == SQLITE_ROW) {
      out[reinterpret_cast<const char*>(sqlite3_column_text(s, 0))] =
          static_cast<std::uint64_t>(sqlite3_column_int64(s, 1));
    }
  }
  sqlite3_finalize(s);
  sqlite3_close(db);
  return out;
}

// find_by_hash's query (the scan columns as s.*), for EXPLAIN QUERY PLAN.
constexpr const char* find_by_hash_sql =
    "SELECT s.*, idx, path, deleted, flagged FROM report_files f JOIN scans s ON s.seq = f.scan_seq WHERE f.sha256 = "
    "'x' AND s.status = 'done' ORDER BY f.scan_seq DESC, f.idx DESC LIMIT 51";

std::string query_plan(sqlite3* db, const char* sql) {
  sqlite3_stmt* s = nullptr;
  std::string out;
  if (sqlite3_prepare_v2(db, (std::string("EXPLAIN QUERY PLAN ") + sql).c_str(), -1, &s, nullptr) == SQLITE_OK) {
    while (sqlite3_step(s) == SQLITE_ROW) {
      out += (out.empty() ? "" : "; ") + std::string(reinterpret_cast<const char*>(sqlite3_column_text(s, 3)));
    }
  }
  sqlite3_finalize(s);
  return out;
}

// The meta file beside a built store: build seconds, JSON bytes, dbstat sizes.
void write_meta(const fs::path& file, const build_info& info) {
  std::ofstream out(file);
  out << "seconds " << info.seconds << "\njson_bytes " << info.json_bytes << "\n";
  for (const auto& [name, bytes] : info.object_bytes) out << "object " << name << " " << bytes << "\n";
}

bool read_meta(const fs::path& file, build_info& info) {
  std::ifstream in(file);
  std::string key;
  bool seconds = false;
  while (in >> key) {
    if (key == "seconds") {
      seconds = static_cast<bool>(in >> info.seconds);
    } else if (key == "json_bytes") {
      in >> info.json_bytes;
    } else if (key == "object") {
      std::string name;
      std::uint64_t bytes = 0;
      in >> name >> bytes;
      info.object_bytes[name] = bytes;
    }
  }
  return seconds;
}

build_info build_store(const fs::path& file, const fs::path& reports_dir, const model& m) {
  const fs::path partial = fs::path(file).concat(".partial");
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(fs::path(partial).concat(suffix));
  build_info info;
  const auto t0 = std::chrono::steady_clock::now();
  {
    bs::sqlite_report_store store(partial, reports_dir);
    std::int64_t now = 1'764'000'000'000;  // Unix ms, late 2025
    std::vector<bs::report_file_row> rows;
    for (std::uint64_t scan = 0; scan < m.scans; ++scan) {
      bs::scan_record s;
      s.id = scan_id_of(scan);
      s.station = "kiosk-" + std::to_string(scan % 20);
      s.label = "bench " + std::to_string(scan);
      s.image_sha256 = hex_words(scan, 50, 64);
      s.image_size = 4ULL << 30;
      s.spool_path = (reports_dir / (s.id + ".img")).string();
      s.submitted_at = now;
      store.add_scan(s, {});
      store.claim_next(now + 1000, {"bench", 30'000});
      store.begin_report(s.id);
      rows.clear();
      std::uint64_t flagged = 0, bytes = 0;
      for (std::uint64_t i = 0; i < m.rows_in(scan); ++i) {
        rows.push_back(make_row(scan, i, scan * m.files_per_scan + i));
        flagged += rows.back().flagged ? 1 : 0;
        info.json_bytes += rows.back().json.size();
        bytes += rows.back().json.size() * 100;
        if (rows.size() == 1000) {  // report_ingest's batch
          store.add_report_rows(s.id, rows);
          rows.clear();
        }
      }
      store.add_report_rows(s.id, rows);
      bs::stored_report r;
      r.path = (reports_dir / (s.id + ".report.json")).string();
      r.size = m.rows_in(scan) * 600;
      r.sha256 = hex_words(scan, 60, 64);
      r.verdict = flagged > 0 ? "flagged" : "clean";
      r.score = flagged > 0 ? 80 : 0;
      r.ruleset_digest = "sha256:" + std::string(64, '0');
      r.files = m.rows_in(scan);
      r.flagged_files = flagged;
      r.bytes = bytes;
      store.complete(s.id, r, now + 30'000);
      now += 60'000;  // a scan a minute
    }
  }  // closing checkpoints the WAL into the file
  info.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  info.object_bytes = object_bytes(partial);
  for (const char* suffix : {"-wal", "-shm"}) fs::remove(fs::path(partial).concat(suffix));
  fs::rename(partial, file);
  return info;
}

struct fixture {
  model m;
  fs::path dir, file, noindex_file;
  build_info info;
  std::unique_ptr<bs::sqlite_report_store> store, noindex;
  std::string popular_sha256;  // the most common popular content
  std::uint64_t popular_rows = 0;
  // Queries, each benchmark cycles through its list.
  std::vector<std::string> scan_ids, unique_sha256, unique_md5, missing_sha256;
};

fixture* the_fixture = nullptr;

std::string file_stem(const model& m) {
  return "store-" + std::to_string(m.rows) + "-" + std::to_string(m.files_per_scan) + "-s" +
         std::to_string(bs::sqlite_report_store::schema_version()) + "-g" + std::to_string(generator_version);
}

void prepare(fixture& f) {
  f.m.rows = env_number("BORDERSCAN_STORE_BENCH_ROWS", 1'000'000);
  f.m.files_per_scan = std::max<std::uint64_t>(1, env_number("BORDERSCAN_STORE_BENCH_FILES_PER_SCAN", 1000));
  if (f.m.rows == 0) throw std::runtime_error("BORDERSCAN_STORE_BENCH_ROWS must be at least 1");
  f.m.scans = (f.m.rows + f.m.files_per_scan - 1) / f.m.files_per_scan;
  const char* dir = std::getenv("BORDERSCAN_STORE_BENCH_DIR");
  f.dir = dir != nullptr && *dir != '\0' ? fs::path(dir) : fs::temp_directory_path() / "borderscan-store-bench";
  fs::create_directories(f.dir / "reports");
  f.file = f.dir / (file_stem(f.m) + ".sqlite");
  f.noindex_file = f.dir / (file_stem(f.m) + "-noindex.sqlite");
  const fs::path meta = fs::path(f.file).concat(".meta");
  const bool rebuild = env_number("BORDERSCAN_STORE_BENCH_REBUILD", 0) != 0;
  if (!rebuild && fs::exists(f.file) && read_meta(meta, f.info)) {
    f.info.cached = true;
    std::cerr << "store_bench: using " << f.file << " (built earlier in " << f.info.seconds << " s)\n";
  } else {
    fs::remove(f.noindex_file);
    std::cerr << "store_bench: building " << f.file << ": " << f.m.rows << " file rows in " << f.m.scans
              << " reports ...\n";
    f.info = build_store(f.file, f.dir / "reports", f.m);
    write_meta(meta, f.info);
    std::cerr << "store_bench: built in " << f.info.seconds << " s\n";
  }
  f.info.bytes = fs::file_size(f.file);
  f.store = std::make_unique<bs::sqlite_report_store>(f.file, f.dir / "reports");

  f.popular_sha256 = content_of(popular_base).sha256;
  for (std::uint64_t row = 0; row < f.m.rows; ++row) {
    f.popular_rows += kind_of(row) == row_kind::popular && rank_of(row) == 0 ? 1 : 0;
  }
  std::mt19937_64 rng(17);
  const auto random_unique_row = [&] {
    for (;;) {
      const std::uint64_t row = rng() % f.m.rows;
      if (kind_of(row) == row_kind::unique) return row;
    }
  };
  for (std::size_t i = 0; i < query_keys; ++i) {
    f.scan_ids.push_back(scan_id_of(rng() % f.m.scans));
    f.unique_sha256.push_back(content_of(random_unique_row()).sha256);
    f.unique_md5.push_back(content_of(random_unique_row()).md5);
    f.missing_sha256.push_back(content_of(missing_base + i).sha256);
  }
}

// The copy without the hash indexes, made on first use and kept.
bs::sqlite_report_store& noindex_store(fixture& f) {
  if (!f.noindex) {
    if (!fs::exists(f.noindex_file)) {
      const fs::path partial = fs::path(f.noindex_file).concat(".partial");
      fs::copy_file(f.file, partial, fs::copy_options::overwrite_existing);
      sqlite3* db = open_raw(partial);
      exec(db, "DROP INDEX report_files_by_sha256; DROP INDEX report_files_by_sha1; DROP INDEX report_files_by_md5");
      sqlite3_close(db);
      for (const char* suffix : {"-wal", "-shm"}) fs::remove(fs::path(partial).concat(suffix));
      fs::rename(partial, f.noindex_file);
    }
    sqlite3* db = open_raw(f.noindex_file);
    std::cerr << "store_bench: query plan without the hash indexes: " << query_plan(db, find_by_hash_sql) << "\n";
    sqlite3_close(db);
    f.noindex = std::make_unique<bs::sqlite_report_store>(f.noindex_file, f.dir / "reports");
  }
  return *f.noindex;
}

// find_by_hash, one query per iteration, cycling through `values`; every
// answer must have between `least` and `most` items.
void run_find(benchmark::State& state, bs::sqlite_report_store& store, const char* algorithm,
              const std::vector<std::string>& values, std::size_t least, std::size_t most) {
  bs::hash_query q;
  q.algorithm = algorithm;
  q.limit = page_limit;
  std::size_t i = 0, items = 0, wrong = 0;
  for (auto _ : state) {
    q.value = values[i++ % values.size()];
    const auto page = store.find_by_hash(q);
    items += page.items.size();
    wrong += page.items.size() < least || page.items.size() > most ? 1 : 0;
    benchmark::DoNotOptimize(page);
  }
  state.counters["items_per_query"] = static_cast<double>(items) / static_cast<double>(state.iterations());
  if (wrong > 0) state.SkipWithError("a query returned an unexpected number of items");
}

// The baseline: one scan by its id (a primary-key lookup, the same columns
// find_by_hash returns per hit).
void BM_FindScan(benchmark::State& state) {
  auto& f = *the_fixture;
  std::size_t i = 0, found = 0;
  for (auto _ : state) {
    const auto scan = f.store->find_scan(f.scan_ids[i++ % f.scan_ids.size()]);
    found += scan ? 1 : 0;
    benchmark::DoNotOptimize(scan);
  }
  if (found != static_cast<std::size_t>(state.iterations())) state.SkipWithError("a scan was not found");
}
BENCHMARK(BM_FindScan)->Unit(benchmark::kMicrosecond);

// Content seen once: a random existing SHA-256.
void BM_FindByHashUnique(benchmark::State& state) {
  run_find(state, *the_fixture->store, "sha256", the_fixture->unique_sha256, 1, 1);
}
BENCHMARK(BM_FindByHashUnique)->Unit(benchmark::kMicrosecond);

// Content seen in many reports: the first page of 50, newest first.
void BM_FindByHashPopular(benchmark::State& state) {
  auto& f = *the_fixture;
  const std::size_t expect = std::min<std::size_t>(page_limit, f.popular_rows);
  run_find(state, *f.store, "sha256", {f.popular_sha256}, expect, expect);
  state.counters["rows_with_it"] = static_cast<double>(f.popular_rows);
}
BENCHMARK(BM_FindByHashPopular)->Unit(benchmark::kMicrosecond);

// Content never seen.
void BM_FindByHashMissing(benchmark::State& state) {
  run_find(state, *the_fixture->store, "sha256", the_fixture->missing_sha256, 0, 0);
}
BENCHMARK(BM_FindByHashMissing)->Unit(benchmark::kMicrosecond);

// A random existing MD5 (its own index, shorter keys).
void BM_FindByHashMd5(benchmark::State& state) {
  run_find(state, *the_fixture->store, "md5", the_fixture->unique_md5, 1, 1);
}
BENCHMARK(BM_FindByHashMd5)->Unit(benchmark::kMicrosecond);

// Every page of the popular content, following the cursor (what a client
// listing all of it does); time per whole walk, pages and rows as counters.
void BM_FindByHashPopularAllPages(benchmark::State& state) {
  auto& f = *the_fixture;
  bs::hash_query q;
  q.algorithm = "sha256";
  q.value = f.popular_sha256;
  q.limit = page_limit;
  std::size_t pages = 0, rows = 0;
  for (auto _ : state) {
    q.before.reset();
    pages = rows = 0;
    for (;;) {
      const auto page = f.store->find_by_hash(q);
      ++pages;
      rows += page.items.size();
      if (!page.next) break;
      q.before = page.next;
    }
  }
  state.counters["pages"] = static_cast<double>(pages);
  state.counters["rows"] = static_cast<double>(rows);
  if (rows != f.popular_rows) state.SkipWithError("the walk did not return every row with the content");
}
BENCHMARK(BM_FindByHashPopularAllPages)->Unit(benchmark::kMillisecond);

// The cursor of the popular content's last page, and how many rows come
// before it (found by walking the pages once, not timed).
struct last_page {
  // Past every row when there is only one page.
  std::pair<std::int64_t, std::int64_t> before{INT64_MAX, INT64_MAX};
  std::size_t rows_before = 0, rows = 0;
};

const last_page& popular_last_page(fixture& f) {
  static const last_page last = [&] {
    last_page out;
    bs::hash_query q;
    q.algorithm = "sha256";
    q.value = f.popular_sha256;
    q.limit = page_limit;
    for (auto page = f.store->find_by_hash(q); page.next; page = f.store->find_by_hash(q)) {
      out.rows_before += page.items.size();
      q.before = out.before = *page.next;
    }
    out.rows = f.popular_rows - out.rows_before;
    return out;
  }();
  return last;
}

// The last page of the popular content: a cursor deep in its list (every
// newer row with the content comes before it in the index).
void BM_FindByHashPopularLastPage(benchmark::State& state) {
  auto& f = *the_fixture;
  const auto& last = popular_last_page(f);
  bs::hash_query q;
  q.algorithm = "sha256";
  q.value = f.popular_sha256;
  q.limit = page_limit;
  q.before = last.before;
  std::size_t items = 0, wrong = 0;
  for (auto _ : state) {
    const auto page = f.store->find_by_hash(q);
    items += page.items.size();
    wrong += page.items.size() != last.rows ? 1 : 0;
    benchmark::DoNotOptimize(page);
  }
  state.counters["items_per_query"] = static_cast<double>(items) / static_cast<double>(state.iterations());
  state.counters["rows_before"] = static_cast<double>(last.rows_before);
  if (wrong > 0) state.SkipWithError("the last page had an unexpected number of items");
}
BENCHMARK(BM_FindByHashPopularLastPage)->Unit(benchmark::kMicrosecond);

// The last page's query in plain SQL on a connection of its own, with two
// ways to write the cursor: 0 = "scan_seq < ? OR (scan_seq = ? AND idx < ?)"
// (find_by_hash's SQL when this was written), 1 = the row value
// "(scan_seq, idx) < (?, ?)", which SQLite can use as a range of the hash
// index. Prepared per call and every column read, as the store does.
void BM_LastPageSql(benchmark::State& state) {
  auto& f = *the_fixture;
  const auto& last = popular_last_page(f);
  const bool row_value = state.range(0) == 1;
  const std::string sql =
      std::string(
          "SELECT s.*, idx, path, deleted, flagged FROM report_files f JOIN scans s ON s.seq = f.scan_seq "
          "WHERE f.sha256 = ? AND s.status = 'done' AND ") +
      (row_value ? "(f.scan_seq, f.idx) < (?, ?)" : "(f.scan_seq < ? OR (f.scan_seq = ? AND f.idx < ?))") +
      " ORDER BY f.scan_seq DESC, f.idx DESC LIMIT ?";
  sqlite3* db = open_raw(f.file);
  std::size_t rows = 0, wrong = 0;
  for (auto _ : state) {
    sqlite3_stmt* s = nullptr;
    sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr);
    int i = 1;
    sqlite3_bind_text(s, i++, f.popular_sha256.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, i++, last.before.first);
    if (!row_value) sqlite3_bind_int64(s, i++, last.before.first);
    sqlite3_bind_int64(s, i++, last.before.second);
    sqlite3_bind_int64(s, i++, page_limit + 1);
    std::size_t n = 0;
    while (sqlite3_step(s) == SQLITE_ROW) {
      for (int c = 0; c < sqlite3_column_count(s); ++c) benchmark::DoNotOptimize(sqlite3_column_text(s, c));
      ++n;
    }
    sqlite3_finalize(s);
    rows += n;
    wrong += n != last.rows ? 1 : 0;
  }
  sqlite3_close(db);
  state.SetLabel(row_value ? "(scan_seq, idx) < (?, ?)" : "scan_seq < ? OR (scan_seq = ? AND idx < ?)");
  state.counters["items_per_query"] = static_cast<double>(rows) / static_cast<double>(state.iterations());
  if (wrong > 0) state.SkipWithError("the last page had an unexpected number of rows");
}
BENCHMARK(BM_LastPageSql)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

// The same queries on the copy without hash indexes.
void BM_FindByHashUniqueNoIndex(benchmark::State& state) {
  run_find(state, noindex_store(*the_fixture), "sha256", the_fixture->unique_sha256, 1, 1);
}
BENCHMARK(BM_FindByHashUniqueNoIndex)->Unit(benchmark::kMillisecond)->Iterations(3);

void BM_FindByHashPopularNoIndex(benchmark::State& state) {
  auto& f = *the_fixture;
  const std::size_t expect = std::min<std::size_t>(page_limit, f.popular_rows);
  run_find(state, noindex_store(f), "sha256", {f.popular_sha256}, expect, expect);
}
BENCHMARK(BM_FindByHashPopularNoIndex)->Unit(benchmark::kMillisecond)->Iterations(3);

// The PostgreSQL server's URL (its `postgres` database), or "" when none is named.
std::string postgres_admin_url() {
  if (const char* url = std::getenv("BORDERSCAN_BENCH_POSTGRES"); url != nullptr && *url != '\0') {
    return url;
  }
  if (const char* state = std::getenv("BORDERSCAN_TEST_POSTGRES"); state != nullptr && *state != '\0') {
    std::ifstream in(state);
    std::string dir, url;
    std::getline(in, dir);
    std::getline(in, url);
    return url;
  }
  return {};
}

// A new database on that server; its URL.
std::string new_postgres_database(const std::string& admin_url) {
  static int counter = 0;
  const std::string name = "bench_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
  std::unique_ptr<PGconn, decltype(&PQfinish)> c(PQconnectdb(admin_url.c_str()), &PQfinish);
  if (PQstatus(c.get()) != CONNECTION_OK) {
    throw std::runtime_error("cannot connect to PostgreSQL: " + std::string(PQerrorMessage(c.get())));
  }
  std::unique_ptr<PGresult, decltype(&PQclear)> r(PQexec(c.get(), ("CREATE DATABASE " + name).c_str()), &PQclear);
  if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
    throw std::runtime_error("CREATE DATABASE: " + std::string(PQresultErrorMessage(r.get())));
  }
  const auto at = admin_url.find("/postgres");
  if (at == std::string::npos) {
    throw std::runtime_error("the PostgreSQL URL must name the database `postgres`: " + admin_url);
  }
  return std::string(admin_url).replace(at, 9, "/" + name);
}

// One small scan's store calls, from upload to stored report.
void BM_ScanCycle(benchmark::State& state) {
  const auto rows_per_scan = static_cast<std::uint64_t>(state.range(0));
  const bool postgres = state.range(1) == 1;
  const fs::path dir = fs::temp_directory_path() / ("borderscan-scan-cycle-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::unique_ptr<bs::report_store> store;
  if (postgres) {
    const std::string admin = postgres_admin_url();
    if (admin.empty()) {
      state.SkipWithError("no PostgreSQL: set BORDERSCAN_BENCH_POSTGRES or BORDERSCAN_TEST_POSTGRES");
      return;
    }
    store = std::make_unique<bs::postgres_report_store>(new_postgres_database(admin));
  } else {
    store = std::make_unique<bs::sqlite_report_store>(dir / "store.db", dir);
  }
  const bs::node_lease lease{"bench", 30'000};
  std::int64_t now = 1'764'000'000'000;
  std::uint64_t scan = 0;
  std::vector<bs::report_file_row> rows;
  for (auto _ : state) {
    bs::scan_record s;
    s.id = scan_id_of(scan);
    s.station = "kiosk-1";
    s.image_sha256 = hex_words(scan, 50, 64);
    s.image_size = 1 << 20;
    s.spool_path = (dir / (s.id + ".img")).string();
    s.submitted_at = now;
    store->add_scan(s, {});
    if (!store->claim_next(now + 10, lease)) {
      state.SkipWithError("the scan just queued was not claimed");
      break;
    }
    store->set_progress(s.id, R"({"files_done":1,"files_found":2,"bytes_done":3,"bytes_total":4})");
    benchmark::DoNotOptimize(store->renew_leases(lease, now + 20));
    store->begin_report(s.id);
    rows.clear();
    for (std::uint64_t i = 0; i < rows_per_scan; ++i) {
      rows.push_back(make_row(scan, i, scan * rows_per_scan + i));
    }
    store->add_report_rows(s.id, rows);
    bs::stored_report r;
    r.path = (dir / (s.id + ".report.json")).string();
    r.size = rows_per_scan * 600;
    r.sha256 = hex_words(scan, 60, 64);
    r.verdict = "clean";
    r.ruleset_digest = "sha256:" + std::string(64, '0');
    r.files = rows_per_scan;
    store->complete(s.id, r, now + 30);
    now += 1000;
    ++scan;
  }
  state.SetLabel(postgres ? "postgresql" : "sqlite");
  state.counters["rows_per_scan"] = static_cast<double>(rows_per_scan);
  store.reset();
  fs::remove_all(dir);
}
BENCHMARK(BM_ScanCycle)
    ->ArgsProduct({{10, 1000}, {0, 1}})
    ->ArgNames({"rows", "pg"})
    ->Unit(benchmark::kMillisecond)
    ->MinTime(0.5);

// The console output plus, at the end, each benchmark's median time over its
// repetitions and its ratio to BM_FindScan's median.
class ratio_reporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& reports) override {
    ConsoleReporter::ReportRuns(reports);
    for (const auto& r : reports) {
      if (r.run_type == Run::RT_Iteration && !r.error_occurred && r.iterations > 0) {
        const auto& n = r.run_name;
        times_[n.function_name + (n.args.empty() ? "" : "/" + n.args)].push_back(r.real_accumulated_time /
                                                                                 static_cast<double>(r.iterations));
      }
    }
  }
  void Finalize() override {
    ConsoleReporter::Finalize();
    const auto median = [](std::vector<double> v) {
      std::sort(v.begin(), v.end());
      const std::size_t n = v.size();
      return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    };
    const auto base = times_.find("BM_FindScan");
    auto& out = GetOutputStream();
    out << "\nmedian time per call and ratio to BM_FindScan (find_scan by id):\n";
    for (const auto& [name, seconds] : times_) {
      char line[160];
      const double m = median(seconds);
      if (base != times_.end()) {
        std::snprintf(line, sizeof line, "  %-30s %12.1f us  %10.2f\n", name.c_str(), m * 1e6,
                      m / median(base->second));
      } else {
        std::snprintf(line, sizeof line, "  %-30s %12.1f us\n", name.c_str(), m * 1e6);
      }
      out << line;
    }
  }

 private:
  std::map<std::string, std::vector<double>> times_;
};

}  // namespace

int main(int argc, char** argv) {
  // Only the per-scan cycle: the million-row store is not needed (nor built).
  // Looked at before Initialize, which takes the --benchmark_ flags out of argv.
  const bool cycle_only = [&] {
    for (int i = 1; i < argc; ++i) {
      if (std::string(argv[i]).starts_with("--benchmark_filter=BM_ScanCycle")) return true;
    }
    return false;
  }();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  if (cycle_only) {
    benchmark::AddCustomContext("sqlite_version", sqlite3_libversion());
    benchmark::AddCustomContext("postgresql_server", postgres_admin_url().empty() ? "none" : "given");
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
  }
  fixture f;
  try {
    prepare(f);
  } catch (const std::exception& e) {
    std::cerr << "store_bench: " << e.what() << "\n";
    return 1;
  }
  the_fixture = &f;
  const double million = static_cast<double>(f.m.rows) / 1e6;
  benchmark::AddCustomContext("sqlite_version", sqlite3_libversion());
  benchmark::AddCustomContext("store_file", f.file.string());
  benchmark::AddCustomContext("store_rows", std::to_string(f.m.rows));
  benchmark::AddCustomContext("store_scans", std::to_string(f.m.scans));
  benchmark::AddCustomContext("store_cached", f.info.cached ? "true" : "false");
  benchmark::AddCustomContext("store_build_s", std::to_string(f.info.seconds));
  benchmark::AddCustomContext("store_build_s_per_million_rows", std::to_string(f.info.seconds / million));
  benchmark::AddCustomContext("store_bytes", std::to_string(f.info.bytes));
  benchmark::AddCustomContext("store_bytes_per_million_rows",
                              std::to_string(static_cast<double>(f.info.bytes) / million));
  benchmark::AddCustomContext("store_json_bytes_per_row",
                              std::to_string(static_cast<double>(f.info.json_bytes) / static_cast<double>(f.m.rows)));
  benchmark::AddCustomContext("store_popular_rows", std::to_string(f.popular_rows));
  for (const auto& [name, bytes] : f.info.object_bytes) {
    benchmark::AddCustomContext("store_object_bytes:" + name, std::to_string(bytes));
  }
  {
    sqlite3* db = open_raw(f.file);
    benchmark::AddCustomContext("query_plan", query_plan(db, find_by_hash_sql));
    sqlite3_close(db);
  }
  ratio_reporter display;
  benchmark::RunSpecifiedBenchmarks(&display);
  benchmark::Shutdown();
  f.store.reset();
  f.noindex.reset();
  return 0;
}
