#include "borderscan/scanner/limits.hpp"

#include <stdexcept>

#include <nlohmann/json.hpp>

namespace borderscan::scanner {
namespace {

// One table drives both directions, so a new limit cannot be half-wired.
template <class Fn>
void for_each_numeric(limits& l, Fn&& fn) {
  fn("scan_timeout_seconds", l.scan_timeout_seconds);
  fn("yara_timeout_seconds", l.yara_timeout_seconds);
  fn("max_files", l.max_files);
  fn("max_directory_depth", l.max_directory_depth);
  fn("max_file_bytes", l.max_file_bytes);
  fn("max_depth", l.max_depth);
  fn("max_members", l.max_members);
  fn("max_total_expanded_bytes", l.max_total_expanded_bytes);
  fn("max_member_bytes", l.max_member_bytes);
  fn("max_expansion_ratio", l.max_expansion_ratio);
  fn("member_memory_bytes", l.member_memory_bytes);
  fn("magic_bytes", l.magic_bytes);
  fn("raw_volume_head_bytes", l.raw_volume_head_bytes);
}

}  // namespace

void to_json(nlohmann::json& j, const limits& l) {
  j = nlohmann::json::object();
  limits copy = l;
  for_each_numeric(copy, [&](const char* key, auto& value) { j[key] = value; });
  j["flag_threshold"] = to_string(l.flag_threshold);
  j["skip_yara_for_known_good"] = l.skip_yara_for_known_good;
}

void from_json(const nlohmann::json& j, limits& l) {
  if (!j.is_object()) {
    throw std::invalid_argument("limits must be a JSON object");
  }
  std::size_t known = 0;
  for_each_numeric(l, [&](const char* key, auto& value) {
    if (!j.contains(key)) {
      return;
    }
    ++known;
    const auto& v = j.at(key);
    using T = std::remove_reference_t<decltype(value)>;
    if (!v.is_number_unsigned() || v.get<std::uint64_t>() > std::numeric_limits<T>::max()) {
      throw std::invalid_argument(std::string("limit ") + key + " must be a non-negative integer in range");
    }
    value = v.get<T>();
  });
  if (j.contains("flag_threshold")) {
    ++known;
    const auto level =
        j.at("flag_threshold").is_string() ? parse_severity(j.at("flag_threshold").get<std::string>()) : std::nullopt;
    if (!level) {
      throw std::invalid_argument("limit flag_threshold must be info, low, medium, high or critical");
    }
    l.flag_threshold = *level;
  }
  if (j.contains("skip_yara_for_known_good")) {
    ++known;
    if (!j.at("skip_yara_for_known_good").is_boolean()) {
      throw std::invalid_argument("limit skip_yara_for_known_good must be true or false");
    }
    l.skip_yara_for_known_good = j.at("skip_yara_for_known_good").get<bool>();
  }
  if (known != j.size()) {
    for (const auto& [key, value] : j.items()) {
      nlohmann::json probe = limits{};
      if (!probe.contains(key)) {
        throw std::invalid_argument("unknown limit: " + key);
      }
    }
  }
}

}  // namespace borderscan::scanner
