// Scans: upload (POST /api/v1/scans), status, cancel and the event stream.
#include <spdlog/spdlog.h>

#include "handler_support.hpp"

namespace borderscan::server {

using namespace handlers;

namespace {

constexpr std::string_view upload_route = "/api/v1/scans";

response upload_problem(std::exception_ptr error, std::string_view request_id) {
  response r;
  r.message = problem_from_exception(error, request_id);
  r.route = std::string(upload_route);
  return r;
}

json scan_json(const scan_record& s, const std::optional<scanner::scan_progress>& live) {
  json progress = {{"files_done", 0}, {"files_found", 0}, {"bytes_done", 0}, {"bytes_total", 0}};
  if (live) {
    progress = {{"files_done", live->files_done},
                {"files_found", live->files_found},
                {"bytes_done", live->bytes_done},
                {"bytes_total", live->bytes_total}};
  } else if (const json stored = json::parse(s.progress, nullptr, false);
             s.status == scan_status::running && stored.is_object()) {
    // Another node runs it: the progress that node last wrote to the store.
    progress.update(stored);
  } else if (s.status == scan_status::done) {
    progress = {{"files_done", s.files},
                {"files_found", s.files},
                {"bytes_done", s.bytes_scanned},
                {"bytes_total", s.bytes_scanned}};
  }
  json j = scan_identity_json(s);
  j["status"] = to_string(s.status);
  j["attempts"] = s.attempts;
  j["progress"] = progress;
  j["ruleset_digest"] = s.ruleset_digest.empty() ? json(nullptr) : json(s.ruleset_digest);
  j["started_at"] = time_or_null(s.started_at);
  j["error"] = s.error.empty() ? json(nullptr) : json(s.error);
  j["image_kept_until"] = time_or_null(s.image_kept_until);
  j["cancelled_by"] =
      s.cancelled_by ? json{{"name", s.cancelled_by->name}, {"role", s.cancelled_by->role}} : json(nullptr);
  return j;
}

// SSE: one event per visible change, then `done`, `failed` or `cancelled`
// and the end. Each event is a snapshot of the scan, and its id names that
// snapshot (status, files and bytes done): a client that reconnects with
// Last-Event-ID is not sent again the snapshot it already has.
class scan_event_source final : public event_source {
 public:
  scan_event_source(report_store& store, job_queue& queue, std::string id, std::string last_event_id)
      : store_(store), queue_(queue), id_(std::move(id)), last_id_(std::move(last_event_id)) {}

  std::string poll(bool& done) override {
    done = false;
    const auto scan = store_.find_scan(id_);
    if (!scan) {
      done = true;
      return "event: failed\ndata: {\"error\":\"scan no longer exists\"}\n\n";
    }
    const json j = scan_json(*scan, queue_.progress(id_));
    const json& p = j["progress"];
    const std::string event_id = std::string(to_string(scan->status)) + "." + std::to_string(scan->attempts) + "." +
                                 p["files_done"].dump() + "." + p["bytes_done"].dump();
    std::string name;
    if (scan->status == scan_status::done || scan->status == scan_status::failed ||
        scan->status == scan_status::cancelled) {
      // The end is always sent: it closes the stream for a client that resumed.
      name = to_string(scan->status);
      done = true;
    } else if (event_id == last_id_) {
      return {};
    } else {
      name = last_status_ != scan->status ? "status" : "progress";
    }
    last_id_ = event_id;
    last_status_ = scan->status;
    return "id: " + event_id + "\nevent: " + name + "\ndata: " + j.dump() + "\n\n";
  }

 private:
  report_store& store_;
  job_queue& queue_;
  std::string id_;
  std::string last_id_;
  std::optional<scan_status> last_status_;
};

// GET /api/v1/events: every scan's changes as they are written to the audit
// log (submitted, done, failed, cancelled, reviewed, marked), for the console's
// queue. The id of an event is its audit entry's seq, so Last-Event-ID resumes
// exactly where the client stopped; without it the stream starts now.
class change_event_source final : public event_source {
 public:
  change_event_source(report_store& store, job_queue& queue, std::optional<std::string> station, std::int64_t after_seq)
      : store_(store), queue_(queue), station_(std::move(station)), after_seq_(after_seq) {}

