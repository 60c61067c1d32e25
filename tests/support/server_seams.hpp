#pragma once
// Deterministic versions of the daemon's seams (server/system.hpp): a clock
// that stands still unless told, and scan ids counted up from 1. Shared by the
// server's unit tests and the fuzz targets that drive the router (no GoogleTest).

#include <cstdint>
#include <cstdio>
#include <string>

#include "borderscan/server/system.hpp"

namespace borderscan::server::test_support {

class fixed_clock final : public clock {
 public:
  std::int64_t now_ms() const override { return now; }
  std::int64_t now = 1'700'000'000'000;
};

class counting_ids final : public id_generator {
 public:
  std::string next() override {
    char buf[33];
    std::snprintf(buf, sizeof buf, "%032x", ++n_);
    return buf;
  }

 private:
  unsigned n_ = 0;
};

}  // namespace borderscan::server::test_support
