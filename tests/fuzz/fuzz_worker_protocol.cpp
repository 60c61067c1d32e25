// Fuzz target: bytes as what crosses the fence between the daemon and its
// scan worker, read both ways the protocol is read:
//  - as the worker's stdout, split into lines as the daemon splits it: each
//    line decodes to a message or to nothing (never a crash), and a decoded
//    message encodes to one line that decodes to the same message;
//  - as the worker's command line (one argument per line): CLI11 parses it
//    into a worker_invocation or refuses it, the --limits JSON converts or
//    throws, and an accepted invocation turned back into arguments
//    (to_arguments, what the daemon runs) parses to the same invocation.
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "borderscan/protocol/worker_protocol.hpp"
#include "borderscan/scanner/limits.hpp"
#include "fuzz_check.hpp"

namespace {

namespace proto = borderscan::protocol;

std::vector<std::string> lines_of(std::string_view text) {
  std::vector<std::string> lines;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    lines.emplace_back(text.substr(0, nl));
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
  }
  return lines;
}

void check_message_line(const std::string& line) {
  const auto decoded = proto::decode(line);
  if (!decoded) {
    return;
  }
  const std::string encoded = proto::encode(*decoded);
  BORDERSCAN_FUZZ_CHECK(!encoded.empty() && encoded.find('\n') == encoded.size() - 1,
                        "an encoded message is one line: " + encoded);
  const auto again = proto::decode(std::string_view(encoded).substr(0, encoded.size() - 1));
  BORDERSCAN_FUZZ_CHECK(again.has_value(), "an encoded message decodes: " + encoded);
  BORDERSCAN_FUZZ_CHECK(proto::encode(*again) == encoded, "decode(encode(m)) == m: " + encoded);
}

// The worker's own parse: CLI11 over the arguments after "worker".
bool parse_invocation(const std::vector<std::string>& arguments, proto::worker_invocation& into) {
  CLI::App app("fuzz worker");
  proto::add_options(app, into);
  std::vector<std::string> reversed(arguments.rbegin(), arguments.rend());  // CLI11 takes them last first
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError&) {
    return false;
  }
  return true;
}

std::string joined(const std::vector<std::string>& arguments) {
  std::string out;
  for (const auto& a : arguments) {
    out += "[" + a + "] ";
  }
  return out;
}

void check_invocation(const std::vector<std::string>& arguments) {
  proto::worker_invocation invocation;
  if (!parse_invocation(arguments, invocation)) {
    return;
  }
  if (!invocation.limits_json.empty()) {
    // As the worker reads it: any std::exception is a clear bad_arguments error.
    try {
      (void)nlohmann::json::parse(invocation.limits_json).get<borderscan::scanner::limits>();
    } catch (const std::exception&) {
    }
  }
  const std::vector<std::string> written = proto::to_arguments(invocation);
  proto::worker_invocation reparsed;
  BORDERSCAN_FUZZ_CHECK(parse_invocation(written, reparsed),
                        "the worker parses what the daemon writes: " + joined(written));
  BORDERSCAN_FUZZ_CHECK(proto::to_arguments(reparsed) == written,
                        "the worker reads back the invocation the daemon wrote: " + joined(written));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto lines = lines_of(std::string_view(reinterpret_cast<const char*>(data), size));
  for (const auto& line : lines) {
    check_message_line(line);
  }
  check_invocation(lines);
  return 0;
}
