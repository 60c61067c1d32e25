#include "borderscan/server/http_server.hpp"

#include <atomic>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <type_traits>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>

#include "body_writer.hpp"
#include "borderscan/scanner/digest.hpp"
#include "client_names.hpp"
#include "upload_reader.hpp"

namespace borderscan::server {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;
namespace ssl = net::ssl;

// What the server knows of an open connection, whatever its stream type.
class connection {
 public:
  virtual ~connection() = default;
  // From any thread: ends the connection soon (server stop).
  virtual void close() = 0;
};

// What every session needs, shared so that it outlives the server object
// while the last handlers unwind.
struct server_state {
  server_state(request_handler& r, metrics& m, blocking_pool& p, http_config s)
      : routes(r), stats(m), pool(p), settings(s) {
    std::random_device rd;
    const std::array<std::uint8_t, 3> random{static_cast<std::uint8_t>(rd()), static_cast<std::uint8_t>(rd()),
                                             static_cast<std::uint8_t>(rd())};
    prefix = scanner::to_hex(random);
  }

  std::string next_request_id() { return prefix + "-" + std::to_string(++counter); }

  request_handler& routes;
  metrics& stats;
  blocking_pool& pool;
  http_config settings;
  std::string prefix;
  std::atomic<std::uint64_t> counter{0};
  std::atomic<std::size_t> open{0};
  // Set by start() when TLS is configured; every connection is then TLS.
  std::unique_ptr<ssl::context> tls;

  std::mutex mutex;
  std::map<const connection*, std::weak_ptr<connection>> sessions;
};

namespace {

// A client-supplied X-Request-Id is kept when it is short and harmless.
bool usable_request_id(std::string_view id) {
  return !id.empty() && is_plain_name(id, 64);
}

bool quiet_close(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == net::error::eof || ec == net::error::operation_aborted ||
         ec == beast::error::timeout || ec == net::error::connection_reset || ec == net::error::broken_pipe ||
         ec == ssl::error::stream_truncated;
}

// The OpenSSL reason of a failed load ("No such file or directory", "key
// values mismatch", "no start line", ...).
std::string tls_reason(const beast::error_code& ec) {
  std::string reason = ec.message();
  return reason.empty() ? std::string("unknown OpenSSL error") : reason;
}

// Loads the certificate chain and key into a server context: TLS 1.2 and later,
// no renegotiation. Throws std::runtime_error naming the file and the reason.
std::unique_ptr<ssl::context> make_tls_context(const std::filesystem::path& certificate,
                                               const std::filesystem::path& private_key) {
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                   ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
  if (SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION) != 1) {
    throw std::runtime_error("TLS: cannot set the minimum protocol version to TLS 1.2");
  }
  SSL_CTX_set_options(ctx->native_handle(), SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // Never prompt for a passphrase (OpenSSL would ask on the terminal): an
  // encrypted key fails to load instead.
  ctx->set_password_callback([](std::size_t, ssl::context::password_purpose) { return std::string(); });
  beast::error_code ec;
  ctx->use_certificate_chain_file(certificate.string(), ec);
  if (ec) {
    throw std::runtime_error("TLS: cannot load the certificate chain " + certificate.string() +
                             " (http.tls_certificate): " + tls_reason(ec));
  }
  ctx->use_private_key_file(private_key.string(), ssl::context::pem, ec);
  const bool mismatch = ec && ec.category() == net::error::get_ssl_category() &&
                        ERR_GET_LIB(static_cast<unsigned long>(ec.value())) == ERR_LIB_X509 &&
                        ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == X509_R_KEY_VALUES_MISMATCH;
  if (mismatch || (!ec && SSL_CTX_check_private_key(ctx->native_handle()) != 1)) {
    throw std::runtime_error("TLS: the private key " + private_key.string() +
                             " (http.tls_private_key) does not match the certificate " + certificate.string());
  }
  if (ec) {
    throw std::runtime_error(
        "TLS: cannot load the private key " + private_key.string() + " (http.tls_private_key): " + tls_reason(ec) +
        (ec.category() == net::error::get_ssl_category() ? " (an unencrypted PEM key is expected)" : ""));
  }
  return ctx;
}

}  // namespace

// One connection. `Stream` is beast::tcp_stream (plain HTTP) or
// beast::ssl_stream<beast::tcp_stream> (TLS); everything above the stream is
// the same code. Deadlines are set on the TCP layer, so they bound the TLS
// records (and the handshake) as well. The session reads request heads and
// small bodies and writes whole responses; an upload's body is read by its
// upload_reader, a streamed body or event stream written by its body_writer.
// Handlers that may block run on the blocking pool (off_io), never here.
template <class Stream>
class session : public connection, public std::enable_shared_from_this<session<Stream>> {
  static constexpr bool is_tls = !std::is_same_v<Stream, beast::tcp_stream>;
  using std::enable_shared_from_this<session<Stream>>::shared_from_this;
  using std::enable_shared_from_this<session<Stream>>::weak_from_this;
  friend class upload_reader<session>;
  friend class body_writer<session>;

