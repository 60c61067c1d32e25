// The evidence behind a flag (reviewer, admin): a flagged file's content, as
// the worker copied it while scanning, inside an AES-256 zip with the
// password `infected`, or a bounded hex/text preview. Every read is audited.
#include <fcntl.h>
#include <unistd.h>

#include <charconv>
#include <system_error>

#include "borderscan/evidence/evidence_zip.hpp"
#include "borderscan/evidence/preview.hpp"
#include "borderscan/server/body_stream.hpp"
#include "handler_support.hpp"

namespace borderscan::server {

using namespace handlers;

namespace {

const name_set views = {"hex", "text"};

[[noreturn]] void not_kept(const std::string& why) {
  throw http_error(http::status::not_found, "evidence-not-kept", "no copy of this file's content is kept: " + why);
}

std::int64_t file_index(const std::string& text) {
  std::int64_t index = -1;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), index);
  if (ec != std::errc{} || end != text.data() + text.size() || index < 0) {
    not_found("file at this index");
  }
  return index;
}

}  // namespace

response router::get_file_content(const route_call& c) {
  const std::string& id = scan_id(c);
  query q(c.url, {"view"});
  const auto view = q.one_of("view", views);
  const std::int64_t index = file_index(c.sub);
  const auto scan = store_.find_scan(id);
  if (!scan) {
    not_found("scan");
  }
  check_may_see(c, *scan);
  if (scan->status != scan_status::done) {
    throw http_error(http::status::conflict, "not-done", "the scan has no report yet");
  }
  const auto row = store_.find_file(id, index);
  if (!row) {
    throw http_error(http::status::not_found, "not-found",
                     "the report has no file at index " + std::to_string(index) + " (indexes start at 0)");
  }
  const json entry = json::parse(*row, nullptr, false);
  const json note = entry.is_object() ? entry.value("evidence", json()) : json();
  if (!note.is_object()) {
    not_kept("only flagged files are copied, and only while evidence.enabled is on");
  }
  if (!note.value("kept", false)) {
    not_kept(note.value("reason", std::string("the scan did not keep it")));
  }
  const std::string sha256 = entry.value("sha256", std::string());
  const auto copy = store_.find_evidence(id, sha256);
  if (!copy) {
    not_kept("the copy did not match the report's SHA-256 when the report was stored, and was discarded");
  }
  if (copy->state != "kept") {
    not_kept("it was deleted when evidence.keep_days passed");
  }
  const std::string path = entry.value("path", std::string());
  // Evidence is personal data: every read is on the record before a byte leaves.
  store_.record("evidence_read", id,
                {{"index", index}, {"path", path}, {"sha256", sha256}, {"view", view ? *view : "zip"}}, c.by,
                clock_.now_ms());
  if (view) {
    json preview = evidence::preview_file(copy->path, *view);
    preview["path"] = path;
    preview["sha256"] = sha256;
    response r = json_response(http::status::ok, preview);
    r.message.set(http::field::cache_control, "no-store");
    return r;
  }
  // The zip is written to an unlinked file in the scan's evidence folder
  // (same disk, owner only), then streamed: never whole in memory.
  std::string scratch = (std::filesystem::path(copy->path).parent_path() / ".download-XXXXXX").string();
  const int fd = ::mkstemp(scratch.data());
  if (fd < 0) {
    throw std::system_error(errno, std::generic_category(), "evidence download");
  }
  std::unique_ptr<file_body_stream> body;
  try {
    evidence::write_encrypted_zip(fd, path, copy->path, "infected", clock_.now_ms() / 1000);
    body = std::make_unique<file_body_stream>(scratch);
  } catch (...) {
    ::close(fd);
    ::unlink(scratch.c_str());
    throw;
  }
  ::close(fd);
  ::unlink(scratch.c_str());  // the open stream keeps the bytes until it is done
  response r;
  r.message = response_message{http::status::ok, 11};
  r.message.set(http::field::content_type, "application/zip");
  r.message.set(http::field::content_disposition, "attachment; filename=\"" + sha256 + ".zip\"");
  r.message.set(http::field::cache_control, "no-store");
  r.stream = std::move(body);
  return r;
}

}  // namespace borderscan::server
