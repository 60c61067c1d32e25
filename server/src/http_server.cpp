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
#include "borderscan/server/logging.hpp"
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

// How the listener takes a new connection.
enum class admission {
  normal,
  health_only,  // past max_connections, in a reserved slot: /healthz and /readyz only
  over_total,   // refused: max_connections and the reserved slots are taken
  over_client,  // refused: the client's address holds max_connections_per_client
};

// What every session needs, shared so that it outlives the server object
// while the last handlers unwind.
struct server_state {
  server_state(request_handler& r, metrics& m, blocking_pool& p, http_config s, const log_config& l)
      : routes(r), stats(m), pool(p), settings(s), access(l) {
    std::random_device rd;
    const std::array<std::uint8_t, 3> random{static_cast<std::uint8_t>(rd()), static_cast<std::uint8_t>(rd()),
                                             static_cast<std::uint8_t>(rd())};
    prefix = scanner::to_hex(random);
  }

  std::string next_request_id() { return prefix + "-" + std::to_string(++counter); }

  // Counts a new connection from `client` when it may stay.
  admission admit(const net::ip::address& client) {
    std::lock_guard lock(mutex);
    const auto it = per_client.try_emplace(client, 0).first;
    admission result = admission::normal;
    if (settings.max_connections_per_client != 0 && it->second >= settings.max_connections_per_client) {
      result = admission::over_client;
    } else if (open.load() >= std::size_t{settings.max_connections} + settings.reserved_health_connections) {
      result = admission::over_total;
    } else if (open.load() >= settings.max_connections) {
      result = admission::health_only;
    }
    if (result == admission::over_client || result == admission::over_total) {
      if (it->second == 0) {
        per_client.erase(it);
      }
      return result;
    }
    ++it->second;
    ++open;
    return result;
  }

  request_handler& routes;
  metrics& stats;
  blocking_pool& pool;
  http_config settings;
  access_log access;
  std::string prefix;
  std::atomic<std::uint64_t> counter{0};
  std::atomic<std::size_t> open{0};
  // Set by start() when TLS is configured; every connection is then TLS.
  std::unique_ptr<ssl::context> tls;

  std::mutex mutex;
  std::map<const connection*, std::weak_ptr<connection>> sessions;
  std::map<net::ip::address, unsigned> per_client;  // open connections by client address
};

namespace {

// A client-supplied X-Request-Id is kept when it is short and harmless.
bool usable_request_id(std::string_view id) {
  return !id.empty() && is_plain_name(id, 64);
}

// RFC 9112 §6.1 and §6.3: only `chunked` is understood, and a request whose
// codings do not end with it has no knowable length. The status and the
// detail of a request to refuse, else nullopt.
std::optional<std::pair<http::status, std::string>> transfer_coding_problem(const request_header& head) {
  const auto [first, last] = head.equal_range(http::field::transfer_encoding);
  if (first == last) {
    return std::nullopt;
  }
  std::vector<std::string> codings;
  std::string named;
  for (auto it = first; it != last; ++it) {
    for (const auto token : http::token_list(it->value())) {
      codings.emplace_back(token);
    }
    named += (named.empty() ? "" : ", ") + std::string(it->value());
  }
  named = escape_for_log(named);
  if (codings.empty() || !beast::iequals(codings.back(), "chunked")) {
    return std::pair{http::status::bad_request, "Transfer-Encoding '" + named +
                                                    "' does not end with chunked, so the body length cannot be "
                                                    "known; send Content-Length or Transfer-Encoding: chunked"};
  }
  if (codings.size() > 1) {
    return std::pair{http::status::not_implemented,
                     "Transfer-Encoding '" + named + "': only the chunked transfer coding is supported"};
  }
  return std::nullopt;
}

bool is_health_probe(const request_header& head) {
  const auto target = head.target();
  const auto path = target.substr(0, target.find('?'));
  return (head.method() == http::verb::get || head.method() == http::verb::head) &&
         (path == "/healthz" || path == "/readyz");
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
    std::lock_guard lock(state_->mutex);
    state_->sessions.erase(this);
    if (const auto it = state_->per_client.find(client_); it != state_->per_client.end() && --it->second == 0) {
      state_->per_client.erase(it);
    }
    --state_->open;
  }

