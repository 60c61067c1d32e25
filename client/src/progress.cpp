#include "borderscan/client/progress.hpp"

#include <cstdio>

namespace borderscan::client {

std::string human_bytes(std::uint64_t bytes) {
  static constexpr const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  if (bytes < 1024) {
    return std::to_string(bytes) + " B";
  }
  double value = static_cast<double>(bytes);
  std::size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(units)) {
    value /= 1024;
    ++unit;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, value < 10 && unit >= 3 ? "%.2f %s" : "%.1f %s", value, units[unit]);
  return buf;
}

std::string human_duration(std::chrono::seconds d) {
  const long long s = std::max<long long>(d.count(), 0);
  char buf[32];
  if (s < 60) {
    std::snprintf(buf, sizeof buf, "%llds", s);
  } else if (s < 3600) {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", s / 60, s % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", s / 3600, (s % 3600) / 60);
  }
  return buf;
}

void rate_meter::add(clock::time_point at, std::uint64_t done) {
  if (!samples_.empty() && done < samples_.back().second) {
    samples_.clear();  // a new transfer
  }
  samples_.emplace_back(at, done);
  // Keep one sample older than the window so the rate spans all of it.
  while (samples_.size() > 2 && at - samples_[1].first >= window_) {
    samples_.pop_front();
  }
}

std::optional<double> rate_meter::per_second() const {
  if (samples_.size() < 2) {
    return std::nullopt;
  }
  const auto span = samples_.back().first - samples_.front().first;
  if (span < std::chrono::milliseconds(200)) {
    return std::nullopt;
  }
  const double seconds = std::chrono::duration<double>(span).count();
  return static_cast<double>(samples_.back().second - samples_.front().second) / seconds;
}

std::optional<std::chrono::seconds> rate_meter::eta(std::uint64_t total) const {
  const auto rate = per_second();
  if (!rate || *rate <= 0 || samples_.empty() || total < samples_.back().second) {
    return std::nullopt;
  }
  const double left = static_cast<double>(total - samples_.back().second) / *rate;
  if (left > 100.0 * 24 * 3600) {
    return std::nullopt;
  }
  return std::chrono::seconds(static_cast<long long>(left + 0.999));
}

std::string progress_text(std::uint64_t done, std::uint64_t total, const rate_meter& meter) {
  std::string out;
  const auto rate = meter.per_second();
  if (total > 0) {
    const double fraction = std::min(1.0, static_cast<double>(done) / static_cast<double>(total));
    constexpr int width = 20;
    const int filled = static_cast<int>(fraction * width);
    out = "[" + std::string(static_cast<std::size_t>(filled), '#') + std::string(width - filled, '-') + "] ";
    char pct[16];
    std::snprintf(pct, sizeof pct, "%3d%%", static_cast<int>(fraction * 100));
    out += pct;
    out += "  " + human_bytes(done) + " / " + human_bytes(total);
  } else {
    out = human_bytes(done);
  }
  if (rate) {
    out += "  " + human_bytes(static_cast<std::uint64_t>(*rate)) + "/s";
  }
  if (total > 0 && done < total) {
    if (const auto left = meter.eta(total)) {
      out += "  ETA " + human_duration(*left);
    }
  }
  return out;
}

}  // namespace borderscan::client
