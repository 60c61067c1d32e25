#include "borderscan/evidence/preview.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

#include "borderscan/scanner/text.hpp"

namespace borderscan::evidence {
namespace {

constexpr std::size_t bytes_per_line = 16;
constexpr std::string_view replacement = "\xEF\xBF\xBD";  // U+FFFD

// Terminal escapes start with ESC (0x1B) or the C1 CSI (U+009B); bidi
// controls make a viewer show text in another order than it is.
bool shown_as_replacement(char32_t cp) {
  if (cp == '\n' || cp == '\t' || cp == '\r') return false;
  return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == 0x061C || cp == 0x200E || cp == 0x200F ||
         (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

std::string clean_text(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (std::size_t i = 0; i < bytes.size();) {
    // Each broken sequence (its longest valid prefix) becomes one U+FFFD, as
    // browsers decode.
    const scanner::utf8_char c = scanner::decode_utf8(bytes, i);
    if (!c.valid || shown_as_replacement(c.code_point)) {
      out += replacement;
    } else {
      out.append(bytes.substr(i, c.length));
    }
    i += c.length;
  }
  return out;
}

nlohmann::json hex_lines(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  auto lines = nlohmann::json::array();
  for (std::size_t off = 0; off < bytes.size(); off += bytes_per_line) {
    const std::string_view line = bytes.substr(off, bytes_per_line);
    std::string hex, text;
    for (const char c : line) {
      const auto b = static_cast<unsigned char>(c);
      if (!hex.empty()) hex += ' ';
      hex += digits[b >> 4];
      hex += digits[b & 0xF];
      text += b >= 0x20 && b < 0x7F ? c : '.';
    }
    lines.push_back({{"offset", off}, {"hex", std::move(hex)}, {"text", std::move(text)}});
  }
  return lines;
}

}  // namespace

nlohmann::json preview_file(const std::filesystem::path& content, std::string_view view, std::size_t max_bytes) {
  if (view != "hex" && view != "text") throw std::invalid_argument("unknown preview view: " + std::string(view));

  // O_NONBLOCK: a FIFO planted at the path must not hang the caller in open().
  const int fd = ::open(content.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "cannot open " + content.string());
  struct closer {
    int fd;
    ~closer() { ::close(fd); }
  } const close_fd{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw std::system_error(errno, std::generic_category(), "cannot stat " + content.string());
  if (!S_ISREG(st.st_mode)) throw std::runtime_error(content.string() + " is not a regular file");

  // The buffer is the bound: at most max_bytes are ever read, even if the
  // file grows meanwhile.
  const auto size = static_cast<std::uint64_t>(st.st_size);
  std::string bytes(static_cast<std::size_t>(std::min<std::uint64_t>(size, max_bytes)), '\0');
  std::size_t got = 0;
  while (got < bytes.size()) {
    const ssize_t n = ::read(fd, bytes.data() + got, bytes.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw std::system_error(errno, std::generic_category(), "cannot read " + content.string());
    if (n == 0) break;  // shrank meanwhile
    got += static_cast<std::size_t>(n);
  }
  bytes.resize(got);

  nlohmann::json out = {{"view", view}, {"size", size}, {"shown_bytes", got}, {"truncated", got < size}};
  if (view == "hex") {
    out["lines"] = hex_lines(bytes);
  } else {
    out["text"] = clean_text(bytes);
  }
  return out;
}

}  // namespace borderscan::evidence
