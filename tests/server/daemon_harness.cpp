#include "daemon_harness.hpp"

#include <fcntl.h>
#include <linux/capability.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <gtest/gtest.h>

#include "borderscan/scanner/digest.hpp"
#include "borderscan/server/upload.hpp"

namespace borderscan::server::test_support {

namespace fs = std::filesystem;
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

daemon::daemon(fs::path data_dir, daemon_options options) : data_dir_(std::move(data_dir)), options_(options) {}

daemon::~daemon() {
  if (pid_ > 0) {
    kill_hard();
  }
}

std::string daemon::log() const {
  std::ifstream in(data_dir_.parent_path() / "daemon.log");
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string create_token(const fs::path& config, const std::string& role, const std::string& name) {
  const std::string cmd = std::string(BORDERSCAND) + " token create --role " + role + " --name " + name + " --config " +
                          config.string() + " 2>&1";
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) {
    return {};
  }
  char buf[512];
  while (std::fgets(buf, sizeof buf, p) != nullptr) {
    out += buf;
  }
  if (::pclose(p) != 0) {
    ADD_FAILURE() << cmd << " failed:\n" << out;
    return {};
  }
  // The token is the last word of the last line.
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) {
    out.pop_back();
  }
  return out.substr(out.find_last_of(" \n") + 1);
}

const std::string& daemon::token(const std::string& name, const std::string& role) {
  auto it = tokens_.find(name);
  if (it == tokens_.end()) {
    it = tokens_.emplace(name, create_token(config_file(), role, name)).first;
  }
  return it->second;
}

void daemon::start() {
  ++starts_;
  fs::create_directories(data_dir_);
  const fs::path config = data_dir_.parent_path() / "borderscand.toml";
  {
    std::ofstream out(config);
    out << "[http]\nlisten = \"127.0.0.1:0\"\nevent_interval_ms = 50\n"
        << options_.http_extra << "\n[storage]\ndata_dir = \"" << data_dir_.string() << "\"\nmin_free_spool_bytes = 0\n"
        << options_.storage_extra << "\n";
    if (options_.max_image_bytes != 0) {
      out << "max_image_bytes = " << options_.max_image_bytes << "\n";
    }
    out << "[jobs]\nworkers = " << options_.workers
        << "\nscan_threads = 1\nqueue_capacity = " << options_.queue_capacity
        << "\nshutdown_grace_seconds = " << options_.shutdown_grace_seconds << "\n"
        << options_.jobs_extra << "\n"
        << "[log]\nlevel = \"debug\"\n"
        << options_.extra_config;
  }
  if (starts_ == 1) {
    default_bearer_token() = token("admin", "admin");
  }
  const fs::path port_file = data_dir_.parent_path() / "port";
  fs::remove(port_file);
  const fs::path log_file = data_dir_.parent_path() / "daemon.log";
  std::vector<std::string> args = {BORDERSCAND,     "serve",       "--config",
                                   config.string(), "--port-file", port_file.string()};
  if (options_.debug_scan_delay_ms > 0) {
    args.push_back("--debug-scan-delay-ms");
    args.push_back(std::to_string(options_.debug_scan_delay_ms));
  }
  if (options_.debug_store_delay_ms > 0) {
    args.push_back("--debug-store-delay-ms");
    args.push_back(std::to_string(options_.debug_store_delay_ms));
  }
  std::vector<char*> argv;
  for (auto& a : args) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  pid_ = fork();
  if (pid_ == 0) {
    const int fd = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    if (options_.file_size_limit_bytes > 0) {
      // Ignored, SIGXFSZ turns a write past the limit into EFBIG, as a full
      // disk would give ENOSPC.
      const rlimit limit{options_.file_size_limit_bytes, options_.file_size_limit_bytes};
      ::setrlimit(RLIMIT_FSIZE, &limit);
      ::signal(SIGXFSZ, SIG_IGN);
    }
    if (options_.without_dac_override) {
      // Out of the bounding set: the exec'd daemon (and its workers) never hold them.
      ::prctl(PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, 0, 0, 0);
      ::prctl(PR_CAPBSET_DROP, CAP_DAC_READ_SEARCH, 0, 0, 0);
    }
    execv(argv[0], argv.data());
    _exit(127);
  }
  ASSERT_GT(pid_, 0);
  const bool up = eventually(
      [&] {
        int status = 0;
        if (waitpid(pid_, &status, WNOHANG) == pid_) {
          pid_ = -1;
          return true;  // died: reported below
        }
        return fs::exists(port_file);
      },
      std::chrono::seconds(60));
  ASSERT_TRUE(up && pid_ > 0) << "borderscand did not start:\n" << log();
  std::ifstream in(port_file);
  unsigned p = 0;
  in >> p;
  port_ = static_cast<std::uint16_t>(p);
  ASSERT_NE(port_, 0) << log();
}

