#include "magic_classifier.hpp"

#include <magic.h>

#include <cstring>
#include <string_view>

#include "borderscan/scanner/error.hpp"
#include "c_handle.hpp"

namespace borderscan::scanner::detail {
namespace {

using cookie_ptr = std::unique_ptr<magic_set, detail::c_deleter<&magic_close>>;

cookie_ptr open_cookie(int flags) {
  cookie_ptr cookie(magic_open(flags));
  if (!cookie) {
    throw scan_error(scan_errc::magic_failed, "magic_open failed");
  }
  // libmagic checks the text encoding of (and runs its regular expressions
  // over) up to 64 KiB by default: milliseconds per text file. A few KiB
  // decide the type just as well.
  const std::size_t encoding_max = 4096;
  const std::size_t regex_max = 4096;
  if (magic_setparam(cookie.get(), MAGIC_PARAM_ENCODING_MAX, &encoding_max) != 0 ||
      magic_setparam(cookie.get(), MAGIC_PARAM_REGEX_MAX, &regex_max) != 0) {
    throw scan_error(scan_errc::magic_failed, "libmagic refuses its parameters");
  }
  if (magic_load(cookie.get(), nullptr) != 0) {
    const char* why = magic_error(cookie.get());
    throw scan_error(scan_errc::magic_failed,
                     std::string("cannot load the libmagic database: ") + (why ? why : "unknown error"));
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
void magic_classifier::closer::operator()(magic_set* cookie) const noexcept {
  magic_close(cookie);
}

magic_classifier::magic_classifier()
    : mime_(open_cookie(MAGIC_MIME_TYPE | MAGIC_NO_CHECK_COMPRESS).release()),
      description_(open_cookie(MAGIC_NONE | MAGIC_NO_CHECK_COMPRESS).release()) {}

magic_classifier::~magic_classifier() = default;

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
  magic_result r{call(mime_.get(), prefix), {}};
  // One cookie, flags set per call: libmagic reads them afresh on every call,
  // and one loaded database fewer per thread.
  if (magic_setflags(description_.get(), description_flags(r.mime)) != 0) {
    throw scan_error(scan_errc::magic_failed, "magic_setflags failed");
  }
  r.description = call(description_.get(), prefix);
  // libmagic 5.44 describes a VHDX by its region table alone (", 1st region
  // INVALID"); the file type identifier at byte 0 names the format.
  if (constexpr std::string_view vhdx = "vhdxfile"; prefix.size() >= vhdx.size() &&
                                                    std::memcmp(prefix.data(), vhdx.data(), vhdx.size()) == 0 &&
                                                    !r.description.starts_with("Microsoft Disk Image eXtended")) {
    r.description =
        std::string("Microsoft Disk Image eXtended") + (r.description.starts_with(",") ? "" : ", ") + r.description;
  }
  return r;
}

}  // namespace borderscan::scanner::detail
