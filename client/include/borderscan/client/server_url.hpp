#pragma once
// The daemon's base URL as the client connects to it: http:// or https://,
// a host name or IP literal, a port (80/443 by default) and an optional path
// prefix when the daemon sits behind a reverse proxy under a sub-path.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace borderscan::client {

struct server_url {
  bool tls = false;
  std::string host;  // as resolved and verified: an IPv6 literal without brackets
  std::uint16_t port = 0;
  std::string base_path;  // "" or "/prefix", no trailing slash
  bool host_is_ip = false;

  // host[:port] for the Host header (IPv6 in brackets, default port left out).
  std::string host_header() const;
  // host:port for messages ("127.0.0.1:8080", "[::1]:8080").
  std::string authority() const;
  // The base path followed by `target` (which starts with '/').
  std::string target(std::string_view path_and_query) const { return base_path + std::string(path_and_query); }
};

// Parses http://HOST[:PORT][/PREFIX]; throws client_error(kind::usage) saying
// what is wrong (another scheme, no host, a query or credentials in it).
server_url parse_server_url(std::string_view text);

using query_params = std::vector<std::pair<std::string, std::string>>;

// `path` with the parameters percent-encoded as a query; parameters with an
// empty value are left out.
std::string with_query(std::string_view path, const query_params& params);

}  // namespace borderscan::client
