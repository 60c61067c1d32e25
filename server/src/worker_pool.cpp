#include "borderscan/server/worker_pool.hpp"

#include <algorithm>
#include <condition_variable>
#include <filesystem>
#include <mutex>

#include <spdlog/spdlog.h>

namespace borderscan::server {

worker_pool::worker_pool(job_queue& queue, scan_runner& runner, report_store& store, report_ingest& ingest,
                         metrics& stats, const clock& clk, worker_settings settings)
    : queue_(queue),
      runner_(runner),
      store_(store),
      ingest_(ingest),
      metrics_(stats),
      clock_(clk),
      settings_(settings) {}

worker_pool::~worker_pool() {
  drain(std::chrono::milliseconds(0));
}

void worker_pool::start() {
  for (unsigned i = 0; i < settings_.workers; ++i) {
    threads_.emplace_back([this, token = stop_.get_token()] { do_work(token); });
  }
  lease_keeper_ = std::jthread([this](std::stop_token stop) {
    // A third of the lease: two renewals may fail (a slow store) before it lapses.
    const auto interval = std::chrono::milliseconds(std::max<std::int64_t>(queue_.lease().length_ms / 3, 10));
    std::mutex m;
    std::condition_variable_any wake;
    std::unique_lock lock(m);
    while (true) {
      wake.wait_for(lock, stop, interval, [] { return false; });
      if (stop.stop_requested()) {
        return;
      }
      try {
        queue_.keep_leases(settings_.max_attempts,
                           settings_.retention.keep_all ? 0 : settings_.retention.keep_failed_ms);
      } catch (const std::exception& e) {
        spdlog::error("cannot renew the leases of running scans: {}", e.what());
      }
    }
  });
}

void worker_pool::drain(std::chrono::milliseconds grace) {
  if (threads_.empty()) {
    lease_keeper_ = std::jthread();
    return;
  }
  stop_.request_stop();
  const auto deadline = std::chrono::steady_clock::now() + grace;
  // Polling keeps the pool free of a second condition variable; drain runs once.
  while (queue_.running() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (queue_.running() > 0) {
    spdlog::warn("shutdown: {} scan(s) still running after the grace period; stopping them and queueing them again",
                 queue_.running());
    queue_.stop_all(stop_reason::shutdown);
  }
  threads_.clear();  // joins
  // Leases are kept while scans run in the grace period; not after.
  lease_keeper_ = std::jthread();
}

void worker_pool::do_work(std::stop_token stop) {
  while (std::shared_ptr<job_state> job = queue_.next(stop)) {
    run_one(*job);
    queue_.finished(job);
  }
}

void worker_pool::retire(const scan_record& scan, scan_outcome outcome) const {
  try {
    retire_image(store_, clock_, settings_.retention, scan, outcome);
  } catch (const std::exception& e) {
    // Not recording the retention leaves the image on the spool: the start-up
    // sweep deletes it, never a report.
    spdlog::error("job={} cannot record the image's retention: {}", scan.id, e.what());
  }
}

namespace {

// Sleeps `delay`, or less once `stop()` holds.
template <typename Stop>
void wait_unless(std::chrono::milliseconds delay, Stop stop) {
  const auto until = std::chrono::steady_clock::now() + delay;
  while (std::chrono::steady_clock::now() < until && !stop()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace

// A step of storing a report. A malformed report (scan_failed) fails at
// once; other errors (a full disk, a store that refuses writes) are tried
// again with backoff while the scan stays running, and /readyz says why. The
// last failure ends the scan `failed` (record_outcome), without running it
// again: the scan worked, its report could not be kept.
template <typename Step>
auto worker_pool::store_step(const job_state& job, const char* what, Step step) const {
  auto delay = settings_.store_retry_first_delay;
  for (unsigned attempt = 1;; ++attempt) {
    try {
      auto out = step();
      if (settings_.health != nullptr) {
        settings_.health->recovered();
      }
      return out;
    } catch (const scan_failed&) {
      throw;
    } catch (const std::exception& e) {
      const std::string& id = job.scan().id;
      if (settings_.health != nullptr) {
        settings_.health->failing(std::string(what) + " of scan " + id + " failed: " + e.what());
      }
      if (job.cancel_flag().load()) {
        throw;  // shutdown or cancel: run_one's handler decides
      }
      if (attempt >= settings_.store_attempts) {
        throw scan_failed(std::string(what) + " failed " + std::to_string(attempt) + " times; last: " + e.what());
      }
      spdlog::warn("job={} state=storing attempt={} of {}: {} failed: {}; next try in {} ms", id, attempt,
                   settings_.store_attempts, what, e.what(), delay.count());
      wait_unless(delay, [&] { return job.cancel_flag().load(); });  // cancel or shutdown
      delay *= 4;
    }
  }
}

// Records how a scan ended (failed, queued again, cancelled). A store that
// refuses writes (a full disk) is tried again with backoff, at most a minute
// apart, until the record lands: no scan stays `running` with nobody working
// on it, its lease renewed by this node for ever. /readyz says why meanwhile.
// Only a shutdown stops trying; start-up recovery then queues the scan again.
void worker_pool::record_outcome(const job_state& job, const std::function<void()>& write) const {
  constexpr std::chrono::milliseconds longest_wait{60'000};
  auto delay = settings_.store_retry_first_delay;
  for (unsigned attempt = 1;; ++attempt) {
    try {
      write();
      if (attempt > 1 && settings_.health != nullptr) {
        settings_.health->recovered();
      }
      return;
    } catch (const std::exception& e) {
      const std::string& id = job.scan().id;
      if (settings_.health != nullptr) {
        settings_.health->failing("recording the outcome of scan " + id + " failed: " + e.what());
      }
      // Stopped by the shutdown (a cancelled scan keeps its reason, hence the flag).
      const auto stopping = [&] {
        return job.reason() == stop_reason::shutdown || (stop_.stop_requested() && job.cancel_flag().load());
      };
      if (stopping()) {
        spdlog::error("job={} cannot record the outcome: {}; shutting down, start-up recovery queues it again", id,
                      e.what());
        return;
      }
      spdlog::error("job={} state=recording attempt={}: recording the outcome failed: {}; next try in {} ms", id,
                    attempt, e.what(), delay.count());
      // A cancel meanwhile changes the record to write, not the pace.
      wait_unless(delay, stopping);
      delay = std::min(delay * 4, longest_wait);
    }
  }
}

void worker_pool::run_one(job_state& job) {
  const scan_record& scan = job.scan();
  // A report that was not stored (cancel, shutdown, failure) is not kept.
  const auto leftover = [path = report_path_for(scan), pack = evidence_pack_path_for(scan)](auto*) {
    std::error_code ignored;
    std::filesystem::remove(path, ignored);
    std::filesystem::remove(pack, ignored);
  };
  const std::unique_ptr<const scan_record, decltype(leftover)> remove_leftover(&scan, leftover);
  spdlog::info("job={} state=running attempt={} station='{}' size={}", scan.id, scan.attempts, scan.station,
               scan.image_size);
  const auto t0 = std::chrono::steady_clock::now();
  try {
    // Other nodes show this scan's progress from the store: written at most once a second.
    auto last_written = std::chrono::steady_clock::now() - std::chrono::seconds(1);
    std::mutex last_written_mutex;  // the scanner may report from several threads
    const auto on_progress = [&](const scanner::scan_progress& p) {
      job.set_progress(p);
      std::unique_lock lock(last_written_mutex, std::try_to_lock);
      if (const auto now = std::chrono::steady_clock::now();
          lock.owns_lock() && now - last_written >= std::chrono::seconds(1)) {
        last_written = now;
        try {
          store_.set_progress(scan.id, nlohmann::json{{"files_done", p.files_done},
                                                      {"files_found", p.files_found},
                                                      {"bytes_done", p.bytes_done},
                                                      {"bytes_total", p.bytes_total}}
                                           .dump());
        } catch (const std::exception& e) {
          spdlog::warn("job={} cannot write its progress to the store: {}", scan.id, e.what());
        }
      }
    };
    const report_file file = runner_.run({scan, job.cancel_flag(), on_progress});
    switch (job.reason()) {
      case stop_reason::cancelled:
        store_.mark_cancelled(scan.id, clock_.now_ms(), job.cancelled_by());
        metrics_.on_scan_failed();
        retire(scan, scan_outcome::cancelled);
        spdlog::info("job={} state=cancelled by={}", scan.id, job.cancelled_by().name);
        return;
      case stop_reason::shutdown:
        queue_.requeue(scan.id, "interrupted by shutdown", false);
        spdlog::info("job={} state=queued reason='interrupted by shutdown'", scan.id);
        return;
      case stop_reason::lease_lost:
        spdlog::warn("job={} stopped: its lease lapsed and another node took it over", scan.id);
        return;
      case stop_reason::none:
        break;
    }
    stored_report report =
        store_step(job, "storing the report", [&] { return ingest_.ingest(scan, file, runner_.flag_threshold()); });
    if (settings_.debug_store_hold.count() > 0) {
      spdlog::info("job={} state=storing report stored, held {} ms before it is recorded done (a test seam)", scan.id,
                   settings_.debug_store_hold.count());
      wait_unless(settings_.debug_store_hold, [&] { return job.cancel_flag().load(); });
    }
    store_step(job, "recording the scan done", [&] {
      store_.complete(scan.id, report, clock_.now_ms());
      return true;
    });
    if (!report.evidence.empty()) {
      for (auto& e : report.evidence) {
        e.kept_until =
            settings_.evidence_keep_ms > 0 ? std::optional(clock_.now_ms() + settings_.evidence_keep_ms) : std::nullopt;
      }
      store_.add_evidence(scan.id, report.evidence, clock_.now_ms());
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    metrics_.on_scan_done(report.verdict, seconds, report.files, report.bytes);
    retire(scan, report.verdict == "flagged" ? scan_outcome::flagged : scan_outcome::done);
    spdlog::info("job={} state=done verdict={} score={} files={} seconds={:.3f} ruleset={} report_sha256={}", scan.id,
                 report.verdict, report.score, report.files, seconds, report.ruleset_digest, report.sha256);
  } catch (const std::exception& e) {
    record_outcome(job, [&] {
      if (job.reason() == stop_reason::lease_lost) {
        spdlog::warn("job={} stopped: its lease lapsed and another node took it over", scan.id);
      } else if (job.reason() == stop_reason::shutdown) {
        queue_.requeue(scan.id, "interrupted by shutdown", false);
        spdlog::info("job={} state=queued reason='interrupted by shutdown'", scan.id);
      } else if (job.reason() == stop_reason::cancelled) {
        store_.mark_cancelled(scan.id, clock_.now_ms(), job.cancelled_by());
        metrics_.on_scan_failed();
        retire(scan, scan_outcome::cancelled);
        spdlog::info("job={} state=cancelled by={}", scan.id, job.cancelled_by().name);
      } else if (dynamic_cast<const scan_failed*>(&e) != nullptr) {
        store_.fail(scan.id, e.what(), clock_.now_ms());
        metrics_.on_scan_failed();
        spdlog::error("job={} state=failed reason='{}'", scan.id, e.what());
        retire(scan, scan_outcome::failed);
      } else if (scan.attempts >= settings_.max_attempts) {
        const std::string reason = "gave up after " + std::to_string(scan.attempts) + " attempts; last: " + e.what();
        store_.fail(scan.id, reason, clock_.now_ms());
        metrics_.on_scan_failed();
        spdlog::error("job={} state=failed reason='{}'", scan.id, reason);
        retire(scan, scan_outcome::failed);
      } else {
        queue_.requeue(scan.id, e.what(), true);
        metrics_.on_scan_retried();
        spdlog::warn("job={} state=queued attempt={} failed: {}", scan.id, scan.attempts, e.what());
      }
    });
  }
}

}  // namespace borderscan::server
