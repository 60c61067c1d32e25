#include "borderscan/scanner/limits.hpp"

#include <limits>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace borderscan::scanner {
void to_json(nlohmann::json& j, const limits& l) {
  j = nlohmann::json::object();
  for_each_limit(l, [&](const limit_field& f, const auto& value) { j[f.name] = value; });
  j[flag_severity_key] = to_string(l.flag_threshold);
  j[skip_known_good_key] = l.skip_yara_for_known_good;
}

void from_json(const nlohmann::json& j, limits& l) {
  if (!j.is_object()) {
    throw std::invalid_argument("limits must be a JSON object");
  }
  std::size_t known = 0;
  for_each_limit(l, [&](const limit_field& f, auto& value) {
    if (!j.contains(f.name)) {
      return;
    }
    ++known;
    const auto& v = j.at(f.name);
    using T = std::remove_reference_t<decltype(value)>;
    if (!v.is_number_unsigned() || v.get<std::uint64_t>() < f.min || v.get<std::uint64_t>() > f.max ||
        v.get<std::uint64_t>() > std::numeric_limits<T>::max()) {
      throw std::invalid_argument(std::string("limit ") + f.name + " must be an integer from " + std::to_string(f.min) +
                                  " to " + std::to_string(f.max));
    }
    value = v.get<T>();
  });
  if (j.contains(flag_severity_key)) {
    ++known;
    const auto& v = j.at(flag_severity_key);
    const auto level = v.is_string() ? parse_severity(v.get<std::string>()) : std::nullopt;
    if (!level) {
      throw std::invalid_argument(std::string("limit ") + flag_severity_key +
                                  " must be info, low, medium, high or critical");
    }
    l.flag_threshold = *level;
  }
  if (j.contains(skip_known_good_key)) {
    ++known;
    if (!j.at(skip_known_good_key).is_boolean()) {
      throw std::invalid_argument(std::string("limit ") + skip_known_good_key + " must be true or false");
    }
    l.skip_yara_for_known_good = j.at(skip_known_good_key).get<bool>();
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
