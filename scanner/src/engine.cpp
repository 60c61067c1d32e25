#include "borderscan/scanner/engine.hpp"
#include "borderscan/scanner/versions.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <variant>

#include "borderscan/scanner/digest.hpp"
#include "borderscan/scanner/error.hpp"
#include "borderscan/scanner/object_scanner.hpp"
#include "borderscan/scanner/recursion_gate.hpp"
#include "borderscan/scanner/text.hpp"
#include "borderscan/scanner/scratch.hpp"
#include "digest.hpp"
#include "image_media.hpp"
#include "scan_context.hpp"
#include "tsk_image.hpp"
#include "unallocated.hpp"

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

using volume_list = std::vector<detail::volume_plan>;
// A file's content, or a chunk of unallocated space: both share the pass's
// workers, budget, cancellation and progress.
using work_item = std::variant<detail::walk_item, detail::unallocated_chunk>;
using item_queue = bounded_queue<work_item>;

// The walk's entries: content goes to the workers, the rest straight into the report.
class walk_feed final : public detail::walk_sink {
 public:
  walk_feed(detail::scan_context& ctx, item_queue& queue) : ctx_(ctx), queue_(queue) {}
  void item(detail::walk_item&& item) override {
    ctx_.found(item.content ? item.entry.size.value_or(0) : 0);
    if (item.content) {
      queue_.push(std::move(item));
    } else {
      ctx_.add_listed(std::move(item.entry));
    }
  }
  void error(error_entry&& e) override { ctx_.add_error(std::move(e)); }
  void warning(std::string&& w) override { ctx_.add_warning(std::move(w)); }
  void limit(limit_hit&& l) override { ctx_.add_limit(std::move(l)); }
  bool stop() override { return ctx_.stop_reason().has_value(); }

 private:
  detail::scan_context& ctx_;
  item_queue& queue_;
};

// What one worker thread owns: its libtsk handles, object scanner and gate.
struct worker_tools {
  std::unique_ptr<detail::tsk_image> image;
  std::unique_ptr<object_scanner> scanner;
  std::unique_ptr<recursion_gate> gate;
  std::vector<std::byte> chunk_buffer;  // unallocated space, one chunk at a time
  std::string setup_error;              // why the above could not be made
};

// What the workers saw of one area of unallocated space (a file system's,
// or a gap's); written by the workers, read once they are done.
struct area_tally {
  bool planned = false;     // the walker got to it (not stopped before)
  std::uint64_t bytes = 0;  // found by the walker
  std::atomic<std::uint64_t> scanned{0};
  std::atomic<bool> holds_data{false};
};

// One call of engine::scan: the image, the walk and the workers.
class image_scan {
 public:
  image_scan(const limits& lim, std::shared_ptr<const rule_set> rules,
             const std::vector<std::filesystem::path>& segments, const scan_options& options)
      : limits_(lim), rules_(std::move(rules)), segments_(segments), options_(options), start_(clock_type::now()) {}

  report run() {
    describe_request();
    if (const auto why = unusable_image()) {
      return fail(*why);
    }
    open_scratch();
    try {
      media_.emplace(segments_, scratch_.get(), limits_);
      walker_ = media_->open();
    } catch (const scan_error& e) {
      return fail(e.what());
    }
    describe_image();
    start_image_hash();
    walk_and_scan();
    record_image_hash();
    record_media();
    record_volumes();
    ctx_->finish_progress();
    return done();
  }

 private:
  void describe_request() {
    r_.scan_id = options_.scan_id;
    r_.station = options_.station;
    r_.scanner_version = BORDERSCAN_VERSION;
    r_.libraries = library_versions();
    r_.started_at = now_ms();
    r_.ruleset = rules_->info();
    r_.image.name = !options_.display_name.empty() ? options_.display_name
                    : segments_.empty()            ? std::string()
                                                   : escape_name(segments_.front().filename().string());
    for (const auto& s : segments_) {
      r_.image.segments.push_back(escape_name(s.filename().string()));
    }
  }

  // Why the named files cannot be scanned at all, if they cannot.
  std::optional<std::string> unusable_image() {
    if (segments_.empty()) {
      return "no image given";
    }
    std::uint64_t named_bytes = 0;
    for (const auto& s : segments_) {
      std::error_code ec;
      const auto n = std::filesystem::file_size(s, ec);
      if (ec) {
        return s.string() + ": " + ec.message();
      }
      named_bytes += n;
    }
    if (named_bytes == 0) {
      try {
        r_.image.sha256 = hash_segments(segments_);  // of zero bytes: still evidence of what was received
      } catch (const scan_error&) {
      }
      return "image is empty (no partition table, no file system)";
    }
    return std::nullopt;
  }

