#include "borderscan/client/error.hpp"

#include <gtest/gtest.h>

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/http/error.hpp>

namespace borderscan::client {
namespace {

TEST(ClientError, AProblemAnswerGivesItsDetailAndStatus) {
  const auto e = http_failure(401, "Unauthorized", "application/problem+json",
                              R"({"type":"urn:borderscan:problem:unauthorized","title":"Unauthorized","status":401,)"
                              R"("detail":"the bearer token is not valid"})");
  EXPECT_STREQ(e.what(), "the bearer token is not valid (HTTP 401)");
  EXPECT_EQ(e.status(), 401U);
  EXPECT_EQ(e.problem_type(), "urn:borderscan:problem:unauthorized");
  EXPECT_EQ(e.error_kind(), client_error::kind::http);
}

TEST(ClientError, OtherAnswersGiveTheStatusAndAShortTextLine) {
  EXPECT_STREQ(http_failure(502, "Bad Gateway", "text/plain", "upstream down\nmore").what(),
               "HTTP 502 Bad Gateway: upstream down");
  EXPECT_STREQ(http_failure(500, "Internal Server Error", "text/html", "<html>...").what(),
               "HTTP 500 Internal Server Error");
  EXPECT_STREQ(http_failure(400, "Bad Request", "application/problem+json", "not json").what(), "HTTP 400 Bad Request");
  EXPECT_STREQ(http_failure(418, "", "text/plain", "\x1b]0;owned\x07").what(), "HTTP 418")
      << "control characters from the server never reach the terminal";
}

TEST(ClientError, DescribesErrorCodesInWordsWithoutInternals) {
  namespace net = boost::asio;
  EXPECT_EQ(describe(net::error::connection_refused), "connection refused");
  EXPECT_EQ(describe(net::error::eof), "the server closed the connection");
  EXPECT_EQ(describe(boost::beast::http::error::partial_message), "the connection ended in the middle of the answer");
  for (const auto& ec :
       {boost::system::error_code(net::error::connection_reset), boost::system::error_code(net::error::timed_out),
        boost::system::error_code(net::ssl::error::stream_truncated)}) {
    const std::string text = describe(ec);
    EXPECT_FALSE(text.empty());
    EXPECT_EQ(text.find("boost"), std::string::npos) << text;
    EXPECT_EQ(text.find("asio"), std::string::npos) << text;
    EXPECT_EQ(text.find(".hpp"), std::string::npos) << text;
  }
}

}  // namespace
}  // namespace borderscan::client
