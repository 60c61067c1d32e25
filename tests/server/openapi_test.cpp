// The routes the router serves and the paths docs/openapi.yaml describes
// must be the same set, and the router must claim each documented route.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>

#include "borderscan/server/router.hpp"
#include "server_test_support.hpp"

namespace borderscan::server {
namespace {

using route_key = std::pair<std::string, std::string>;  // METHOD, path pattern

// The spec is kept in a fixed layout: paths at two spaces, methods at four.
std::set<route_key> spec_routes() {
  std::ifstream in(test::source_dir() / "docs" / "openapi.yaml");
  EXPECT_TRUE(in) << "docs/openapi.yaml missing";
  const std::regex path_line(R"(^  (/[^:\s]*):\s*$)");
  const std::regex method_line(R"(^    (get|put|post|delete|patch|head|options):\s*$)");
  std::set<route_key> out;
  std::string line, path;
  bool in_paths = false;
  while (std::getline(in, line)) {
    if (!line.empty() && line[0] != ' ' && line[0] != '#') {
      in_paths = line == "paths:";
      continue;
    }
    std::smatch m;
    if (!in_paths) {
      continue;
    }
    if (std::regex_match(line, m, path_line)) {
      path = m[1];
    } else if (std::regex_match(line, m, method_line)) {
      std::string method = m[1];
      for (auto& c : method) {
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      }
      out.emplace(method, path);
    }
  }
  return out;
}

TEST(OpenApi, DescribesExactlyTheServedRoutes) {
  std::set<route_key> served;
  for (const auto& r : router::routes()) {
    served.emplace(std::string(http::to_string(r.method)), r.pattern);
  }
  const auto spec = spec_routes();
  EXPECT_FALSE(spec.empty());
  for (const auto& r : served) {
    EXPECT_TRUE(spec.count(r)) << r.first << " " << r.second << " is served but not in docs/openapi.yaml";
  }
  for (const auto& r : spec) {
    EXPECT_TRUE(served.count(r)) << r.first << " " << r.second << " is in docs/openapi.yaml but not served";
  }
}

TEST(OpenApi, RouterClaimsEveryDocumentedRoute) {
  test_support::wired w;
  for (const auto& [method, pattern] : spec_routes()) {
    std::string target = std::regex_replace(pattern, std::regex(R"(\{[a-z]+\})"), std::string(32, 'a'));
    request req{http::string_to_verb(method), target, 11};
    req.body() = "x";
    req.prepare_payload();
    const auto res = w.routes.handle(req);
    EXPECT_EQ(res.route, pattern) << method << " " << target << " -> " << res.message.body();
    EXPECT_NE(res.message.result(), http::status::method_not_allowed) << method << " " << target;
  }
}

}  // namespace
}  // namespace borderscan::server
