#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <vector>

#include "borderscan/scanner/digest.hpp"
#include "borderscan/server/upload.hpp"

namespace borderscan::server {

struct background_sha256::impl {
  impl(std::size_t chunk, std::size_t queue) : chunk_bytes(chunk), max_queued(queue) { filling.reserve(chunk_bytes); }

  // The hashing thread: queued chunks in order, until closed and drained.
  void run() {
    std::unique_lock lock(mutex);
    for (;;) {
      changed.wait(lock, [&] { return closing || !queued.empty(); });
      if (queued.empty()) {
        return;
      }
      std::vector<char> chunk = std::move(queued.front());
      queued.pop_front();
      lock.unlock();
      hasher.update(chunk.data(), chunk.size());
      lock.lock();
      chunk.clear();
      spare.push_back(std::move(chunk));
      changed.notify_all();
    }
  }

  // `filling` is full: queue it (waiting while the queue is full) and take a spare buffer.
  void hand_over() {
    if (!thread.joinable()) {
      try {
        thread = std::thread([this] { run(); });
      } catch (const std::system_error&) {
        hasher.update(filling.data(), filling.size());  // no thread to be had: hash here
        filling.clear();
        return;
      }
    }
    std::unique_lock lock(mutex);
    changed.wait(lock, [&] { return queued.size() < max_queued; });
    queued.push_back(std::move(filling));
    std::vector<char> next;
    if (!spare.empty()) {
      next = std::move(spare.back());
      spare.pop_back();
    }
    lock.unlock();
    changed.notify_all();
    filling = std::move(next);
    filling.reserve(chunk_bytes);
  }

  void stop_thread() {
    if (thread.joinable()) {
      {
        std::lock_guard lock(mutex);
        closing = true;
      }
      changed.notify_all();
      thread.join();
    }
  }

  const std::size_t chunk_bytes;
  const std::size_t max_queued;
  scanner::sha256_hasher hasher;  // used by the thread while it runs, by the owner after
  std::vector<char> filling;
  std::thread thread;
  std::mutex mutex;
  std::condition_variable changed;
  std::deque<std::vector<char>> queued;  // guarded by mutex
  std::vector<std::vector<char>> spare;  // guarded by mutex
  bool closing = false;                  // guarded by mutex
};

background_sha256::background_sha256(std::size_t chunk_bytes, std::size_t max_queued)
    : impl_(std::make_unique<impl>(chunk_bytes, max_queued)) {}

background_sha256::~background_sha256() {
  impl_->stop_thread();
}

void background_sha256::update(const void* data, std::size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const std::size_t take = std::min(size, impl_->chunk_bytes - impl_->filling.size());
    impl_->filling.insert(impl_->filling.end(), p, p + take);
    p += take;
    size -= take;
    if (impl_->filling.size() == impl_->chunk_bytes) {
      impl_->hand_over();
    }
  }
}

std::string background_sha256::hex_digest() {
  impl_->stop_thread();
  impl_->hasher.update(impl_->filling.data(), impl_->filling.size());
  impl_->filling.clear();
  return impl_->hasher.hex_digest();
}

}  // namespace borderscan::server
