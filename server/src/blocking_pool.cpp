#include "borderscan/server/blocking_pool.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

namespace borderscan::server {

blocking_pool::blocking_pool(unsigned threads, std::size_t max_queued)
    : max_queued_(max_queued), pool_(std::max(1U, threads)) {}

blocking_pool::~blocking_pool() {
  pool_.join();
}

void blocking_pool::wait_idle() {
  std::unique_lock lock(mutex_);
  idle_.wait(lock, [&] { return pending_.load() == 0; });
}

void blocking_pool::done_one() {
  if (pending_.fetch_sub(1) == 1) {
    // Under the lock, so that wait_idle cannot miss the wake-up between its
    // check and its wait.
    std::lock_guard lock(mutex_);
    idle_.notify_all();
  }
}

void blocking_pool::log_escaped(std::exception_ptr error) noexcept {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    spdlog::error("blocking pool: a task failed: {}", e.what());
  } catch (...) {
    spdlog::error("blocking pool: a task failed with an unknown exception");
  }
}

}  // namespace borderscan::server
