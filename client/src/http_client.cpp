#include "borderscan/client/http_client.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <optional>
#include <type_traits>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "borderscan/client/image_file.hpp"

namespace borderscan::client {

namespace net = boost::asio;
namespace ssl = net::ssl;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t piece_bytes = 256 * 1024;
constexpr std::size_t kept_body_limit = 64u << 20;
constexpr std::size_t error_body_limit = 64u << 10;

enum class stage { resolve, connect, handshake, send, receive_head, receive_body };

// A transport failure inside an exchange; the caller turns it into words,
// knowing whether the watchdog cut the connection.
struct transport_failure : std::exception {
  transport_failure(stage s, beast::error_code e, std::string d = {}) : where(s), ec(e), detail(std::move(d)) {}
  const char* what() const noexcept override { return "transport failure"; }
  stage where;
  beast::error_code ec;
  std::string detail;  // the certificate check's reason for a failed handshake
};

// Closes the connection when it makes no progress for the armed time. Every
// step that moves (connecting, a piece written, a piece read) re-arms it, so
// a long upload is fine while a silent server is not.
class watchdog {
 public:
  using clock = std::chrono::steady_clock;
  explicit watchdog(net::io_context& ioc) : timer_(ioc) {}

  void start(std::function<void()> on_expire) {
    on_expire_ = std::move(on_expire);
    wait();
  }
  // Re-setting the expiry cancels the pending wait; its handler waits again.
  void arm(std::chrono::milliseconds limit) {
    limit_ = limit;
    deadline_ = clock::now() + limit;
    timer_.expires_at(deadline_);
  }
  void stop() {
    stopped_ = true;
    timer_.cancel();
  }
  bool fired() const noexcept { return fired_; }
  std::chrono::milliseconds limit() const noexcept { return limit_; }

 private:
  void wait() {
    timer_.expires_at(deadline_);
    timer_.async_wait([this](beast::error_code) {
      if (stopped_ || fired_) {
        return;
      }
      if (clock::now() >= deadline_) {
        fired_ = true;
        on_expire_();
        return;
      }
      wait();
    });
  }

  net::steady_timer timer_;
  clock::time_point deadline_ = clock::now() + std::chrono::hours(24);
  std::chrono::milliseconds limit_{0};
  std::function<void()> on_expire_;
  bool stopped_ = false;
  bool fired_ = false;
};

struct request_spec {
  http::verb method = http::verb::get;
  std::string target;
  const header_list* headers = nullptr;
  std::string_view body;
  std::string_view content_type;
  image_file* file = nullptr;
  const progress_fn* upload_progress = nullptr;
  const body_sink* sink = nullptr;
  const progress_fn* download_progress = nullptr;
};

using tls_stream = beast::ssl_stream<beast::tcp_stream>;

// One request and its answer on a fresh connection, as coroutines on one
// io_context thread. The answer's head is read concurrently with sending the
// body, so an early refusal stops an upload at once.
template <class Stream>
class exchange {
 public:
  static constexpr bool is_tls = std::is_same_v<Stream, tls_stream>;

  exchange(net::io_context& ioc, Stream& stream, const server_url& url, const client_options& options,
           const request_spec& spec, watchdog& dog)
      : ioc_(ioc),
        stream_(stream),
        url_(url),
        options_(options),
        spec_(spec),
        dog_(dog),
        resolver_(ioc),
        head_event_(ioc) {}