  // `client` was counted by server_state::admit; `health_only`: a reserved slot.
  void run(const net::ip::address& client, bool health_only) {
    client_ = client;
    health_only_ = health_only;
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
      net::dispatch(stream_.get_executor(), beast::bind_front_handler(&session::do_next_request, shared_from_this()));
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
      self->do_next_request();
    });
  }

  // Waits for the first bytes of the next request: idle_timeout on a
  // kept-alive connection, header_timeout from the accept for the first one.
  void do_next_request() {
    if (stopping_) {
      return do_close(net::error::operation_aborted);
    }
    request_read_ = false;
    request_id_.clear();
    request_line_.clear();
    if (buffer_.size() > 0) {
      return do_read_header();  // pipelined: it has begun
    }
    if (first_request_) {
      lowest().expires_at(first_deadline_);
    } else {
      lowest().expires_after(settings().idle_timeout());
    }
    const std::size_t room = std::min<std::size_t>(4096, buffer_.max_size());
    stream_.async_read_some(buffer_.prepare(room), [self = shared_from_this()](beast::error_code ec, std::size_t n) {
      self->buffer_.commit(n);
      if (ec) {
        return self->do_close(ec);
      }
      self->do_read_header();
    });
  }

  // The request has begun: its head must be whole within header_timeout of
  // its first byte however it trickles in (the first request's deadline runs
  // from the accept). The duration logged runs from here too.
  void do_read_header() {
    started_ = std::chrono::steady_clock::now();
    head_parser_.emplace();
    head_parser_->header_limit(settings().header_limit_bytes);
    // The body limit depends on the route; each body parser sets its own.
    head_parser_->body_limit(boost::none);
    lowest().expires_at(first_request_ ? first_deadline_ : started_ + settings().header_timeout());
    http::async_read_header(stream_, buffer_, *head_parser_,
                            beast::bind_front_handler(&session::on_read_header, shared_from_this()));
  }

  // The request line of a refused head, for the log: as parsed, else the
  // first line received (when the parser left it in the buffer).
  std::string received_request_line() const {
    const auto& head = head_parser_->get();
    if (!head.target().empty()) {
      return std::string(head.method_string()) + " " + std::string(head.target());
    }
    std::string_view raw(static_cast<const char*>(buffer_.data().data()), buffer_.size());
    raw = raw.substr(0, std::min<std::size_t>(raw.find_first_of("\r\n"), 512));
    // Logged as a parsed line is: method and target.
    if (const auto version = raw.rfind(" HTTP/"); version != std::string_view::npos) {
      raw = raw.substr(0, version);
    }
    return std::string(raw);
  }

  void on_read_header(beast::error_code ec, std::size_t) {
    if (ec) {
      request_line_ = received_request_line();
      if (ec == beast::error::timeout) {
        // The stream closed the socket at the deadline: nothing can be
        // answered, but the request is logged (408) as any other.
        request_id_ = state_->next_request_id();
        log_request(static_cast<unsigned>(http::status::request_timeout), 0, {});
        return do_close(ec);
      }
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
    const auto& head = head_parser_->get();
    const auto client_id = head["X-Request-Id"];
    request_id_ = usable_request_id(client_id) ? std::string(client_id) : state_->next_request_id();
    request_line_ = std::string(head.method_string()) + " " + std::string(head.target());
    version_ = head.version();
    keep_alive_ = head.keep_alive();
    if (auto refused = transfer_coding_problem(head)) {
      return send_problem(
          refused->first,
          refused->first == http::status::bad_request ? "bad-transfer-encoding" : "unsupported-transfer-coding",
          refused->second);
    }
    if (health_only_ && !is_health_probe(head)) {
      return send_problem(http::status::service_unavailable, "busy",
                          "the server has " + std::to_string(settings().max_connections) +
                              " connections open (http.max_connections); this one was accepted in a reserved slot "
                              "for /healthz and /readyz only; retry in a moment");
    }
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
    upload_route_ = route.pattern;
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
    state_->pool.post(
        [up = std::move(up),
         line = fmt::format("request={} {} \"{}\" upload abandoned after {} bytes ({}); "
                            "nothing kept",
                            request_id_, remote_, escape_for_log(request_line_), received, ec.message())]() mutable {
          up.reset();
          spdlog::warn("{}", line);
        });
    do_close(ec);
  }

  // The upload brought too little too slowly (upload_reader.hpp): 408, and
  // the partial file goes (on the pool: removing it may take a while).
  void on_upload_too_slow(std::unique_ptr<upload> up, const std::string& detail) {
    spdlog::warn("request={} {} upload too slow after {} bytes; nothing kept", request_id_, remote_,
                 up ? up->file().size() : 0);
    state_->pool.post([up = std::move(up)]() mutable { up.reset(); });
    send_problem(http::status::request_timeout, "upload-too-slow", detail, upload_route_);
  }

  void send_problem(http::status status, std::string_view code, const std::string& detail,
                    const std::string& route = {}) {
    keep_alive_ = false;
    if (request_id_.empty()) {
      request_id_ = state_->next_request_id();
    }
    response r;
    r.message = make_problem(status, code, detail, request_id_);
    if (status == http::status::service_unavailable) {
      r.message.set(http::field::retry_after, "1");
    }
    r.route = route;
    send(std::move(r));
  }

  void log_request(unsigned status, std::uint64_t bytes, const std::string& route) {
    const auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started_).count();
    state_->stats.on_http_request(route, status);
    state_->access.write({request_id_, remote_, request_line_, status, bytes, ms});
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
    do_next_request();
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
  net::ip::address client_;
  bool health_only_ = false;  // accepted in a reserved slot past max_connections
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

  std::string request_id_;
  std::string request_line_;  // method and target as received (raw; escaped when logged)
  std::string upload_route_;
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
      return do_accept();
    }
    const auto peer = socket.remote_endpoint(ec);
    const admission admitted = ec ? admission::over_total : state_->admit(peer.address());
    if (ec) {
      // Gone before it was accepted: nothing to count.
    } else if (admitted == admission::over_total || admitted == admission::over_client) {
      // Closing at once is cheaper than a response and tells the client the
      // same. Counted, and said in the access log's summary once a second.
      state_->access.refused(admitted == admission::over_client);
    } else {
      // A streamed response (a report, a file) goes out as its head, then
      // body pieces: with Nagle's algorithm each next write waited for the
      // client's delayed ACK, 40 ms a response (wrk on a report: p50 44 ms).
      beast::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      if (state_->tls) {
        std::make_shared<session<beast::ssl_stream<beast::tcp_stream>>>(std::move(socket), state_, *state_->tls)
            ->run(peer.address(), admitted == admission::health_only);
      } else {
        std::make_shared<session<beast::tcp_stream>>(std::move(socket), state_)
            ->run(peer.address(), admitted == admission::health_only);
      }
    }
    if (socket.is_open()) {
      beast::error_code ignored;
      socket.close(ignored);
    }
    do_accept();
  }

  net::io_context& ioc_;
  tcp::acceptor acceptor_;
  std::shared_ptr<server_state> state_;
};

}  // namespace

http_server::http_server(request_handler& handler, metrics& stats, blocking_pool& pool, http_config settings,
                         const log_config& log)
    : state_(std::make_shared<server_state>(handler, stats, pool, settings, log)),
      ioc_(static_cast<int>(settings.io_threads)),
      access_flush_(ioc_) {}

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
  flush_access_log();
  for (unsigned i = 0; i < std::max(1U, state_->settings.io_threads); ++i) {
    threads_.emplace_back([this] { ioc_.run(); });
  }
  return bound;
}

// Every second, so that a summary of lines not logged does not wait for the next request.
void http_server::flush_access_log() {
  access_flush_.expires_after(std::chrono::seconds(1));
  access_flush_.async_wait([this, state = state_](beast::error_code ec) {
    if (!ec) {
      state->access.flush();
      flush_access_log();
    }
  });
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
