#pragma once
// The review console's static files (server/web/), read once at start-up and
// served from memory: a request can only name a file that was there, so no
// path from a client ever reaches the file system.

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "borderscan/server/response.hpp"

namespace borderscan::server {

class web_files {
 public:
  // Every regular file under `root` (none when it is not a directory).
  // Throws std::runtime_error when a file there cannot be read.
  static web_files load(const std::filesystem::path& root);

  bool empty() const noexcept { return files_.empty(); }
  std::size_t size() const noexcept { return files_.size(); }
  const std::filesystem::path& root() const noexcept { return root_; }

  // The answer to GET `path` (decoded, starting with '/'): the file, or
  // index.html for an application path (no dot in its last segment), or
  // nothing. A matching If-None-Match gets 304.
  std::optional<response_message> serve(std::string_view path, std::string_view if_none_match) const;

  // The headers every console answer carries: a strict Content-Security-Policy
  // (no inline script or style), no sniffing, no framing, no referrer.
  static void set_security_headers(response_message& message);

 private:
  struct file {
    std::string content;
    std::string type;
    std::string etag;
  };
  std::filesystem::path root_;
  std::map<std::string, file, std::less<>> files_;  // by URL path, "/index.html"
};

// Where the console's files are: `configured` when set, else web/ beside the
// executable (the build copies server/web there), else the source tree's.
std::filesystem::path default_web_dir(const std::filesystem::path& configured);

}  // namespace borderscan::server