  net::awaitable<response> run() {
    co_await connect();
    auto head = make_head();
    parser_.body_limit(boost::none);  // bodies stream to sinks; kept ones are bounded below
    head_event_.expires_at(net::steady_timer::time_point::max());
    net::co_spawn(ioc_, read_head(), [this](std::exception_ptr e) {
      head_error_ = e;
      head_done_ = true;
      head_event_.cancel();
      if (!e && writing_body_) {
        // An early answer from a server that stopped reading the body: the
        // write would block until the timeout. Only the write is pending.
        beast::error_code ignored;
        beast::get_lowest_layer(stream_).socket().cancel(ignored);
      }
    });
    std::optional<transport_failure> send_failure;
    std::exception_ptr local_failure;
    try {
      co_await send(head);
    } catch (const transport_failure& f) {
      send_failure = f;
    } catch (...) {
      local_failure = std::current_exception();
      abort();  // ends the head reader
    }
    if (!head_done_) {
      dog_.arm(options_.read_timeout);
      beast::error_code ignored;
      co_await head_event_.async_wait(net::redirect_error(net::use_awaitable, ignored));
    }
    if (local_failure) {
      std::rethrow_exception(local_failure);
    }
    if (head_error_) {
      if (send_failure) {
        throw *send_failure;
      }
      std::rethrow_exception(head_error_);
    }
    response out;
    const auto& msg = parser_.get();
    out.status = msg.result_int();
    out.reason = std::string(msg.reason());
    for (const auto& field : msg) {
      out.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    const bool whole = co_await read_body(out);
    co_await close(whole);
    co_return out;
  }

  // Cancels whatever is pending: the resolver, the socket's reads and writes.
  void abort() {
    resolver_.cancel();
    beast::get_lowest_layer(stream_).close();
  }

 private:
  net::awaitable<void> connect() {
    dog_.arm(options_.connect_timeout);
    beast::error_code ec;
    const auto endpoints = co_await resolver_.async_resolve(url_.host, std::to_string(url_.port),
                                                            net::redirect_error(net::use_awaitable, ec));
    if (ec) {
      throw transport_failure(stage::resolve, ec);
    }
    co_await beast::get_lowest_layer(stream_).async_connect(endpoints, net::redirect_error(net::use_awaitable, ec));
    if (ec) {
      throw transport_failure(stage::connect, ec);
    }
    if constexpr (is_tls) {
      co_await handshake();
    }
  }

  net::awaitable<void> handshake() requires is_tls {
    SSL* ssl = stream_.native_handle();
    // SNI is for names only (RFC 6066); the certificate must name the host
    // or carry the IP address. OpenSSL checks it during the handshake, so
    // its reason ("hostname mismatch") names the problem.
    if (!url_.host_is_ip && SSL_set_tlsext_host_name(ssl, url_.host.c_str()) != 1) {
      throw transport_failure(stage::handshake,
                              beast::error_code(static_cast<int>(::ERR_get_error()), net::error::get_ssl_category()));
    }
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    const int set = url_.host_is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, url_.host.c_str())
                                    : X509_VERIFY_PARAM_set1_host(param, url_.host.c_str(), 0);
    if (set != 1) {
      throw transport_failure(stage::handshake,
                              beast::error_code(static_cast<int>(::ERR_get_error()), net::error::get_ssl_category()));
    }
    stream_.set_verify_callback(ssl::host_name_verification(url_.host));
    beast::error_code ec;
    co_await stream_.async_handshake(ssl::stream_base::client, net::redirect_error(net::use_awaitable, ec));
    if (ec) {
      std::string detail;
      if (const long verify = SSL_get_verify_result(ssl); verify != X509_V_OK) {
        detail = std::string("(") + X509_verify_cert_error_string(verify) + ")";
        if (verify == X509_V_ERR_HOSTNAME_MISMATCH || verify == X509_V_ERR_IP_ADDRESS_MISMATCH) {
          detail += ": the certificate is not for " + url_.host;
        } else {
          detail += "; is the server's CA given with --ca-file?";
        }
      }
      throw transport_failure(stage::handshake, ec, detail);
    }
  }

  http::request<http::empty_body> make_head() {
    http::request<http::empty_body> head{spec_.method, url_.target(spec_.target), 11};
    head.set(http::field::host, url_.host_header());
    head.set(http::field::user_agent, options_.user_agent);
    // One request per connection: the server closes after answering.
    head.set(http::field::connection, "close");
    if (!options_.token.empty()) {
      head.set(http::field::authorization, "Bearer " + options_.token);
    }
    if (!spec_.content_type.empty()) {
      head.set(http::field::content_type, spec_.content_type);
    }
    if (spec_.headers != nullptr) {
      for (const auto& [name, value] : *spec_.headers) {
        head.set(name, value);
      }
    }
    const bool has_body = spec_.file != nullptr || !spec_.body.empty() || spec_.method == http::verb::post ||
                          spec_.method == http::verb::put || spec_.method == http::verb::patch;
    if (has_body) {
      head.content_length(spec_.file != nullptr ? spec_.file->size() : spec_.body.size());
    }
    return head;
  }

