#pragma once
// A GoogleTest fixture that starts one real daemon on a scratch data
// directory (daemon_harness.hpp), for test files that need nothing more.

#include <memory>

#include <gtest/gtest.h>

#include "daemon_harness.hpp"
#include "support/test_support.hpp"

namespace borderscan::server::test_support {

class daemon_test : public ::testing::Test {
 protected:
  daemon& start(daemon_options options = {}) {
    daemon_ = std::make_unique<daemon>(scratch_ / "data", options);
    daemon_->start();
    return *daemon_;
  }

  test::scratch_dir scratch_;
  std::unique_ptr<daemon> daemon_;
};

}  // namespace borderscan::server::test_support