  // A scan without room for temporary files still runs; what needs one
  // (a virtual disk on the device, a compressed image) says so where it is.
  void open_scratch() {
    const std::filesystem::path dir =
        options_.work_dir.empty() ? std::filesystem::temp_directory_path() : options_.work_dir;
    try {
      scratch_ = std::make_unique<scratch_space>(dir, options_.work_dir_fd);
    } catch (const scan_error& e) {
      r_.warnings.push_back(std::string("no scratch folder: ") + e.what());
    }
  }

  void describe_image() {
    const auto container = media_->container();
    const bool through_libyal = container == detail::disk_container::qcow || container == detail::disk_container::vhdx;
    r_.image.format = through_libyal ? std::string(detail::container_name(*container)) : walker_->format();
    if (!media_->compression().empty()) {
      r_.image.compression = media_->compression();
    }
    // libtsk may have found more segments than were named (image.001 -> .002 ...);
    // what it opens from a decompressed or libyal image are not the files received.
    all_segments_ = through_libyal || !media_->compression().empty() ? segments_ : walker_->segments();
    r_.image.segments.clear();
    r_.image.size = 0;
    std::error_code ec;
    for (const auto& s : all_segments_) {
      r_.image.segments.push_back(escape_name(s.filename().string()));
      r_.image.size += std::filesystem::file_size(s, ec);
    }
  }

  // The image hash is one more sequential read of the whole image: let it
  // run beside the walk instead of before it.
  void start_image_hash() {
    if (valid_sha256(options_.image_sha256)) {
      r_.image.sha256 = lower(options_.image_sha256);
    } else {
      image_hash_ = std::async(std::launch::async, [segments = all_segments_] { return hash_segments(segments); });
    }
    // The device's bytes, read out of their container: one more pass beside the walk.
    media_hash_ =
        std::async(std::launch::async, [this, format = r_.image.format] { return media_->hash_media(format); });
  }

  void walk_and_scan() {
    if (options_.spill && options_.spill->size() != 0) {
      throw std::invalid_argument("scan_options::spill must be a fresh spill for each scan");
    }
    r_.spilled_files = options_.spill;
    ctx_.emplace(r_, limits_, options_, start_);
    walk_feed feed(*ctx_, queue_);
    volumes_ = walker_->discover_volumes(feed);
    gaps_ = walker_->gaps();
    // Areas of unallocated space: each volume's, then each gap's.
    tallies_ = std::vector<area_tally>(volumes_.size() + gaps_.size());
    const unsigned jobs = options_.jobs != 0 ? options_.jobs : std::max(1u, std::thread::hardware_concurrency());
    {
      std::vector<std::jthread> workers;
      for (unsigned i = 0; i < jobs; ++i) {
        workers.emplace_back([this] { work(); });
      }
      walk(feed);
      queue_.close();
    }  // joins the workers
    walker_.reset();
  }

  void walk(walk_feed& feed) {
    for (auto& v : volumes_) {
      try {
        walker_->walk(v, limits_, feed);
      } catch (const std::exception& e) {
        ctx_->add_error({"", v.entry.index, "walk", "internal", e.what(), true});
      }
    }
    plan_unallocated(feed);
  }

  // After every file: the gaps first (rarer, and suspect), then each file
  // system's free blocks, within max_unallocated_bytes.
  void plan_unallocated(walk_feed& feed) {
    if (limits_.max_unallocated_bytes == 0) {
      ctx_->add_warning("unallocated space and unpartitioned gaps not examined: max_unallocated_bytes is 0");
      return;
    }
    detail::unallocated_planner planner(limits_, walker_->size(), feed, [this](detail::unallocated_chunk&& c) {
      ctx_->found_unallocated(c.own_length);
      queue_.push(std::move(c));
    });
    for (std::size_t i = 0; i < gaps_.size() && !feed.stop(); ++i) {
      tallies_[volumes_.size() + i].bytes = gaps_[i].length;
      planner.add_gap(gaps_[i], volumes_.size() + i);
      tallies_[volumes_.size() + i].planned = true;
    }
    for (std::size_t i = 0; i < volumes_.size() && !feed.stop(); ++i) {
      if (volumes_[i].fs_type == 0) {
        continue;
      }
      try {
        tallies_[i].bytes = planner.add_filesystem(walker_->filesystem(volumes_[i]), volumes_[i], i);
        tallies_[i].planned = true;
      } catch (const std::exception& e) {
        ctx_->add_error({"/$Unallocated", volumes_[i].entry.index, "unallocated", "internal", e.what(), true});
      }
    }
  }

