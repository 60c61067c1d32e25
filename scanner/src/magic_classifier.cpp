#include "magic_classifier.hpp"

#include <magic.h>

#include "borderscan/scanner/error.hpp"

namespace borderscan::scanner::detail {
namespace {

magic_set* open_cookie(int flags) {
  magic_set* cookie = magic_open(flags);
  if (cookie == nullptr) {
    throw scan_error(scan_errc::magic_failed, "magic_open failed");
  }
  // libmagic checks the text encoding of (and runs its regular expressions
  // over) up to 64 KiB by default: milliseconds per text file. A few KiB
  // decide the type just as well.
  const std::size_t encoding_max = 4096;
  const std::size_t regex_max = 4096;
  magic_setparam(cookie, MAGIC_PARAM_ENCODING_MAX, &encoding_max);
  magic_setparam(cookie, MAGIC_PARAM_REGEX_MAX, &regex_max);
  if (magic_load(cookie, nullptr) != 0) {
    std::string why = magic_error(cookie) ? magic_error(cookie) : "unknown error";
    magic_close(cookie);
    throw scan_error(scan_errc::magic_failed, "cannot load the libmagic database: " + why);
  }
  return cookie;
}

std::string call(magic_set* cookie, std::span<const std::byte> prefix) {
  const char* text = magic_buffer(cookie, prefix.data(), prefix.size());
  if (text == nullptr) {
    const char* why = magic_error(cookie);
    throw scan_error(scan_errc::magic_failed, std::string("libmagic: ") + (why ? why : "unknown error"));
  }
  return text;
}

}  // namespace

// MAGIC_NO_CHECK_COMPRESS keeps libmagic from decompressing on its own:
// archives are opened by the archive stage, with limits.
magic_classifier::magic_classifier()
    : mime_(open_cookie(MAGIC_MIME_TYPE | MAGIC_NO_CHECK_COMPRESS)),
      description_(open_cookie(MAGIC_NONE | MAGIC_NO_CHECK_COMPRESS)),
      text_description_(open_cookie(MAGIC_NONE | MAGIC_NO_CHECK_COMPRESS | MAGIC_NO_CHECK_SOFT)) {}

magic_classifier::~magic_classifier() {
  magic_close(mime_);
  magic_close(description_);
  magic_close(text_description_);
}

magic_result magic_classifier::classify(std::span<const std::byte> prefix) {
  magic_result r{call(mime_, prefix), {}};
  // Soft magic on text runs hundreds of regular expressions (milliseconds per
  // file). Once the full pass has said "plain text", the description only
  // has to name the encoding, which the cheap checks do.
  r.description = call(r.mime == "text/plain" ? text_description_ : description_, prefix);
  return r;
}

}  // namespace borderscan::scanner::detail
