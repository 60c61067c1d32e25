#include "borderscan/client/server_url.hpp"

#include <charconv>

#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>

#include "borderscan/client/error.hpp"

namespace borderscan::client {

namespace urls = boost::urls;

namespace {

[[noreturn]] void bad_url(std::string_view text, const std::string& why) {
  throw client_error(client_error::kind::usage,
                     "--server " + std::string(text) + ": " + why + " (expected http://HOST[:PORT] or https://...)");
}

}  // namespace

std::string server_url::host_header() const {
  const std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  const std::uint16_t default_port = tls ? 443 : 80;
  return port == default_port ? h : h + ":" + std::to_string(port);
}

std::string server_url::authority() const {
  const std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return h + ":" + std::to_string(port);
}

server_url parse_server_url(std::string_view text) {
  const auto parsed = urls::parse_absolute_uri(text);
  if (!parsed) {
    bad_url(text, "not a URL");
  }
  const urls::url_view& u = *parsed;
  server_url out;
  if (u.scheme_id() == urls::scheme::https) {
    out.tls = true;
  } else if (u.scheme_id() != urls::scheme::http) {
    bad_url(text, "the scheme must be http or https");
  }
  if (u.has_userinfo()) {
    bad_url(text, "credentials do not belong in the URL; use --token");
  }
  if (u.has_query() || u.has_fragment()) {
    bad_url(text, "no query or fragment is allowed");
  }
  switch (u.host_type()) {
    case urls::host_type::name:
      out.host = u.host();
      break;
    case urls::host_type::ipv4:
    case urls::host_type::ipv6:
      out.host = u.host_address();
      out.host_is_ip = true;
      break;
    default:
      bad_url(text, "no usable host");
  }
  if (out.host.empty()) {
    bad_url(text, "no host");
  }
  out.port = out.tls ? 443 : 80;
  if (u.has_port()) {
    // port_number() wraps numbers past 65535; read the digits ourselves.
    const auto digits = u.port();
    unsigned long value = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || value == 0 || value > 65535) {
      bad_url(text, "the port must be 1-65535");
    }
    out.port = static_cast<std::uint16_t>(value);
  }
  out.base_path = std::string(u.encoded_path());
  while (!out.base_path.empty() && out.base_path.back() == '/') {
    out.base_path.pop_back();
  }
  return out;
}

std::string with_query(std::string_view path, const query_params& params) {
  urls::url u;
  u.set_encoded_path(path);
  for (const auto& [key, value] : params) {
    if (!value.empty()) {
      u.params().append({key, value});
    }
  }
  return std::string(u.encoded_target());
}

}  // namespace borderscan::client