  std::string poll(bool& done) override {
    done = false;
    std::string out;
    if (!started_) {
      // The position first, as an event with an id and no data: a client that
      // loses the stream before anything happened still resumes from here.
      started_ = true;
      out = "id: " + std::to_string(after_seq_) + "\n\n";
    }
    audit_filter f;
    f.after_seq = after_seq_;
    f.events = {"scan_submitted", "scan_done",       "scan_failed",         "scan_cancelled",
                "scan_requeued",  "review_recorded", "disposition_recorded"};
    f.limit = 100;
    for (const auto& entry : store_.list_audit(f).items) {
      after_seq_ = entry.seq;
      const auto scan = store_.find_scan(entry.scan_id);
      if (!scan || (station_ && scan->station != *station_)) {
        continue;  // purged since, or another station's
      }
      json j = scan_json(*scan, queue_.progress(scan->id));
      j["change"] = entry.event;
      out += "id: " + std::to_string(entry.seq) + "\nevent: scan\ndata: " + j.dump() + "\n\n";
    }
    return out;
  }

 private:
  report_store& store_;
  job_queue& queue_;
  std::optional<std::string> station_;
  std::int64_t after_seq_;
  bool started_ = false;
};

std::string last_event_id(const route_call& c) {
  const auto value = c.req["Last-Event-ID"];
  if (value.size() > 128) {
    bad_request("Last-Event-ID is longer than any id this server sends");
  }
  return std::string(value);
}

response event_stream(std::shared_ptr<event_source> events) {
  response r;
  r.message = response_message{http::status::ok, 11};
  r.message.set(http::field::content_type, "text/event-stream");
  r.message.set(http::field::cache_control, "no-store");
  r.events = std::move(events);
  return r;
}

}  // namespace

response router::post_scan(const route_call& c) {
  // Whole body in memory: the path router tests take. The daemon streams it.
  const request_context ctx(c.request_id, c.by.client);
  auto begun = begin_upload(c.req.base(), c.req.body().size(), ctx);
  if (auto* r = std::get_if<response>(&begun)) {
    return std::move(*r);
  }
  auto up = std::get<std::unique_ptr<upload>>(std::move(begun));
  boost::beast::error_code ec;
  up->file().write(c.req.body().data(), c.req.body().size(), ec);
  if (ec) {
    return upload_failed(std::move(up), ec, ctx);
  }
  return finish_upload(std::move(up), ctx);
}

namespace {

// When and why the scan's image was deleted (retention, an admin); null
// while it may still be on the spool.
json image_deleted_json(report_store& store, const scan_record& scan) {
  if (scan.status == scan_status::queued || scan.status == scan_status::running || scan.image_kept_until) {
    return nullptr;
  }
  audit_filter last;
  last.scan_id = scan.id;
  last.event = "image_deleted";
  last.limit = 1;
  const auto page = store.list_audit(last);
  if (page.items.empty()) {
    return nullptr;
  }
  const audit_entry& e = page.items.front();
  return {{"at", time_or_null(e.at)}, {"reason", e.detail.value("reason", "")}};
}

}  // namespace

response router::get_scan(const route_call& c) {
  const scan_record scan = existing_scan(c, store_);
  json j = scan_json(scan, queue_.progress(scan.id));
  j["image_deleted"] = image_deleted_json(store_, scan);
  return json_response(http::status::ok, j);
}

response router::delete_scan_image(const route_call& c) {
  const scan_record scan = existing_scan(c, store_);
  if (scan.status == scan_status::queued || scan.status == scan_status::running) {
    throw http_error(http::status::conflict, "scan-active",
                     std::string("the scan is ") + to_string(scan.status) +
                         " and reads its image; cancel it first (DELETE /api/v1/scans/" + scan.id + ")");
  }
  std::error_code ec;
  if (!std::filesystem::exists(scan.spool_path, ec)) {
    const json gone = image_deleted_json(store_, scan);
    throw http_error(http::status::conflict, "image-gone",
                     "the scan's image is no longer on the spool" +
                         (gone.is_object() ? " (" + gone.at("reason").get<std::string>() + ")" : std::string()));
  }
  if (!std::filesystem::remove(scan.spool_path, ec) && ec) {
    spdlog::error("request={} job={} cannot delete image {}: {}", c.request_id, scan.id, scan.spool_path, ec.message());
    throw http_error(http::status::internal_server_error, "internal",
                     "the image could not be deleted: " + ec.message());
  }
  // The audit entry's reason names who asked: retention deletes carry "retention period ended".
  store_.image_deleted(scan.id, "deleted by " + c.by.name + " (" + c.by.role + ", request " + c.by.request_id + ")",
                       clock_.now_ms());
  spdlog::info("request={} job={} image {} deleted by {}", c.request_id, scan.id, scan.spool_path, c.by.name);
  response r;
  r.message = response_message{http::status::no_content, 11};
  return r;
}

response router::delete_scan(const route_call& c) {
  const scan_record scan = existing_scan(c, store_);
  const std::string& id = scan.id;
  switch (queue_.cancel(id, c.by)) {
    case cancel_result::cancelled: {
      spdlog::info("request={} job={} state=cancelled by={}", c.request_id, id, c.by.name);
      metrics_.on_scan_failed();
      std::error_code ec;
      std::filesystem::remove(scan.spool_path, ec);
      return json_response(http::status::ok, scan_json(*store_.find_scan(id), std::nullopt));
    }
    case cancel_result::stopping: {
      json j = scan_json(scan, queue_.progress(id));
      j["cancel_requested"] = true;
      spdlog::info("request={} job={} cancel requested", c.request_id, id);
      return json_response(http::status::accepted, j);
    }
    case cancel_result::not_active:
      break;
  }
  throw http_error(
      http::status::conflict, "not-active",
      std::string("the scan is ") + to_string(store_.find_scan(id)->status) + " and can no longer be cancelled");
}

response router::get_active_scans(const route_call& c) {
  query(c.url, {});
  json items = json::array();
  for (const auto& scan : store_.active_scans()) {
    if (c.who && c.who->role == role::station && scan.station != c.who->name) {
      continue;  // a kiosk sees its own scans only
    }
    items.push_back(scan_json(scan, queue_.progress(scan.id)));
  }
  return json_response(http::status::ok, {{"items", std::move(items)}});
}

response router::get_scan_events(const route_call& c) {
  const scan_record scan = existing_scan(c, store_);
  return event_stream(std::make_shared<scan_event_source>(store_, queue_, scan.id, last_event_id(c)));
}

response router::get_events(const route_call& c) {
  query(c.url, {});
  std::int64_t after = 0;
  if (const std::string resume = last_event_id(c); !resume.empty()) {
    if (resume.find_first_not_of("0123456789") != std::string::npos || resume.size() > 18) {
      bad_request("Last-Event-ID must be the id of an event of this stream (a number)");
    }
    after = std::stoll(resume);
  } else {
    audit_filter newest;
    newest.limit = 1;
    const auto page = store_.list_audit(newest);
    after = page.items.empty() ? 0 : page.items.front().seq;
  }
  std::optional<std::string> station;
  if (c.who && c.who->role == role::station) {
    station = c.who->name;  // a kiosk follows its own scans only
  }
  return event_stream(std::make_shared<change_event_source>(store_, queue_, std::move(station), after));
}

std::variant<response, std::unique_ptr<upload>> router::begin_upload(const request_header& head,
                                                                     std::optional<std::uint64_t> content_length,
                                                                     const request_context& ctx) {
  try {
    auto up = std::make_unique<upload>();
    const auto parsed = boost::urls::parse_origin_form(head.target());
    if (!parsed) {
      bad_request("the request target is not a valid origin-form URL");
    }
    query q(*parsed, {"label", "case_ref", "filename"});
    up->scan_.label = q.text("label").value_or("");
    up->scan_.case_ref = q.text("case_ref").value_or("");
    up->scan_.filename = q.text("filename").value_or("");
    if (up->scan_.filename.find('/') != std::string::npos) {
      bad_request("query parameter 'filename' must be a bare file name");
    }
    // The station is the token's name, never a header the client chooses.
    const route_info* route = route_of(head);
    const auto who = admit(*route, head);
    up->scan_.station = who->name;
    up->by_ = actor::of(*who, ctx.request_id, ctx.client);

    if (const auto type = head[http::field::content_type]; !type.empty()) {
      const auto base = type.substr(0, type.find(';'));
      if (!boost::beast::iequals(base, "application/octet-stream")) {
        throw http_error(http::status::unsupported_media_type, "unsupported-media-type",
                         "the image must be sent as application/octet-stream");
      }
    }
    if (content_length && *content_length > settings_.max_image_bytes) {
      throw http_error(http::status::payload_too_large, "too-large",
                       "the image is " + std::to_string(*content_length) + " bytes; the limit is " +
                           std::to_string(settings_.max_image_bytes));
    }
    if (content_length && *content_length == 0) {
      bad_request("the image is empty");
    }
    if (const auto h = head["X-Image-SHA256"]; !h.empty()) {
      up->header_sha256_ = normalise_sha256_hex(h);
    }
    if (const auto h = head["Content-Digest"]; !h.empty()) {
      up->content_digest_sha256_ = content_digest_sha256(h);
    }
    if (content_length && free_disk_bytes(settings_.spool_dir) < *content_length + settings_.min_free_spool_bytes) {
      throw http_error(http::status::insufficient_storage, "spool-full",
                       "the spool has no room for an image of this size now");
    }
    up->slot_ = queue_.reserve();
    if (!up->slot_) {
      throw http_error(http::status::service_unavailable, "queue-full",
                       "the scan queue is full (" + std::to_string(queue_.capacity()) + " scans); retry later")
          .with_header(http::field::retry_after, std::to_string(settings_.retry_after_seconds));
    }
    up->scan_.id = ids_.next();
    up->file_ = std::make_unique<spool_file>(settings_.spool_dir / (up->scan_.id + ".part"));
    return up;
  } catch (...) {
    return upload_problem(std::current_exception(), ctx.request_id);
  }
}

response router::finish_upload(std::unique_ptr<upload> up, const request_context& ctx) {
  try {
    boost::beast::error_code ec;
    const std::string sha256 = up->file().finish(ec);
    if (ec) {
      return upload_failed(std::move(up), ec, ctx);
    }
    const std::uint64_t size = up->file().size();
    if (size == 0) {
      bad_request("the image is empty");
    }
    for (const auto* claimed : {&up->header_sha256_, &up->content_digest_sha256_}) {
      if (*claimed && **claimed != sha256) {
        throw http_error(http::status::unprocessable_entity, "digest-mismatch",
                         "the received image has SHA-256 " + sha256 + " but the request claimed " + **claimed +
                             "; nothing was kept");
      }
    }
    scan_record& scan = up->scan_;
    scan.image_sha256 = sha256;
    scan.image_size = size;
    scan.submitted_at = clock_.now_ms();
    const auto final_path = settings_.spool_dir / (scan.id + ".img");
    scan.spool_path = final_path.string();
    up->file().commit(final_path);
    try {
      queue_.submit(std::move(up->slot_), scan, up->by_);
    } catch (...) {
      std::error_code rm;
      std::filesystem::remove(final_path, rm);
      throw;
    }
    metrics_.on_upload(size);
    spdlog::info("request={} job={} state=queued station='{}' size={} sha256={}", ctx.request_id, scan.id, scan.station,
                 size, sha256);
    response r = json_response(http::status::accepted,
                               {{"id", scan.id}, {"status", "queued"}, {"image_sha256", sha256}, {"size", size}});
    r.route = std::string(upload_route);
    r.message.set(http::field::location, "/api/v1/scans/" + scan.id);
    return r;
  } catch (...) {
    return upload_problem(std::current_exception(), ctx.request_id);
  }
}

response router::upload_failed(std::unique_ptr<upload> up, boost::beast::error_code ec, const request_context& ctx) {
  up.reset();  // removes the partial file, frees the slot
  response r;
  r.route = std::string(upload_route);
  if (ec == http::error::body_limit) {
    r.message = make_problem(
        http::status::payload_too_large, "too-large",
        "the image exceeds the limit of " + std::to_string(settings_.max_image_bytes) + " bytes; nothing was kept",
        ctx.request_id);
  } else if (ec.category() == http::make_error_code(http::error::bad_chunk).category()) {
    // The body's framing (chunk sizes, chunk ends) is broken: the client's error.
    r.message = make_problem(http::status::bad_request, "malformed-request",
                             "malformed chunked body: " + ec.message() + "; nothing was kept", ctx.request_id);
  } else if (ec == boost::system::errc::no_space_on_device || ec == boost::system::errc::file_too_large) {
    spdlog::error("request={} spool write failed: {}", ctx.request_id, ec.message());
    r.message = make_problem(http::status::insufficient_storage, "spool-full",
                             "the spool ran out of space; nothing was kept", ctx.request_id);
  } else {
    spdlog::error("request={} spool write failed: {}", ctx.request_id, ec.message());
    r.message = make_problem(http::status::internal_server_error, "internal",
                             "the image could not be stored; nothing was kept", ctx.request_id);
  }
  return r;
}

}  // namespace borderscan::server
