#pragma once
// The bearer token test clients send when a request names no Authorization
// header: set to an admin token of the router or daemon under test.

#include <string>

namespace borderscan::server::test_support {

inline std::string& default_bearer_token() {
  static std::string token;
  return token;
}

}  // namespace borderscan::server::test_support
