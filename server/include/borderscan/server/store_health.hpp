#pragma once
// Whether reports can be stored: set by the workers when storing a report
// fails (a full disk, a store that refuses writes), cleared when a store or a
// write probe succeeds. /readyz answers 503 with the reason meanwhile, so
// that a load balancer sends kiosks elsewhere instead of into a scan whose
// report cannot be kept.

#include <filesystem>
#include <mutex>
#include <optional>
#include <string>

namespace borderscan::server {

class store_health {
 public:
  void failing(std::string why);
  void recovered();
  // The last failure's reason; empty when reports can be stored.
  std::optional<std::string> problem() const;

  // Writes and syncs a probe file of `bytes` in `dir`, then removes it: true
  // when that worked (clears the failure), false when not (the failure's
  // reason stays; the probe's is recorded when there was none).
  bool probe(const std::filesystem::path& dir, std::size_t bytes = 64 * 1024);

 private:
  mutable std::mutex mutex_;
  std::optional<std::string> problem_;
};

}  // namespace borderscan::server
