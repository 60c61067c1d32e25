#include "test_clients.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include "support/test_support.hpp"

namespace borderscan::server::test_support {

namespace fs = std::filesystem;
namespace net = boost::asio;
namespace ssl = net::ssl;
namespace beast = boost::beast;
namespace http = beast::http;
using namespace std::chrono_literals;

key_pair make_key_pair(const fs::path& dir, const std::string& name) {
  key_pair kp{dir / (name + ".crt"), dir / (name + ".key")};
  const auto r = test::run_command(
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1"
      " -keyout " +
      test::shell_quote(kp.private_key.string()) + " -out " + test::shell_quote(kp.certificate.string()));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(kp.certificate) && fs::exists(kp.private_key)) << r.err;
  return kp;
}

template <class Stream>
beast::error_code basic_client<Stream>::connect() {
  tcp().expires_after(60s);
  return await(ioc_, [&](auto handler) {
    tcp().async_connect(net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), port_), std::move(handler));
  });
}

template <class Stream>
http_result basic_client<Stream>::request(http::verb method, const std::string& target, const std::string& body,
                                          const std::map<std::string, std::string>& headers, bool chunked) {
  send(method, target, body, headers, chunked);
  return receive(target);
}

template <class Stream>
void basic_client<Stream>::send(http::verb method, const std::string& target, const std::string& body,
                                const std::map<std::string, std::string>& headers, bool chunked) {
  const auto req = make_request(method, target, body, headers, chunked);
  tcp().expires_after(120s);
  await(ioc_, [&](auto handler) { http::async_write(stream_, req, std::move(handler)); });
}

template <class Stream>
beast::error_code basic_client<Stream>::receive(http::response_parser<http::string_body>& parser) {
  parser.body_limit(256 << 20);
  tcp().expires_after(120s);
  return await(ioc_, [&](auto handler) { http::async_read(stream_, buffer_, parser, std::move(handler)); });
}

template <class Stream>
http_result basic_client<Stream>::receive(const std::string& what) {
  http::response_parser<http::string_body> parser;
  if (const auto ec = receive(parser)) {
    ADD_FAILURE() << "no response to " << what << ": " << ec.message();
    return {};
  }
  return to_result(parser.get());
}

template <class Stream>
std::size_t basic_client<Stream>::read_some(std::span<char> out, beast::error_code& ec) {
  std::size_t n = 0;
  ec = await(ioc_, [&](auto handler) {
    stream_.async_read_some(net::buffer(out.data(), out.size()),
                            [&n, handler = std::move(handler)](beast::error_code e, std::size_t got) mutable {
                              n = got;
                              handler(e);
                            });
  });
  return n;
}

template <class Stream>
beast::error_code basic_client<Stream>::read_until_closed(std::chrono::seconds limit) {
  tcp().expires_after(limit);
  for (;;) {
    char chunk[4096];
    beast::error_code ec;
    read_some(chunk, ec);
    if (ec) {
      return ec;
    }
  }
}

template class basic_client<beast::tcp_stream>;
template class basic_client<beast::ssl_stream<beast::tcp_stream>>;

bool plain_client::open() {
  const auto c = connect();
  EXPECT_FALSE(c) << "connect: " << c.message();
  return !c;
}

namespace {

ssl::context client_context(const fs::path& ca, tls_version version) {
  ssl::context ctx(ssl::context::tls_client);
  ctx.set_verify_mode(ssl::verify_peer);
  ctx.load_verify_file(ca.string());
  if (version == tls_version::tls_1_1_only) {
    SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_1_VERSION);
    SSL_CTX_set_max_proto_version(ctx.native_handle(), TLS1_1_VERSION);
    SSL_CTX_set_security_level(ctx.native_handle(), 0);  // OpenSSL 3 allows TLS 1.1 only at level 0
  }
  return ctx;
}

}  // namespace

tls_client::tls_client(std::uint16_t port, const fs::path& ca, tls_version version)
    : tls_context_holder(client_context(ca, version)), basic_client(port, tls_context_holder::ctx) {
  stream().set_verify_callback(ssl::host_name_verification("127.0.0.1"));
}

beast::error_code tls_client::handshake() {
  tcp().expires_after(60s);
  return await(ioc(), [&](auto handler) { stream().async_handshake(ssl::stream_base::client, std::move(handler)); });
}

bool tls_client::open() {
  const auto c = connect();
  EXPECT_FALSE(c) << "connect: " << c.message();
  if (c) {
    return false;
  }
  const auto h = handshake();
  EXPECT_FALSE(h) << "TLS handshake: " << h.message();
  return !h;
}

beast::error_code tls_client::shutdown() {
  tcp().expires_after(30s);
  return await(ioc(), [&](auto handler) { stream().async_shutdown(std::move(handler)); });
}

}  // namespace borderscan::server::test_support