 public:
  session(tcp::socket&& socket, std::shared_ptr<server_state> state) requires(!is_tls)
      : stream_(std::move(socket)),
        state_(std::move(state)),
        buffer_(state_->settings.header_limit_bytes + 64 * 1024),
        timer_(stream_.get_executor()),
        stop_timer_(stream_.get_executor()) {
    init();
  }

  session(tcp::socket&& socket, std::shared_ptr<server_state> state, ssl::context& ctx) requires(is_tls)
      : stream_(std::move(socket), ctx),
        state_(std::move(state)),
        buffer_(state_->settings.header_limit_bytes + 64 * 1024),
        timer_(stream_.get_executor()),
        stop_timer_(stream_.get_executor()) {
    init();
  }

  ~session() override {
    state_->stats.on_connection_closed();
    --state_->open;
    std::lock_guard lock(state_->mutex);
    state_->sessions.erase(this);
  }

  void run() {
    {
      std::lock_guard lock(state_->mutex);
      state_->sessions[this] = weak_from_this();
    }
    // header_timeout runs from here: it covers the TLS handshake and the first
    // request head together.
    first_deadline_ = std::chrono::steady_clock::now() + settings().header_timeout();
    if constexpr (is_tls) {
      net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->do_handshake(); });
    } else {
      net::dispatch(stream_.get_executor(), beast::bind_front_handler(&session::do_read_header, shared_from_this()));
    }
  }

  // From any thread: ends the connection (server stop). Plain: at once. TLS:
  // pending I/O is cancelled and a close_notify sent, bounded in time.
  void close() override {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      beast::error_code ec;
      self->stopping_ = true;
      self->timer_.cancel();
      if constexpr (is_tls) {
        // The cancelled operation's handler ends in do_close(), which sends
        // the close_notify; this timer closes the socket whatever happens.
        self->stop_timer_.expires_after(std::chrono::milliseconds(1500));
        self->stop_timer_.async_wait([weak = self->weak_from_this()](beast::error_code wait_ec) {
          if (auto s = weak.lock(); s && !wait_ec) {
            s->lowest().close();
          }
        });
        if (!self->writer_.active()) {
          self->lowest().cancel();
        }
        // A body being written is not cancelled: that could cut a TLS record
        // in half mid-write, and the client would see a truncated stream. Its
        // timer was cancelled above, and the writer sees stopping_ at the next
        // piece.
      } else {
        self->lowest().socket().shutdown(tcp::socket::shutdown_both, ec);
        self->lowest().close();
      }
    });
  }

 private:
  void init() {
    beast::error_code ec;
    const auto ep = lowest().socket().remote_endpoint(ec);
    remote_ = ec ? std::string("?") : ep.address().to_string() + ":" + std::to_string(ep.port());
    state_->stats.on_connection_opened();
  }

  // What the upload reader and the body writer use of their session.
  const http_config& settings() const { return state_->settings; }
  request_handler& handler() { return state_->routes; }
  Stream& stream() { return stream_; }
  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }
  beast::flat_buffer& buffer() { return buffer_; }
  net::steady_timer& timer() { return timer_; }
  bool stopping() const { return stopping_; }
  const std::string& request_id() const { return request_id_; }

  // Runs `work` on the blocking pool, then `then(result)` back on this
  // session's strand; the session stays alive in between. `admit`: new
  // work, refused (false, nothing runs) when the pool's queue is full.
  template <class Work, class Then>
  bool off_io(Work work, Then then, bool admit = false) {
    // The executor counts as outstanding work while the task is out: a
    // session waiting for the pool has no I/O pending, and without it the
    // I/O threads would end (io_context::run returns when out of work) once
    // the listener stops accepting, leaving the session unserved.
    auto strand = net::prefer(stream_.get_executor(), net::execution::outstanding_work.tracked);
    auto task = [self = shared_from_this(), strand = std::move(strand), work = std::move(work),
                 then = std::move(then)]() mutable {
      net::post(strand, [self, then = std::move(then), result = work()]() mutable { then(std::move(result)); });
    };
    if (admit) {
      return state_->pool.try_post(std::move(task));
    }
    state_->pool.post(std::move(task));
    return true;
  }

  void do_handshake() {
    lowest().expires_at(first_deadline_);
    stream_.async_handshake(ssl::stream_base::server, [self = shared_from_this()](beast::error_code ec) {
      if (ec) {
        if (ec != beast::error::timeout && ec != net::error::operation_aborted) {
          spdlog::debug("connection {}: TLS handshake failed: {}", self->remote_, ec.message());
        }
        self->closing_ = true;
        return self->lowest().close();
      }
      self->handshake_done_ = true;
      self->do_read_header();
    });
  }

  void do_read_header() {
    if (stopping_) {
      return do_close(net::error::operation_aborted);
    }
    head_parser_.emplace();
    head_parser_->header_limit(settings().header_limit_bytes);
    // The body limit depends on the route; each body parser sets its own.
    head_parser_->body_limit(boost::none);
    request_read_ = false;
    if (first_request_) {
      lowest().expires_at(first_deadline_);
    } else {
      lowest().expires_after(settings().idle_timeout());
    }
    http::async_read_header(stream_, buffer_, *head_parser_,
                            beast::bind_front_handler(&session::on_read_header, shared_from_this()));
  }

  void on_read_header(beast::error_code ec, std::size_t) {
    if (ec) {
      if (ec == http::error::header_limit) {
        return send_problem(http::status::request_header_fields_too_large, "header-too-large",
                            "the request head exceeds " + std::to_string(settings().header_limit_bytes) + " bytes");
      }
      if (ec.category() == http::make_error_code(http::error::end_of_stream).category() &&
          ec != http::error::end_of_stream) {
        return send_problem(http::status::bad_request, "malformed-request", "malformed HTTP request: " + ec.message());
      }
      return do_close(ec);
    }
    first_request_ = false;
    started_ = std::chrono::steady_clock::now();
    const auto& head = head_parser_->get();
    const auto client_id = head["X-Request-Id"];
    request_id_ = usable_request_id(client_id) ? std::string(client_id) : state_->next_request_id();
    method_ = std::string(head.method_string());
    target_ = std::string(head.target());
    version_ = head.version();
    keep_alive_ = head.keep_alive();
    if (const auto* route = handler().route_of(head); route != nullptr && route->streamed_upload) {
      return do_begin_upload(*route);
    }
    do_read_body();
  }

  void do_read_body() {
    body_parser_.emplace(std::move(*head_parser_));
    body_parser_->body_limit(settings().body_limit_bytes);
    lowest().expires_after(settings().read_timeout());
    http::async_read(stream_, buffer_, *body_parser_,
                     beast::bind_front_handler(&session::on_read_body, shared_from_this()));
  }

  void on_read_body(beast::error_code ec, std::size_t) {
    if (ec == http::error::body_limit) {
      keep_alive_ = false;
      return send_problem(http::status::payload_too_large, "too-large",
                          "the request body exceeds " + std::to_string(settings().body_limit_bytes) + " bytes");
    }
    if (ec) {
      if (ec.category() == http::make_error_code(http::error::end_of_stream).category()) {
        keep_alive_ = false;
        return send_problem(http::status::bad_request, "malformed-request", "malformed HTTP body: " + ec.message());
      }
      return do_close(ec);
    }
    request_read_ = true;
    request req = body_parser_->release();
    const route_info* route = handler().route_of(req);
    if (route == nullptr || route->where == runs_on::io_thread) {
      // Unmatched requests are answered (400, 404, 405) without the store.
      return send(handler().handle(req, {request_id_, remote_}));
    }
    const bool admitted = off_io(
        [&h = handler(), req = std::move(req), id = request_id_, peer = remote_] {
          return h.handle(req, {id, peer});
        },
        [this](response r) { send(std::move(r)); }, true);
    if (!admitted) {
      send_busy(*route);
    }
  }

  // The blocking pool has too much waiting: refused at once, not queued.
  void send_busy(const route_info& route) {
    response busy;
    busy.message = make_problem(http::status::service_unavailable, "busy",
                                "the server has too much work waiting; retry in a moment", request_id_);
    busy.message.set(http::field::retry_after, "1");
    busy.route = route.pattern;
    send(std::move(busy));
  }

  // Checking an upload's head looks at the spool's free space and creates
  // the spool file: directory work that may wait for the disk, so it runs on
  // the blocking pool too.
  void do_begin_upload(const route_info& route) {
    std::optional<std::uint64_t> length;
    if (const auto declared = head_parser_->content_length()) {
      length = *declared;
    }
    const bool admitted = off_io(
        [&h = handler(), head = request_header(head_parser_->get().base()), length, id = request_id_, peer = remote_] {
          return h.begin_upload(head, length, {id, peer});
        },
        [this](std::variant<response, std::unique_ptr<upload>> begun) { on_upload_begun(std::move(begun)); }, true);
    if (!admitted) {
      keep_alive_ = false;  // the body stays unread
      send_busy(route);
    }
  }

  void on_upload_begun(std::variant<response, std::unique_ptr<upload>> begun) {
    if (auto* refused = std::get_if<response>(&begun)) {
      // The body stays unread, so the connection cannot be reused.
      keep_alive_ = false;
      return send(std::move(*refused));
    }
    uploader_.start(*head_parser_, std::get<std::unique_ptr<upload>>(std::move(begun)));
  }

  // The upload reader's outcomes. Finishing an upload waits for the disk
  // (fdatasync) and the store, so it runs on the blocking pool, as does
  // dropping one (removing a partial file of gigabytes takes a while). The
  // body's own writes stay on the I/O thread (upload_reader.hpp says why).
  void on_upload_received(std::unique_ptr<upload> up) {
    request_read_ = true;
    off_io(
        [&h = handler(), up = std::move(up), id = request_id_, peer = remote_]() mutable {
          return h.finish_upload(std::move(up), {id, peer});
        },
        [this](response r) { send(std::move(r)); });
  }

  void on_upload_failed(std::unique_ptr<upload> up, beast::error_code ec) {
    keep_alive_ = false;
    off_io(
        [&h = handler(), up = std::move(up), ec, id = request_id_, peer = remote_]() mutable {
          return h.upload_failed(std::move(up), ec, {id, peer});
        },
        [this](response r) { send(std::move(r)); });
  }

  void on_upload_abandoned(std::unique_ptr<upload> up, beast::error_code ec) {
    const std::uint64_t received = up ? up->file().size() : 0;
    // Logged once the partial file is gone, so the line says what is true.
    state_->pool.post([up = std::move(up),
                       line = fmt::format("request={} {} {} {} upload abandoned after {} bytes ({}); "
                                          "nothing kept",
                                          request_id_, remote_, method_, target_, received, ec.message())]() mutable {
      up.reset();
      spdlog::warn("{}", line);
    });
    do_close(ec);
  }

  void send_problem(http::status status, std::string_view code, const std::string& detail) {
    keep_alive_ = false;
    if (request_id_.empty()) {
      request_id_ = state_->next_request_id();
    }
    response r;
    r.message = make_problem(status, code, detail, request_id_);
    send(std::move(r));
  }

  void log_request(unsigned status, std::uint64_t bytes, const std::string& route) {
    const auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started_).count();
    state_->stats.on_http_request(route, status);
    spdlog::info("request={} {} \"{} {}\" status={} bytes={} ms={:.1f}", request_id_, remote_, method_, target_, status,
                 bytes, ms);
  }

  // The fields every response carries.
  template <class Body>
  void stamp(http::response<Body>& msg) const {
    msg.version(version_ == 10 ? 10 : 11);
    msg.keep_alive(keep_alive_);
    msg.set(http::field::server, "borderscand");
    msg.set("X-Request-Id", request_id_);
  }

  void send(response res) {
    if (res.stream || (res.events && res.message.result() == http::status::ok)) {
      return writer_.start(std::move(res));
    }
    auto& msg = res.message;
    stamp(msg);
    msg.prepare_payload();
    keep_alive_ = msg.keep_alive();
    log_request(msg.result_int(), msg.body().size(), res.route);
    lowest().expires_after(settings().read_timeout());
    beast::async_write(stream_, http::message_generator(std::move(msg)),
                       beast::bind_front_handler(&session::on_write, shared_from_this()));
  }

  void on_write(beast::error_code ec, std::size_t) {
    if (ec) {
      return do_close(ec);
    }
    if (!keep_alive_) {
      if constexpr (is_tls) {
        // The whole request was read: nothing to discard, close_notify at once.
        if (request_read_) {
          return do_close({});
        }
      }
      return do_linger();
    }
    do_read_header();
  }

  // Lingering close (as nginx does): after answering a request whose body we
  // did not read, stop sending and discard what the client still sends for a
  // short while, so it reads our answer instead of a connection reset. With
  // TLS the close_notify comes after the discarding (OpenSSL fails on data
  // that arrives after it), so the client sees the end of the stream later.
  void do_linger() {
    timer_.cancel();
    if constexpr (!is_tls) {
      beast::error_code ignored;
      lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
    }
    linger_buffer_ = std::make_unique<char[]>(linger_chunk);
    lowest().expires_after(std::chrono::seconds(2));
    do_linger_read();
  }

  void do_linger_read() {
    stream_.async_read_some(net::buffer(linger_buffer_.get(), linger_chunk),
                            [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                              self->lingered_ += n;
                              if (!ec && self->lingered_ < max_linger_bytes) {
                                return self->do_linger_read();
                              }
                              if constexpr (is_tls) {
                                // eof: the client's close_notify; answer it. Else just close.
                                if (ec == net::error::eof) {
                                  return self->do_close({});
                                }
                                self->closing_ = true;
                                self->lowest().close();
                              }
                            });
  }

  void do_close(beast::error_code ec) {
    if (ec && !quiet_close(ec)) {
      spdlog::debug("connection {} closed: {}", remote_, ec.message());
    }
    timer_.cancel();
    if constexpr (is_tls) {
      if (closing_) {
        return;
      }
      closing_ = true;
      // A clean end (or a server stop) gets a close_notify, bounded in time;
      // after a timeout, a reset or a TLS error the socket is just closed.
      const bool clean =
          !ec || ec == http::error::end_of_stream || ec == net::error::eof || ec == net::error::operation_aborted;
      if (!handshake_done_ || !clean) {
        return lowest().close();
      }
      lowest().expires_after(std::chrono::seconds(1));
      stream_.async_shutdown([self = shared_from_this()](beast::error_code) { self->lowest().close(); });
    } else {
      beast::error_code ignored;
      lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
    }
  }

  static constexpr std::size_t linger_chunk = 64 * 1024;
  static constexpr std::uint64_t max_linger_bytes = 256ULL << 20;

  Stream stream_;
  std::shared_ptr<server_state> state_;
  std::unique_ptr<char[]> linger_buffer_;
  std::uint64_t lingered_ = 0;
  beast::flat_buffer buffer_;
  net::steady_timer timer_;
  net::steady_timer stop_timer_;  // TLS: bounds the close at server stop
  std::string remote_;
  bool first_request_ = true;
  std::chrono::steady_clock::time_point first_deadline_;
  bool request_read_ = false;    // the current request was read whole
  bool handshake_done_ = false;  // TLS
  bool closing_ = false;         // TLS: close_notify sent or socket closed
  bool stopping_ = false;        // close() was called

  std::optional<http::request_parser<http::empty_body>> head_parser_;
  std::optional<http::request_parser<http::string_body>> body_parser_;
  upload_reader<session> uploader_{*this};
  body_writer<session> writer_{*this};

  std::string request_id_, method_, target_;
  unsigned version_ = 11;
  bool keep_alive_ = true;
  std::chrono::steady_clock::time_point started_;
};