  net::awaitable<void> send(http::request<http::empty_body>& head) {
    dog_.arm(options_.read_timeout);
    http::request_serializer<http::empty_body> serializer{head};
    beast::error_code ec;
    co_await http::async_write_header(stream_, serializer, net::redirect_error(net::use_awaitable, ec));
    if (ec) {
      throw transport_failure(stage::send, ec);
    }
    if (!spec_.body.empty()) {
      co_await net::async_write(stream_, net::buffer(spec_.body.data(), spec_.body.size()),
                                net::redirect_error(net::use_awaitable, ec));
      if (ec) {
        throw transport_failure(stage::send, ec);
      }
    }
    if (spec_.file == nullptr) {
      co_return;
    }
    const std::uint64_t size = spec_.file->size();
    std::vector<char> piece(piece_bytes);
    std::uint64_t sent = 0;
    // The server may answer before the end (wrong token, queue full): stop then.
    while (sent < size && !head_done_) {
      const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(piece.size(), size - sent));
      const std::size_t n = spec_.file->read(piece.data(), want);
      if (n < want) {
        throw client_error(client_error::kind::local,
                           spec_.file->path().string() + " became shorter while it was sent; nothing was kept");
      }
      writing_body_ = true;
      co_await net::async_write(stream_, net::buffer(piece.data(), n), net::redirect_error(net::use_awaitable, ec));
      writing_body_ = false;
      if (ec) {
        throw transport_failure(stage::send, ec);
      }
      sent += n;
      dog_.arm(options_.read_timeout);
      if (spec_.upload_progress != nullptr && *spec_.upload_progress) {
        (*spec_.upload_progress)(sent, size);
      }
    }
  }

  net::awaitable<void> read_head() {
    beast::error_code ec;
    co_await http::async_read_header(stream_, buffer_, parser_, net::redirect_error(net::use_awaitable, ec));
    if (ec) {
      throw transport_failure(stage::receive_head, ec);
    }
  }

  // True when the body was read to its end (false: the sink stopped it).
  net::awaitable<bool> read_body(response& out) {
    const bool to_sink = out.ok() && spec_.sink != nullptr && *spec_.sink;
    const std::size_t keep_limit = out.ok() ? kept_body_limit : error_body_limit;
    const std::uint64_t total = parser_.content_length().value_or(0);
    std::vector<char> piece(64 * 1024);
    std::uint64_t received = 0;
    while (!parser_.is_done()) {
      auto& body = parser_.get().body();
      body.data = piece.data();
      body.size = piece.size();
      dog_.arm(options_.read_timeout);
      beast::error_code ec;
      co_await http::async_read_some(stream_, buffer_, parser_, net::redirect_error(net::use_awaitable, ec));
      if (ec == http::error::need_buffer) {
        ec = {};
      }
      if (ec) {
        throw transport_failure(stage::receive_body, ec);
      }
      const std::size_t n = piece.size() - parser_.get().body().size;
      if (n == 0) {
        continue;
      }
      received += n;
      const std::string_view bytes(piece.data(), n);
      if (to_sink) {
        if (!(*spec_.sink)(bytes)) {
          co_return false;
        }
      } else if (out.body.size() + n <= keep_limit) {
        out.body.append(bytes);
      } else if (out.ok()) {
        throw client_error(client_error::kind::network, "the answer from " + url_.authority() + " is larger than " +
                                                            std::to_string(keep_limit >> 20) + " MiB");
      } else {
        co_return false;  // an error page's first 64 KiB say enough
      }
      if (spec_.download_progress != nullptr && *spec_.download_progress) {
        (*spec_.download_progress)(received, total);
      }
    }
    co_return true;
  }

  // A TLS connection read to its end gets a close_notify (bounded in time);
  // the answer is complete whatever happens here.
  net::awaitable<void> close(bool whole) {
    if constexpr (is_tls) {
      if (whole) {
        dog_.arm(2s);
        beast::error_code ignored;
        co_await stream_.async_shutdown(net::redirect_error(net::use_awaitable, ignored));
      }
    }
    abort();
  }

