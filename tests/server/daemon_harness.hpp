#pragma once
// Runs the real borderscand on an ephemeral loopback port with a scratch data
// directory, and a small synchronous Beast client to talk to it.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/verb.hpp>
#include <nlohmann/json.hpp>

#include "bearer.hpp"

namespace borderscan::server::test_support {

struct daemon_options {
  unsigned workers = 2;
  unsigned queue_capacity = 16;
  std::uint64_t max_image_bytes = 0;  // 0: the default
  unsigned shutdown_grace_seconds = 30;
  unsigned debug_scan_delay_ms = 0;
  unsigned debug_store_delay_ms = 0;        // a stored report waits this long before its scan is recorded done
  std::string http_extra = {};              // TOML lines added to the generated [http] table
  std::string storage_extra = {};           // TOML lines added to the generated [storage] table
  std::string jobs_extra = {};              // TOML lines added to the generated [jobs] table
  std::string extra_config = {};            // TOML appended to the generated file (whole tables)
  std::uint64_t file_size_limit_bytes = 0;  // RLIMIT_FSIZE of the daemon (0: none): writes past it fail
  // Started without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH: as root, file
  // modes then bind the daemon as they bind an unprivileged service user.
  bool without_dac_override = false;
};

class daemon {
 public:
  daemon(std::filesystem::path data_dir, daemon_options options = {});
  ~daemon();
  daemon(const daemon&) = delete;
  daemon& operator=(const daemon&) = delete;

  // Starts the process and waits (bounded) until it listens.
  void start();
  // Sends the signal and waits (bounded) for the exit; returns the exit code
  // (-1 when it died from a signal or did not exit).
  int stop(int signal_number);
  void kill_hard();
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }

  std::uint16_t port() const { return port_; }
  const std::filesystem::path& data_dir() const { return data_dir_; }
  std::filesystem::path spool_dir() const { return data_dir_ / "spool"; }
  daemon_options& options() { return options_; }
  std::string log() const;
  std::filesystem::path config_file() const { return data_dir_.parent_path() / "borderscand.toml"; }
  // A token of this daemon's store, made on first use and kept for the test:
  // the admin one ("admin") is made at the first start and becomes the
  // default_bearer_token(); a station's token names the station.
  const std::string& token(const std::string& name, const std::string& role = "station");
  // Another node on the same store: its tokens are this daemon's too (start()
  // then makes no admin token of its own, whose name would be taken).
  void share_tokens(const daemon& other) { tokens_ = other.tokens_; }

 private:
  std::map<std::string, std::string> tokens_;
  std::filesystem::path data_dir_;
  daemon_options options_;
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
  int starts_ = 0;
};

struct http_result {
  unsigned status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  nlohmann::json json() const { return nlohmann::json::parse(body); }
  std::string header(const std::string& lower_name) const {
    const auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

// `borderscand token create` on a data dir (the daemon may be running); the token.
std::string create_token(const std::filesystem::path& config_or_data_dir, const std::string& role,
                         const std::string& name);

// A parsed response as http_result (header names lower-cased).
http_result to_result(const boost::beast::http::response<boost::beast::http::string_body>& res);

// Requests carry default_bearer_token() unless the headers name an
// Authorization (an empty value: none at all).
// One request on a fresh connection. Body write errors are ignored (the
// server may answer before reading the body) and the response is read.
// A request to 127.0.0.1 with the body sized (Content-Length) or chunked.
boost::beast::http::request<boost::beast::http::string_body> make_request(
    boost::beast::http::verb method, const std::string& target, const std::string& body = {},
    const std::map<std::string, std::string>& headers = {}, bool chunked = false);

http_result http_call(std::uint16_t port, boost::beast::http::verb method, const std::string& target,
                      const std::string& body = {}, const std::map<std::string, std::string>& headers = {},
                      bool chunked = false);
inline http_result http_get(std::uint16_t port, const std::string& target) {
  return http_call(port, boost::beast::http::verb::get, target);
}

// Connects `socket` and sends the header of an upload of 4 MiB and its first
// `sent` bytes: an upload in progress, left for the test to end.
void begin_upload(boost::asio::ip::tcp::socket& socket, std::uint16_t port, const std::string& token, std::size_t sent);

// Polls until pred() holds, up to `limit` (generous; never a timing assertion).
bool eventually(const std::function<bool()>& pred, std::chrono::seconds limit = std::chrono::seconds(60));

std::string sha256_hex(const std::string& data);
std::string base64(const std::string& bytes);

}  // namespace borderscan::server::test_support
