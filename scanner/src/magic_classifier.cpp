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
      description_(open_cookie(MAGIC_NONE | MAGIC_NO_CHECK_COMPRESS)) {}

magic_classifier::~magic_classifier() {
  magic_close(mime_);
  magic_close(description_);
}

namespace {

// Flags of the description pass, given the MIME pass's answer for the same
// bytes. Each check left out here is one the MIME pass has shown to answer
// "no", so the description cannot change (libmagic 5.44, file_buffer()).
//  - The built-in tar, JSON and CSV checks run before everything that could
//    answer differently in the two modes, and their yes/no depends on the
//    bytes only (not on MAGIC_MIME_TYPE). Had one said yes in the MIME pass,
//    its own MIME type would be the answer; any other answer means it said
//    no, and it would say no again. (Not CDF: its check can say no in MIME
//    mode and yes in description mode for the same document.)
//  - For "text/plain" the description pass has always left soft magic out
//    (see below). Without soft magic and the CSV check, the encoding that
//    libmagic guesses first feeds nothing: its text check, which writes the
//    description, works the encoding out again by itself.
// bench/magic-compare.sh and tests/scanner/magic_classifier_test.cpp compare
// the result with the untrimmed configuration.
int description_flags(const std::string& mime) {
  int flags = MAGIC_NONE | MAGIC_NO_CHECK_COMPRESS;
  if (mime != "application/x-tar") {
    flags |= MAGIC_NO_CHECK_TAR;
  }
  if (mime != "application/json" && mime != "application/x-ndjson") {
    flags |= MAGIC_NO_CHECK_JSON;
  }
  if (mime != "text/csv") {
    flags |= MAGIC_NO_CHECK_CSV;
  }
  if (mime == "text/plain") {
    // Soft magic on text runs hundreds of regular expressions (milliseconds
    // per file). Once the full pass has said "plain text", the description
    // only has to name the encoding, which the cheap checks do.
    flags |= MAGIC_NO_CHECK_SOFT | MAGIC_NO_CHECK_ENCODING;
  }
  return flags;
}

}  // namespace

magic_result magic_classifier::classify(std::span<const std::byte> prefix) {
  magic_result r{call(mime_, prefix), {}};
  // One cookie, flags set per call: libmagic reads them afresh on every call,
  // and one loaded database fewer per thread.
  if (magic_setflags(description_, description_flags(r.mime)) != 0) {
    throw scan_error(scan_errc::magic_failed, "magic_setflags failed");
  }
  r.description = call(description_, prefix);
  return r;
}

}  // namespace borderscan::scanner::detail
