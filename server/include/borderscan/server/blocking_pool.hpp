#pragma once
// A few threads for work that may block on the disk (fdatasync, SQLite, file
// reads), so that the HTTP I/O threads never wait for it (clamd's
// execute_or_dispatch_command). Admission is bounded: try_post refuses new
// work once `max_queued` tasks wait, and the caller answers 503; post, for
// work that continues something already admitted (the end of an upload, the
// next piece of a body), never refuses. Tasks must not throw; one that does
// is logged and dropped. Thread-safe. Created in main() and passed by
// reference; it must outlive everything that posts to it.

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <mutex>
#include <type_traits>
#include <utility>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

namespace borderscan::server {

class blocking_pool {
 public:
  blocking_pool(unsigned threads, std::size_t max_queued);
  // Runs what is queued, then joins the threads.
  ~blocking_pool();
  blocking_pool(const blocking_pool&) = delete;
  blocking_pool& operator=(const blocking_pool&) = delete;

  // New work: false, and `task` is not run, when max_queued tasks already wait.
  template <class Task>
  bool try_post(Task&& task) {
    if (pending_.fetch_add(1) >= max_queued_) {
      done_one();
      return false;
    }
    enqueue(std::forward<Task>(task));
    return true;
  }

  // Work that continues an admitted request: never refused.
  template <class Task>
  void post(Task&& task) {
    pending_.fetch_add(1);
    enqueue(std::forward<Task>(task));
  }

  // Blocks until no task waits or runs and what each held is released (the
  // HTTP server's stop, before its io_context goes away: a task may still
  // post back to it).
  void wait_idle();
  std::size_t pending() const noexcept { return pending_.load(); }

 private:
  template <class Task>
  void enqueue(Task&& task) {
    boost::asio::post(pool_, [this, task = std::decay_t<Task>(std::forward<Task>(task))]() mutable {
      {
        // What the task holds is released before it counts as done: once
        // wait_idle returns, nothing of it may touch its poster.
        auto running = std::move(task);
        try {
          running();
        } catch (...) {
          log_escaped(std::current_exception());
        }
      }
      done_one();
    });
  }

  void done_one();
  static void log_escaped(std::exception_ptr error) noexcept;

  const std::size_t max_queued_;
  std::atomic<std::size_t> pending_{0};  // queued or running
  std::mutex mutex_;
  std::condition_variable idle_;
  boost::asio::thread_pool pool_;
};

}  // namespace borderscan::server
