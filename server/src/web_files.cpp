#include "borderscan/server/web_files.hpp"

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "borderscan/scanner/digest.hpp"

namespace borderscan::server {
namespace {

namespace fs = std::filesystem;

std::string content_type_of(const fs::path& file) {
  static const std::map<std::string, std::string, std::less<>> types = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".ico", "image/x-icon"},
      {".woff2", "font/woff2"},
      {".txt", "text/plain; charset=utf-8"},
  };
  const auto it = types.find(file.extension().string());
  return it == types.end() ? "application/octet-stream" : it->second;
}

std::string read_whole(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  if (!in && !in.eof()) {
    throw std::runtime_error("cannot read the console file " + file.string());
  }
  return std::move(out).str();
}

// An application path: the app routes it (/, /reports/ID, /reports/ID/print).
bool is_app_path(std::string_view path) {
  const auto last = path.substr(path.rfind('/') + 1);
  return last.find('.') == std::string_view::npos;
}

}  // namespace

web_files web_files::load(const fs::path& root) {
  web_files out;
  out.root_ = root;
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    return out;
  }
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    // Dot files (the build's copy stamp, editors' droppings) are not the console's.
    if (!entry.is_regular_file() || entry.path().filename().string().starts_with('.')) {
      continue;
    }
    const fs::path relative = entry.path().lexically_relative(root);
    file f;
    f.content = read_whole(entry.path());
    f.type = content_type_of(entry.path());
    f.etag = "\"" + scanner::sha256_hex(f.content).substr(0, 32) + "\"";
    out.files_.emplace("/" + relative.generic_string(), std::move(f));
  }
  return out;
}

void web_files::set_security_headers(response_message& message) {
  message.set("Content-Security-Policy",
              "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
              "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
  message.set("X-Content-Type-Options", "nosniff");
  message.set("X-Frame-Options", "DENY");
  message.set("Referrer-Policy", "no-referrer");
}

std::optional<response_message> web_files::serve(std::string_view path, std::string_view if_none_match) const {
  auto it = files_.find(path);
  if (it == files_.end() && is_app_path(path)) {
    it = files_.find(std::string_view("/index.html"));
  }
  if (it == files_.end()) {
    return std::nullopt;
  }
  const file& f = it->second;
  response_message m;
  m.version(11);
  m.set(http::field::etag, f.etag);
  // Revalidated on every use: a new daemon build serves new files at once,
  // and an unchanged file costs a 304 only.
  m.set(http::field::cache_control, "no-cache");
  set_security_headers(m);
  if (!if_none_match.empty() && if_none_match == f.etag) {
    m.result(http::status::not_modified);
    return m;
  }
  m.result(http::status::ok);
  m.set(http::field::content_type, f.type);
  m.body() = f.content;
  return m;
}

fs::path default_web_dir(const fs::path& configured) {
  if (!configured.empty()) {
    return configured;
  }
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    for (const fs::path& beside :
         {exe.parent_path() / "web", (exe.parent_path() / BORDERSCAN_DATA_FROM_BIN / "web").lexically_normal()}) {
      if (fs::is_directory(beside / "", ec)) {
        return beside;
      }
    }
  }
  return BORDERSCAN_SOURCE_WEB_DIR;
}

}  // namespace borderscan::server