  net::io_context& ioc_;
  Stream& stream_;
  const server_url& url_;
  const client_options& options_;
  const request_spec& spec_;
  watchdog& dog_;
  tcp::resolver resolver_;
  beast::flat_buffer buffer_;
  http::response_parser<http::buffer_body> parser_;
  net::steady_timer head_event_;
  bool head_done_ = false;
  bool writing_body_ = false;
  std::exception_ptr head_error_;
};

std::string seconds_text(std::chrono::milliseconds d) {
  const auto ms = d.count();
  if (ms % 1000 == 0) {
    return std::to_string(ms / 1000) + " s";
  }
  return std::to_string(ms) + " ms";
}

bool iequal(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
  });
}

}  // namespace

std::string response::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (iequal(key, name)) {
      return value;
    }
  }
  return {};
}

struct http_client::impl {
  client_options options;
  server_url url;
  std::optional<ssl::context> tls;

  explicit impl(client_options o) : options(std::move(o)), url(parse_server_url(options.server)) {
    if (!url.tls) {
      if (!options.ca_file.empty()) {
        throw client_error(client_error::kind::usage,
                           "--ca-file is for https:// servers; " + options.server + " is plain http");
      }
      return;
    }
    tls.emplace(ssl::context::tls_client);
    tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                     ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    tls->set_verify_mode(ssl::verify_peer);
    beast::error_code ec;
    tls->set_default_verify_paths(ec);  // no system store is not fatal when --ca-file names the CA
    if (!options.ca_file.empty()) {
      std::error_code fs_ec;
      if (!std::filesystem::is_regular_file(options.ca_file, fs_ec)) {
        throw client_error(client_error::kind::usage, "--ca-file " + options.ca_file.string() + ": no such file");
      }
      tls->load_verify_file(options.ca_file.string(), ec);
      if (ec) {
        throw client_error(client_error::kind::usage, "--ca-file " + options.ca_file.string() +
                                                          ": not a PEM certificate file (" + describe(ec) + ")");
      }
    }
  }

  response perform(const request_spec& spec) {
    net::io_context ioc;
    if (tls) {
      tls_stream stream(ioc, *tls);
      return drive(ioc, stream, spec);
    }
    beast::tcp_stream stream(ioc);
    return drive(ioc, stream, spec);
  }

  template <class Stream>
  response drive(net::io_context& ioc, Stream& stream, const request_spec& spec) {
    watchdog dog(ioc);
    exchange<Stream> x(ioc, stream, url, options, spec, dog);
    std::optional<response> result;
    std::exception_ptr error;
    dog.arm(options.connect_timeout);
    dog.start([&x] { x.abort(); });
    net::co_spawn(ioc, x.run(), [&](std::exception_ptr e, response r) {
      if (e) {
        error = e;
      } else {
        result = std::move(r);
      }
      dog.stop();
      x.abort();
    });
    ioc.run();
    if (result) {
      return std::move(*result);
    }
    try {
      std::rethrow_exception(error);
    } catch (const transport_failure& f) {
      throw words_for(f, dog.fired(), dog.limit());
    } catch (const boost::system::system_error& e) {
      // Never e.what(): it carries Boost's source location.
      throw client_error(client_error::kind::network, url.authority() + ": " + describe(e.code()));
    }
  }

  client_error words_for(const transport_failure& f, bool timed_out, std::chrono::milliseconds limit) const {
    const std::string where = url.authority();
    const std::string wait = seconds_text(limit);
    std::string text;
    switch (f.where) {
      case stage::resolve:
        text = "cannot resolve " + url.host + ": " + (timed_out ? "no answer within " + wait : describe(f.ec));
        break;
      case stage::connect:
        text = "cannot connect to " + where + ": " + (timed_out ? "no answer within " + wait : describe(f.ec));
        break;
      case stage::handshake:
        if (timed_out) {
          text = "TLS handshake with " + where + " timed out after " + wait;
        } else {
          text = "TLS handshake with " + where + " failed: " + describe(f.ec);
          if (!f.detail.empty()) {
            text += " " + f.detail;
          } else if (describe(f.ec).find("wrong version number") != std::string::npos) {
            text += " (is the server speaking plain http?)";
          }
        }
        break;
      case stage::send:
        text = timed_out ? "sending to " + where + " stalled: no progress for " + wait
                         : "connection to " + where + " lost while sending the request: " + describe(f.ec);
        break;
      case stage::receive_head:
        if (timed_out) {
          text = where + " did not answer within " + wait;
        } else if (f.ec.category() == http::make_error_code(http::error::bad_version).category() &&
                   f.ec != http::error::end_of_stream && f.ec != http::error::partial_message) {
          // Bytes came back, but not an HTTP answer: most often a TLS
          // listener spoken to in plain http.
          text = "the answer from " + where + " is not HTTP (" + describe(f.ec) + ")" +
                 (url.tls ? "" : "; is it an https:// server?");
        } else {
          text = "no answer from " + where + ": " + describe(f.ec);
          if (!url.tls && (f.ec == http::error::end_of_stream || f.ec == net::error::eof)) {
            text += " (if it speaks TLS, use https://)";  // a TLS listener drops a plain request
          }
        }
        break;
      case stage::receive_body:
        text = timed_out ? where + " sent nothing for " + wait
                         : "connection to " + where + " lost while reading the answer: " + describe(f.ec);
        break;
    }
    return {client_error::kind::network, text};
  }
};