  // A worker thread: takes the walk's entries until the queue is closed.
  void work() {
    worker_tools tools = make_tools();
    while (auto item = queue_.pop()) {
      if (auto* file = std::get_if<detail::walk_item>(&*item)) {
        scan_item(tools, *file);
      } else {
        scan_chunk(tools, std::get<detail::unallocated_chunk>(*item));
      }
    }
  }

  void scan_chunk(worker_tools& tools, const detail::unallocated_chunk& chunk) {
    if (ctx_->stop_reason() || !tools.setup_error.empty()) {
      return;  // the stop is recorded already; the tally shows what went unread
    }
    detail::chunk_outcome out;
    try {
      out = detail::scan_unallocated_chunk(chunk, *tools.image, *tools.scanner, tools.chunk_buffer);
    } catch (const std::exception& e) {
      out.errors.push_back({detail::unallocated_path(chunk.area, chunk.image_offset(0)), chunk.area.volume,
                            "unallocated", "internal", e.what(), true});
    }
    area_tally& tally = tallies_[chunk.area.index];
    tally.scanned += out.bytes_read;
    if (out.holds_data) {
      tally.holds_data = true;
    }
    for (auto& f : out.findings) {
      ctx_->add_finding(std::move(f));
    }
    for (auto& e : out.errors) {
      ctx_->add_error(std::move(e));
    }
    ctx_->add_bytes(out.bytes_read);
  }

  worker_tools make_tools() {
    worker_tools t;
    try {
      t.image = media_->open();
      t.scanner = std::make_unique<object_scanner>(limits_, rules_, 4 << 20, 64 << 10, &yara_cache_, options_.evidence);
      t.gate = std::make_unique<recursion_gate>(limits_, *t.scanner, budget_, *ctx_, default_container_stages());
      t.gate->use_scratch(scratch_.get());
    } catch (const std::exception& e) {
      t.setup_error = e.what();
    }
    return t;
  }

  void scan_item(worker_tools& tools, detail::walk_item& item) {
    file_entry& entry = item.entry;
    object_outcome outcome;
    if (!tools.setup_error.empty()) {
      entry.skipped = "worker could not start";
      outcome.errors.push_back({entry.path, entry.volume, "engine", "internal", tools.setup_error, true});
    } else {
      detail::tsk_content content(*tools.image, volumes_[entry.volume], *item.content);
      tools.gate->scan_top(entry, content, outcome);
    }
    ctx_->finish_top(std::move(entry), std::move(outcome));
  }

  void record_image_hash() {
    if (!image_hash_.valid()) {
      return;
    }
    try {
      r_.image.sha256 = image_hash_.get();
    } catch (const std::exception& e) {
      // Without the image hash the report cannot name its evidence.
      r_.errors.push_back({"", std::nullopt, "image", "image_hash_failed", e.what(), true});
      r_.result = verdict::error;
      r_.verdict_reason = std::string("cannot hash the image: ") + e.what();
    }
  }

  void record_media() {
    if (media_->cut) {
      r_.limits_hit.push_back(*media_->cut);
      r_.warnings.push_back(
          "the decompressed image was cut at max_decompressed_image_bytes; the rest of the device "
          "was not examined");
    }
    media_info m;
    try {
      m = media_hash_.get();
    } catch (const std::exception& e) {
      r_.errors.push_back({"", std::nullopt, "image", "media_hash_failed",
                           std::string("cannot read the whole device out of the image: ") + e.what(), true});
      return;
    }
    if (m.sha256.empty()) {
      r_.image.media_sha256 = r_.image.sha256;  // received as is: the same bytes
      return;
    }
    r_.image.media_sha256 = m.sha256;
    if (m.acquisition_verified == false) {
      finding f;
      f.source = "heuristic";
      f.rule_namespace = "borderscan";
      f.rule = "acquisition_hash_mismatch";
      f.level = severity::high;
      f.tags = {"integrity"};
      f.meta = {{"description", "the device's bytes do not match the hashes the image stored when it was acquired"},
                {"stored_md5", m.stored_md5 ? nlohmann::json(*m.stored_md5) : nlohmann::json()},
                {"stored_sha1", m.stored_sha1 ? nlohmann::json(*m.stored_sha1) : nlohmann::json()},
                {"md5", *m.md5},
                {"sha1", *m.sha1}};
      r_.findings.push_back(std::move(f));
    }
    r_.image.media = std::move(m);
  }

