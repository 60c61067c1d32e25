#include <openssl/evp.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <vector>

#include "borderscan/server/upload.hpp"

namespace borderscan::server {

struct sha256_hasher::impl {
  EVP_MD_CTX* ctx = nullptr;
  ~impl() { EVP_MD_CTX_free(ctx); }
};

sha256_hasher::sha256_hasher() : impl_(std::make_unique<impl>()) {
  impl_->ctx = EVP_MD_CTX_new();
  if (impl_->ctx == nullptr || EVP_DigestInit_ex(impl_->ctx, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("cannot initialise SHA-256");
  }
}

sha256_hasher::~sha256_hasher() = default;

void sha256_hasher::update(const void* data, std::size_t size) {
  EVP_DigestUpdate(impl_->ctx, data, size);
}

std::string sha256_hasher::hex_digest() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(impl_->ctx, md, &n);
  return to_hex(std::string_view(reinterpret_cast<const char*>(md), n));
}

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
  sha256_hasher hasher;  // used by the thread while it runs, by the owner after
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

std::string to_hex(std::string_view bytes) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += hex[c >> 4];
    out += hex[c & 0xF];
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) {
    return std::nullopt;
  }
  const auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') {
      return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
      return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
      return c - '0' + 52;
    }
    if (c == '+') {
      return 62;
    }
    if (c == '/') {
      return 63;
    }
    return -1;
  };
  std::string out;
  for (std::size_t i = 0; i < text.size(); i += 4) {
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = text[i + static_cast<std::size_t>(k)];
      if (c == '=' && i + 4 == text.size() && k >= 2) {
        v[k] = 0;
        ++pad;
        continue;
      }
      if (pad > 0) {
        return std::nullopt;  // data after padding
      }
      v[k] = value(c);
      if (v[k] < 0) {
        return std::nullopt;
      }
    }
    const unsigned triple = (static_cast<unsigned>(v[0]) << 18) | (static_cast<unsigned>(v[1]) << 12) |
                            (static_cast<unsigned>(v[2]) << 6) | static_cast<unsigned>(v[3]);
    out += static_cast<char>((triple >> 16) & 0xFF);
    if (pad < 2) {
      out += static_cast<char>((triple >> 8) & 0xFF);
    }
    if (pad < 1) {
      out += static_cast<char>(triple & 0xFF);
    }
  }
  return out;
}

}  // namespace borderscan::server