namespace {

class listener : public std::enable_shared_from_this<listener> {
 public:
  listener(net::io_context& ioc, const tcp::endpoint& endpoint, std::shared_ptr<server_state> state)
      : ioc_(ioc), acceptor_(net::make_strand(ioc)), state_(std::move(state)) {
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(net::socket_base::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(net::socket_base::max_listen_connections);
  }

  tcp::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }

  void run() {
    net::dispatch(acceptor_.get_executor(), [self = shared_from_this()] { self->do_accept(); });
  }

  void stop() {
    net::post(acceptor_.get_executor(), [self = shared_from_this()] {
      beast::error_code ec;
      self->acceptor_.close(ec);
    });
  }

 private:
  void do_accept() {
    acceptor_.async_accept(net::make_strand(ioc_), beast::bind_front_handler(&listener::on_accept, shared_from_this()));
  }

  void on_accept(beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor_.is_open()) {
      return;
    }
    if (ec) {
      spdlog::warn("accept failed: {}", ec.message());
    } else if (state_->open.load() >= state_->settings.max_connections) {
      // Closing at once is cheaper than a response and tells the client the same.
      spdlog::warn("refusing a connection: {} connections open (max_connections)", state_->open.load());
      beast::error_code ignored;
      socket.close(ignored);
    } else {
      ++state_->open;
      if (state_->tls) {
        std::make_shared<session<beast::ssl_stream<beast::tcp_stream>>>(std::move(socket), state_, *state_->tls)->run();
      } else {
        std::make_shared<session<beast::tcp_stream>>(std::move(socket), state_)->run();
      }
    }
    do_accept();
  }

