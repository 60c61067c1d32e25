#include "borderscan/client/error.hpp"

#include <cctype>

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/http/error.hpp>
#include <nlohmann/json.hpp>
#include <openssl/err.h>

namespace borderscan::client {

namespace net = boost::asio;
namespace http = boost::beast::http;

namespace {

// "Connection refused" reads better inside a sentence as "connection refused";
// acronyms ("TLS ...", "EOF") stay as they are.
std::string lower_first(std::string text) {
  if (text.size() >= 2 && std::isupper(static_cast<unsigned char>(text[0])) != 0 &&
      std::islower(static_cast<unsigned char>(text[1])) != 0) {
    text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
  }
  return text;
}

// The first line, bounded, with control characters replaced: the text comes
// from the server and ends up on a terminal.
std::string first_line(std::string_view text, std::size_t limit) {
  const auto end = text.find_first_of("\r\n");
  text = text.substr(0, end);
  std::string out(text.substr(0, limit));
  for (auto& c : out) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      c = '?';
    }
  }
  return text.size() > limit ? out + "..." : out;
}

bool printable(std::string_view text) {
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 && c != '\t') {
      return false;
    }
  }
  return true;
}

}  // namespace

std::string describe(const boost::system::error_code& ec) {
  if (ec == net::ssl::error::stream_truncated) {
    return "the connection was cut without a TLS close_notify";
  }
  if (ec == http::error::end_of_stream || ec == net::error::eof) {
    return "the server closed the connection";
  }
  if (ec == http::error::partial_message) {
    return "the connection ended in the middle of the answer";
  }
  if (ec.category() == net::error::get_ssl_category()) {
    // OpenSSL's reason alone ("certificate verify failed"), without the
    // library name Asio appends.
    if (const char* reason = ::ERR_reason_error_string(static_cast<unsigned long>(ec.value())); reason != nullptr) {
      return reason;
    }
  }
  return lower_first(ec.message());
}

client_error http_failure(unsigned status, std::string_view reason, std::string_view content_type,
                          std::string_view body) {
  const std::string status_text = "HTTP " + std::to_string(status);
  const auto base = content_type.substr(0, content_type.find(';'));
  if (base == "application/problem+json" || base == "application/json") {
    const auto problem = nlohmann::json::parse(body, nullptr, false);
    if (problem.is_object()) {
      std::string type;
      if (const auto it = problem.find("type"); it != problem.end() && it->is_string()) {
        type = it->get<std::string>();
      }
      for (const char* field : {"detail", "title"}) {
        if (const auto it = problem.find(field); it != problem.end() && it->is_string() && !it->empty()) {
          return {client_error::kind::http, first_line(it->get<std::string>(), 500) + " (" + status_text + ")", status,
                  type};
        }
      }
    }
  }
  std::string message = status_text;
  if (!reason.empty()) {
    message += " " + std::string(reason);
  }
  if (base == "text/plain" || base == "text/html" || base.empty()) {
    const auto line = body.substr(0, body.find_first_of("\r\n"));
    if (!line.empty() && line.size() <= 200 && printable(line) && base != "text/html") {
      message += ": ";
      message += line;
    }
  }
  return {client_error::kind::http, message, status};
}

}  // namespace borderscan::client
