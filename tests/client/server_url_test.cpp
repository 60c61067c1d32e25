#include "borderscan/client/server_url.hpp"

#include <gtest/gtest.h>

#include "borderscan/client/error.hpp"

namespace borderscan::client {
namespace {

TEST(ServerUrl, ParsesSchemesPortsAndPrefixes) {
  const auto plain = parse_server_url("http://127.0.0.1:8080");
  EXPECT_FALSE(plain.tls);
  EXPECT_EQ(plain.host, "127.0.0.1");
  EXPECT_TRUE(plain.host_is_ip);
  EXPECT_EQ(plain.port, 8080);
  EXPECT_EQ(plain.host_header(), "127.0.0.1:8080");
  EXPECT_EQ(plain.target("/api/v1/reports"), "/api/v1/reports");

  const auto secure = parse_server_url("https://scan.checkpoint.example/borderscan/");
  EXPECT_TRUE(secure.tls);
  EXPECT_FALSE(secure.host_is_ip);
  EXPECT_EQ(secure.port, 443);
  EXPECT_EQ(secure.host_header(), "scan.checkpoint.example");
  EXPECT_EQ(secure.authority(), "scan.checkpoint.example:443");
  EXPECT_EQ(secure.target("/api/v1/scans"), "/borderscan/api/v1/scans");

  const auto v6 = parse_server_url("http://[::1]:9000");
  EXPECT_EQ(v6.host, "::1");
  EXPECT_TRUE(v6.host_is_ip);
  EXPECT_EQ(v6.host_header(), "[::1]:9000");
}

TEST(ServerUrl, RefusesWhatIsNotAServerUrlSayingWhy) {
  for (const char* bad : {"127.0.0.1:8080", "ftp://host", "http://user:pw@host", "http://host/?x=1", "http://host:0",
                          "http://host:99999", "not a url"}) {
    try {
      parse_server_url(bad);
      ADD_FAILURE() << bad << " was accepted";
    } catch (const client_error& e) {
      EXPECT_EQ(e.error_kind(), client_error::kind::usage);
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
    }
  }
}

TEST(ServerUrl, EncodesQueryParametersAndLeavesOutEmptyOnes) {
  EXPECT_EQ(with_query("/api/v1/scans", {{"label", "bag 17&x=y"}, {"case_ref", ""}, {"filename", "stick#1.img"}}),
            "/api/v1/scans?label=bag%2017%26x=y&filename=stick%231.img")
      << "'&' and '#' are encoded; '=' in a value is legal and the daemon splits at the first";
  EXPECT_EQ(with_query("/api/v1/reports", {}), "/api/v1/reports");
}

}  // namespace
}  // namespace borderscan::client