http_client::http_client(client_options options) : impl_(std::make_unique<impl>(std::move(options))) {}
http_client::~http_client() = default;

const server_url& http_client::server() const noexcept {
  return impl_->url;
}

const client_options& http_client::options() const noexcept {
  return impl_->options;
}

response http_client::request(http::verb method, std::string_view target, std::string body,
                              std::string_view content_type, const header_list& headers) {
  request_spec spec;
  spec.method = method;
  spec.target = std::string(target);
  spec.headers = &headers;
  spec.body = body;
  spec.content_type = content_type;
  return impl_->perform(spec);
}

response http_client::upload(std::string_view target, const std::filesystem::path& file, const header_list& headers,
                             const progress_fn& progress) {
  image_file image(file);
  request_spec spec;
  spec.method = http::verb::post;
  spec.target = std::string(target);
  spec.headers = &headers;
  spec.content_type = "application/octet-stream";
  spec.file = &image;
  spec.upload_progress = &progress;
  return impl_->perform(spec);
}

response http_client::fetch(http::verb method, std::string_view target, const header_list& headers,
                            const body_sink& sink, const progress_fn& progress) {
  request_spec spec;
  spec.method = method;
  spec.target = std::string(target);
  spec.headers = &headers;
  spec.sink = &sink;
  spec.download_progress = &progress;
  return impl_->perform(spec);
}

response http_client::download(std::string_view target, const header_list& headers, const std::filesystem::path& file,
                               std::uint64_t& written, const progress_fn& progress) {
  const std::filesystem::path part = file.string() + ".part";
  const auto failed = [&](const char* doing) {
    return client_error(client_error::kind::local,
                        std::string("cannot ") + doing + " " + part.string() + ": " + std::strerror(errno));
  };
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> out(nullptr, &std::fclose);
  written = 0;
  // The file is opened with the first byte of a successful body: a refusal
  // leaves nothing on disk.
  const body_sink sink = [&](std::string_view piece) {
    if (!out) {
      out.reset(std::fopen(part.c_str(), "wb"));
      if (!out) {
        throw failed("create");
      }
    }
    if (std::fwrite(piece.data(), 1, piece.size(), out.get()) != piece.size()) {
      throw failed("write");
    }
    written += piece.size();
    return true;
  };
  try {
    response res = fetch(http::verb::get, target, headers, sink, progress);
    if (!res.ok()) {
      return res;
    }
    if (!out) {  // an empty body
      out.reset(std::fopen(part.c_str(), "wb"));
      if (!out) {
        throw failed("create");
      }
    }
    if (std::fclose(out.release()) != 0) {
      throw failed("write");
    }
    std::error_code ec;
    std::filesystem::rename(part, file, ec);
    if (ec) {
      throw client_error(client_error::kind::local,
                         "cannot rename " + part.string() + " to " + file.string() + ": " + ec.message());
    }
    return res;
  } catch (...) {
    out.reset();
    std::error_code ignored;
    std::filesystem::remove(part, ignored);
    throw;
  }
}

const response& expect_success(const response& r) {
  if (!r.ok()) {
    throw http_failure(r.status, r.reason, r.header("Content-Type"), r.body);
  }
  return r;
}

}  // namespace borderscan::client