  net::io_context& ioc_;
  tcp::acceptor acceptor_;
  std::shared_ptr<server_state> state_;
};

}  // namespace

http_server::http_server(request_handler& handler, metrics& stats, blocking_pool& pool, http_config settings)
    : state_(std::make_shared<server_state>(handler, stats, pool, settings)),
      ioc_(static_cast<int>(settings.io_threads)) {}

http_server::~http_server() {
  stop();
}

tcp::endpoint http_server::start(const std::string& host, std::uint16_t port) {
  const auto& s = state_->settings;
  if (!s.tls_certificate.empty() || !s.tls_private_key.empty()) {
    if (s.tls_certificate.empty() || s.tls_private_key.empty()) {
      throw std::runtime_error("TLS needs both http.tls_certificate and http.tls_private_key");
    }
    state_->tls = make_tls_context(s.tls_certificate, s.tls_private_key);
  }
  const auto address = net::ip::make_address(host);
  auto l = std::make_shared<listener>(ioc_, tcp::endpoint(address, port), state_);
  const tcp::endpoint bound = l->local_endpoint();
  l->run();
  listener_ = l;
  for (unsigned i = 0; i < std::max(1U, state_->settings.io_threads); ++i) {
    threads_.emplace_back([this] { ioc_.run(); });
  }
  return bound;
}

void http_server::stop_accepting() {
  if (auto l = std::static_pointer_cast<listener>(listener_)) {
    l->stop();
  }
}

void http_server::stop() {
  if (stopped_) {
    return;
  }
  stopped_ = true;
  stop_accepting();
  std::vector<std::shared_ptr<connection>> open;
  {
    std::lock_guard lock(state_->mutex);
    for (auto& [ptr, weak] : state_->sessions) {
      if (auto s = weak.lock()) {
        open.push_back(std::move(s));
      }
    }
  }
  for (auto& s : open) {
    s->close();
  }
  open.clear();
  // Let the closes and their handlers run (partial uploads are removed as
  // their sessions end), then end the loop.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (state_->open.load() > 0 && !threads_.empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ioc_.stop();
  for (auto& t : threads_) {
    t.join();
  }
  threads_.clear();
  // Work the sessions left on the blocking pool posts back to ioc_ when it
  // ends (and removes abandoned uploads): let it end while ioc_ exists. Its
  // completions are then destroyed, unrun, with ioc_.
  state_->pool.wait_idle();
  listener_.reset();
}

}  // namespace borderscan::server