  // Per-volume counts and the volume table.
  void record_volumes() {
    for (auto& v : volumes_) {
      if (r_.spilled_files) {
        v.entry.files += r_.spilled_files->files_in_volume(v.entry.index);
      }
      for (const auto& f : r_.files) {
        v.entry.files += f.volume == v.entry.index ? 1 : 0;
      }
      if (const area_tally& t = tallies_[v.entry.index]; t.planned) {
        v.entry.unallocated = unallocated_space{t.bytes, t.scanned};
      }
      r_.volumes.push_back(std::move(v.entry));
    }
    record_gaps();
    const bool any_filesystem = std::any_of(r_.volumes.begin(), r_.volumes.end(),
                                            [](const volume_entry& v) { return v.filesystem.has_value(); });
    if (!any_filesystem) {
      // Nothing could be examined as files: such a scan must never read as clean.
      r_.errors.push_back(
          {"", std::nullopt, "image", "no_filesystem",
           "no recognised file system in any of the " + std::to_string(r_.volumes.size()) + " volume(s) of the image",
           true});
    }
  }

  // Each gap in the report, noted on its neighbours; one holding data (or
  // not read) is also a warning.
  void record_gaps() {
    for (std::size_t i = 0; i < gaps_.size(); ++i) {
      const detail::layout_gap& g = gaps_[i];
      const area_tally& t = tallies_[volumes_.size() + i];
      gap_entry e{g.offset, g.length, g.after, g.before, "unknown", t.scanned};
      if (t.holds_data) {
        e.content = "data";
      } else if (t.scanned == g.length) {
        e.content = "zero";
      }
      const std::string where = "unpartitioned gap at bytes " + std::to_string(g.offset) + "-" +
                                std::to_string(g.offset + g.length - 1) + " (" + std::to_string(g.length) + " bytes)";
      const std::string what = e.content == "zero"   ? "all zeros"
                               : e.content == "data" ? "holds data; YARA-scanned as $Gap@OFFSET"
                                                     : "not read (" + std::to_string(t.scanned) + " bytes scanned)";
      for (const auto& neighbour : {g.after, g.before}) {
        if (neighbour) {
          r_.volumes[*neighbour].notes.push_back(where + ": " + what);
        }
      }
      if (e.content != "zero") {
        r_.warnings.push_back(where + ": " + what);
      }
      r_.gaps.push_back(std::move(e));
    }
  }

  report fail(const std::string& why) {
    r_.result = verdict::error;
    r_.verdict_reason = why;
    r_.errors.push_back({"", std::nullopt, "image", "image_open_failed", why, true});
    return done();
  }

  report done() {
    r_.finished_at = now_ms();
    r_.duration_ms = std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - start_).count();
    finalize(r_, limits_.flag_threshold);
    return std::move(r_);
  }

  const limits& limits_;
  std::shared_ptr<const rule_set> rules_;
  const std::vector<std::filesystem::path>& segments_;
  const scan_options& options_;
  const clock_type::time_point start_;
  report r_;
  std::unique_ptr<scratch_space> scratch_;
  std::optional<detail::image_media> media_;  // after scratch_: its decompressed copy lives there
  std::unique_ptr<detail::tsk_image> walker_;
  std::vector<std::filesystem::path> all_segments_;
  std::future<std::string> image_hash_;
  std::future<media_info> media_hash_;
  volume_list volumes_;
  std::vector<detail::layout_gap> gaps_;
  std::vector<area_tally> tallies_;
  std::optional<detail::scan_context> ctx_;
  item_queue queue_{4096};
  expansion_budget budget_;
  yara_result_cache yara_cache_;
};

}  // namespace

engine::engine(limits lim, std::shared_ptr<const rule_set> rules) : limits_(lim), rules_(std::move(rules)) {
  if (!rules_) {
    throw scan_error(scan_errc::internal, "engine needs a rule set");
  }
}

report engine::scan(const std::vector<std::filesystem::path>& segments, const scan_options& options) const {
  return image_scan(limits_, rules_, segments, options).run();
}

}  // namespace borderscan::scanner