int daemon::stop(int signal_number) {
  if (pid_ <= 0) {
    return -1;
  }
  ::kill(pid_, signal_number);
  int status = 0;
  const bool exited = eventually([&] { return waitpid(pid_, &status, WNOHANG) == pid_; }, std::chrono::seconds(90));
  if (!exited) {
    kill_hard();
    return -1;
  }
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void daemon::kill_hard() {
  if (pid_ <= 0) {
    return;
  }
  ::kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

http::request<http::string_body> make_request(http::verb method, const std::string& target, const std::string& body,
                                              const std::map<std::string, std::string>& headers, bool chunked) {
  http::request<http::string_body> req{method, target, 11};
  req.set(http::field::host, "127.0.0.1");
  if (!default_bearer_token().empty()) {
    req.set(http::field::authorization, "Bearer " + default_bearer_token());
  }
  for (const auto& [k, v] : headers) {
    if (boost::beast::iequals(k, "Authorization") && v.empty()) {
      req.erase(http::field::authorization);
    } else {
      req.set(k, v);
    }
  }
  req.body() = body;
  if (chunked) {
    req.chunked(true);
  } else {
    req.prepare_payload();
  }
  return req;
}

http_result http_call(std::uint16_t port, http::verb method, const std::string& target, const std::string& body,
                      const std::map<std::string, std::string>& headers, bool chunked) {
  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  stream.expires_after(std::chrono::seconds(120));
  stream.connect(net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  const auto req = make_request(method, target, body, headers, chunked);
  beast::error_code ec;
  http::write(stream, req, ec);  // may fail when the server refuses early; the answer is still there
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(256 << 20);
  http::read(stream, buffer, parser, ec);
  if (ec) {
    ADD_FAILURE() << "no response to " << target << ": " << ec.message();
    return {};
  }
  return to_result(parser.get());
}

http_result to_result(const http::response<http::string_body>& res) {
  http_result out;
  out.status = res.result_int();
  for (const auto& f : res) {
    std::string name(f.name_string());
    for (auto& c : name) {
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    out.headers[name] = std::string(f.value());
  }
  out.body = res.body();
  return out;
}

void begin_upload(boost::asio::ip::tcp::socket& socket, std::uint16_t port, const std::string& token,
                  std::size_t sent) {
  namespace net = boost::asio;
  socket.connect(net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  const std::string head =
      "POST /api/v1/scans HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
      "Authorization: Bearer " +
      token + "\r\nContent-Length: 4194304\r\n\r\n";
  net::write(socket, net::buffer(head));
  net::write(socket, net::buffer(std::string(sent, 'x')));
}

bool eventually(const std::function<bool()>& pred, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

std::string sha256_hex(const std::string& data) {
  return scanner::sha256_hex(data);
}

std::string base64(const std::string& bytes) {
  return scanner::base64_encode(std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
}

}  // namespace borderscan::server::test_support
