#pragma once
// Progress arithmetic and wording for the client's bars: sizes, durations,
// a transfer rate over the last few seconds, and the ETA it gives.

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <utility>

namespace borderscan::client {

// "512 B", "1.5 KiB", "12.3 MiB", "1.20 GiB" (binary units).
std::string human_bytes(std::uint64_t bytes);
// "7s", "3m05s", "2h04m".
std::string human_duration(std::chrono::seconds d);

// Rate over a sliding window of samples, so a stall shows at once and an
// early burst does not promise a short ETA forever.
class rate_meter {
 public:
  using clock = std::chrono::steady_clock;
  explicit rate_meter(std::chrono::milliseconds window = std::chrono::seconds(5)) : window_(window) {}

  void add(clock::time_point at, std::uint64_t done);
  // Bytes per second over the window; nullopt until two samples span 200 ms.
  std::optional<double> per_second() const;
  // Time left to reach `total` at the current rate; nullopt without a rate.
  std::optional<std::chrono::seconds> eta(std::uint64_t total) const;

 private:
  std::chrono::milliseconds window_;
  std::deque<std::pair<clock::time_point, std::uint64_t>> samples_;
};

// "[#########-----------]  45%  12.3 MiB / 27.0 MiB  4.1 MiB/s  ETA 4s";
// without a total: "12.3 MiB  4.1 MiB/s".
std::string progress_text(std::uint64_t done, std::uint64_t total, const rate_meter& meter);

}  // namespace borderscan::client
