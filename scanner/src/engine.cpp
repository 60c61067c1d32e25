#include "borderscan/scanner/engine.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <future>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "borderscan/scanner/archive.hpp"
#include "borderscan/scanner/digest.hpp"
#include "borderscan/scanner/error.hpp"
#include "borderscan/scanner/object_scanner.hpp"
#include "borderscan/scanner/text.hpp"
#include "digest.hpp"
#include "tsk_image.hpp"

namespace borderscan::scanner {
namespace {

using clock_type = std::chrono::steady_clock;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Hashes the image file(s) as stored, in segment order.
std::string hash_segments(const std::vector<std::filesystem::path>& segments) {
  sha256_hasher h;
  std::vector<char> buf(1 << 20);
  for (const auto& s : segments) {
    std::ifstream in(s, std::ios::binary);
    if (!in) {
      throw scan_error(scan_errc::image_open_failed, s.string() + ": cannot read");
    }
    while (in) {
      in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
      h.update(std::as_bytes(std::span(buf.data(), static_cast<std::size_t>(in.gcount()))));
    }
  }
  return to_hex(h.finish());
}

bool valid_sha256(std::string_view hex) {
  return hex.size() == 64 &&
         std::all_of(hex.begin(), hex.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// A bounded queue between the walker and the workers: memory stays flat
// however many files the image holds.
template <class T>
class bounded_queue {
 public:
  explicit bounded_queue(std::size_t capacity) : capacity_(capacity) {}
  void push(T&& item) {
    std::unique_lock lock(mutex_);
    not_full_.wait(lock, [&] { return items_.size() < capacity_; });
    items_.push_back(std::move(item));
    not_empty_.notify_one();
  }
  std::optional<T> pop() {
    std::unique_lock lock(mutex_);
    not_empty_.wait(lock, [&] { return !items_.empty() || closed_; });
    if (items_.empty()) {
      return std::nullopt;
    }
    T item = std::move(items_.front());
    items_.pop_front();
    not_full_.notify_one();
    return item;
  }
  void close() {
    std::lock_guard lock(mutex_);
    closed_ = true;
    not_empty_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable not_full_, not_empty_;
  std::deque<T> items_;
  std::size_t capacity_;
  bool closed_ = false;
};

struct task {
  detail::walk_item item;
};

}  // namespace

engine::engine(limits lim, std::shared_ptr<const rule_set> rules) : limits_(lim), rules_(std::move(rules)) {
  if (!rules_) {
    throw scan_error(scan_errc::internal, "engine needs a rule set");
  }
}

report engine::scan(const std::vector<std::filesystem::path>& segments, const scan_options& options) const {
  report r;
  r.scan_id = options.scan_id;
  r.station = options.station;
  r.scanner_version = BORDERSCAN_VERSION;
  r.started_at = now_ms();
  r.ruleset = rules_->info();
  r.image.name = !options.display_name.empty() ? options.display_name
                 : segments.empty()            ? std::string()
                                               : escape_name(segments.front().filename().string());
  for (const auto& s : segments) {
    r.image.segments.push_back(escape_name(s.filename().string()));
  }
  const auto start = clock_type::now();
  const auto deadline = limits_.scan_timeout_seconds > 0 ? start + std::chrono::seconds(limits_.scan_timeout_seconds)
                                                         : clock_type::time_point::max();

  auto fail = [&](const std::string& why) {
    r.result = verdict::error;
    r.verdict_reason = why;
    r.errors.push_back({"", std::nullopt, "image", "image_open_failed", why, true});
    r.finished_at = now_ms();
    r.duration_ms = std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - start).count();
    finalize(r, limits_.flag_threshold);
    return r;
  };

  if (segments.empty()) {
    return fail("no image given");
  }
  std::error_code ec;
  std::uint64_t named_bytes = 0;
  for (const auto& s : segments) {
    const auto n = std::filesystem::file_size(s, ec);
    if (ec) {
      return fail(s.string() + ": " + ec.message());
    }
    named_bytes += n;
  }
  if (named_bytes == 0) {
    try {
      r.image.sha256 = hash_segments(segments);  // of zero bytes: still evidence of what was received
    } catch (const scan_error&) {
    }
    return fail("image is empty (no partition table, no file system)");
  }

  std::unique_ptr<detail::tsk_image> walker_image;
  try {
    walker_image = std::make_unique<detail::tsk_image>(segments);
  } catch (const scan_error& e) {
    return fail(e.what());
  }
  r.image.format = walker_image->format();
  // libtsk may have found more segments than were named (image.001 -> .002 ...).
  const std::vector<std::filesystem::path> all_segments = walker_image->segments();
  r.image.segments.clear();
  r.image.size = 0;
  for (const auto& s : all_segments) {
    r.image.segments.push_back(escape_name(s.filename().string()));
    r.image.size += std::filesystem::file_size(s, ec);
  }
  // The image hash is one more sequential read of the whole image: let it
  // run beside the walk instead of before it.
  std::future<std::string> image_hash;
  if (valid_sha256(options.image_sha256)) {
    r.image.sha256 = lower(options.image_sha256);
  } else {
    image_hash = std::async(std::launch::async, [all_segments] { return hash_segments(all_segments); });
  }

  // Everything the threads report lands here under one mutex.
  std::mutex result_mutex;
  std::atomic<bool> stop_requested{false};
  std::string stop_reason;
  scan_progress progress;
  auto last_progress = clock_type::now();
  std::atomic<std::uint64_t> bytes_done{0}, files_done{0}, files_found{0}, bytes_total{0};

  auto emit_progress = [&](bool force) {
    if (!options.on_progress) {
      return;
    }
    std::lock_guard lock(result_mutex);
    const auto now = clock_type::now();
    if (!force && now - last_progress < std::chrono::milliseconds(100)) {
      return;
    }
    last_progress = now;
    progress.files_done = files_done;
    progress.files_found = files_found;
    progress.bytes_done = bytes_done;
    progress.bytes_total = bytes_total;
    options.on_progress(progress);
  };

  auto should_stop = [&]() -> bool {
    if (stop_requested.load()) {
      return true;
    }
    const char* why = nullptr;
    if (options.cancel != nullptr && options.cancel->load()) {
      why = "cancelled";
    } else if (clock_type::now() >= deadline) {
      why = "scan_timeout";
    }
    if (why == nullptr) {
      return false;
    }
    std::lock_guard lock(result_mutex);
    if (!stop_requested.exchange(true)) {
      stop_reason = why;
      r.limits_hit.push_back(
          {why, why == std::string("cancelled") ? "requested" : std::to_string(limits_.scan_timeout_seconds) + " s", "",
           std::nullopt});
    }
    return true;
  };

  if (options.spill && options.spill->size() != 0) {
    throw std::invalid_argument("scan_options::spill must be a fresh spill for each scan");
  }
  r.spilled_files = options.spill;
  // Called with result_mutex held.
  bool spill_failed = false;
  auto keep_file = [&](file_entry&& f) {
    if (r.spilled_files && !spill_failed) {
      try {
        r.spilled_files->add(f);
        return;
      } catch (const std::exception& e) {
        // Later entries stay in memory; the spilled ones stay where they are
        // and the report merges both. Nothing is lost, and the report says
        // why memory grew.
        spill_failed = true;
        r.warnings.push_back(std::string("report entries kept in memory from here on: ") + e.what());
      }
    }
    r.files.push_back(std::move(f));
  };

  detail::walk_sink sink;
  sink.error = [&](error_entry&& e) {
    std::lock_guard lock(result_mutex);
    r.errors.push_back(std::move(e));
  };
  sink.warning = [&](std::string&& w) {
    std::lock_guard lock(result_mutex);
    r.warnings.push_back(std::move(w));
  };
  sink.limit = [&](limit_hit&& l) {
    std::lock_guard lock(result_mutex);
    r.limits_hit.push_back(std::move(l));
  };
  sink.stop = should_stop;

  std::vector<detail::volume_plan> volumes = walker_image->discover_volumes(sink);

  const unsigned jobs = options.jobs != 0 ? options.jobs : std::max(1u, std::thread::hardware_concurrency());
  bounded_queue<task> queue(4096);

  expansion_budget budget;
  yara_result_cache yara_cache;
  auto worker = [&]() {
    std::unique_ptr<detail::tsk_image> image;
    std::unique_ptr<object_scanner> scanner;
    std::unique_ptr<container_expander> expander;
    std::string setup_error;
    try {
      image = std::make_unique<detail::tsk_image>(segments);
      scanner = std::make_unique<object_scanner>(limits_, rules_, 4 << 20, 64 << 10, &yara_cache);
      expander = std::make_unique<container_expander>(limits_, *scanner, budget);
    } catch (const std::exception& e) {
      setup_error = e.what();
    }
    expansion_sink members;
    members.member = [&](file_entry&& m) {
      ++files_found;
      ++files_done;
      std::lock_guard lock(result_mutex);
      keep_file(std::move(m));
    };
    members.error = [&](error_entry&& e) {
      std::lock_guard lock(result_mutex);
      r.errors.push_back(std::move(e));
    };
    members.limit = [&](limit_hit&& l) {
      std::lock_guard lock(result_mutex);
      r.limits_hit.push_back(std::move(l));
    };
    members.stop = should_stop;
    members.on_bytes = [&](std::uint64_t n) {
      bytes_done += n;
      emit_progress(false);
    };
    while (auto t = queue.pop()) {
      file_entry& entry = t->item.entry;
      std::vector<error_entry> errors;
      std::vector<limit_hit> limit_hits;
      if (!setup_error.empty()) {
        entry.skipped = "worker could not start";
        errors.push_back({entry.path, entry.volume, "engine", "internal", setup_error, true});
      } else if (should_stop()) {
        entry.skipped = stop_reason == "cancelled" ? "cancelled" : "scan deadline passed";
      } else {
        try {
          auto source = image->open(volumes[entry.volume], *t->item.content);
          auto outcome = scanner->scan(entry, *source, [&](std::uint64_t n) {
            bytes_done += n;
            emit_progress(false);
          });
          errors = std::move(outcome.errors);
          limit_hits = std::move(outcome.limits);
          if (is_expandable(entry)) {
            expander->expand(entry, *source, members);
          }
        } catch (const scan_error& e) {
          errors.push_back({entry.path, entry.volume, "read", to_string(static_cast<scan_errc>(e.code().value())),
                            e.what(), !entry.deleted});
        } catch (const std::exception& e) {
          errors.push_back({entry.path, entry.volume, "engine", "internal", e.what(), true});
        }
      }
      ++files_done;
      {
        std::lock_guard lock(result_mutex);
        keep_file(std::move(entry));
        for (auto& e : errors) {
          r.errors.push_back(std::move(e));
        }
        for (auto& l : limit_hits) {
          r.limits_hit.push_back(std::move(l));
        }
      }
      emit_progress(false);
    }
  };

  std::vector<std::jthread> workers;
  for (unsigned i = 0; i < jobs; ++i) {
    workers.emplace_back(worker);
  }

  sink.item = [&](detail::walk_item&& item) {
    ++files_found;
    if (item.content) {
      bytes_total += item.entry.size.value_or(0);
      queue.push(task{std::move(item)});
    } else {
      ++files_done;
      std::lock_guard lock(result_mutex);
      keep_file(std::move(item.entry));
    }
  };

  for (auto& v : volumes) {
    try {
      walker_image->walk(v, limits_, sink);
    } catch (const std::exception& e) {
      std::lock_guard lock(result_mutex);
      r.errors.push_back({"", v.entry.index, "walk", "internal", e.what(), true});
    }
  }
  queue.close();
  workers.clear();  // joins
  walker_image.reset();

  if (image_hash.valid()) {
    try {
      r.image.sha256 = image_hash.get();
    } catch (const std::exception& e) {
      // Without the image hash the report cannot name its evidence.
      r.errors.push_back({"", std::nullopt, "image", "image_hash_failed", e.what(), true});
      r.result = verdict::error;
      r.verdict_reason = std::string("cannot hash the image: ") + e.what();
    }
  }

  // Per-volume counts and the volume table.
  for (auto& v : volumes) {
    if (r.spilled_files) {
      v.entry.files += r.spilled_files->files_in_volume(v.entry.index);
    }
    for (const auto& f : r.files) {
      v.entry.files += f.volume == v.entry.index ? 1 : 0;
    }
    r.volumes.push_back(std::move(v.entry));
  }
  const bool any_filesystem =
      std::any_of(r.volumes.begin(), r.volumes.end(), [](const volume_entry& v) { return v.filesystem.has_value(); });
  if (!any_filesystem) {
    // Nothing could be examined as files: such a scan must never read as clean.
    r.errors.push_back(
        {"", std::nullopt, "image", "no_filesystem",
         "no recognised file system in any of the " + std::to_string(r.volumes.size()) + " volume(s) of the image",
         true});
  }
  progress.walk_done = true;
  emit_progress(true);
  r.finished_at = now_ms();
  r.duration_ms = std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - start).count();
  finalize(r, limits_.flag_threshold);
  return r;
}

}  // namespace borderscan::scanner
