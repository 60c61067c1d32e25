#include "borderscan/scanner/object_scanner.hpp"

#include <yara.h>

#include <algorithm>
#include <cstring>
#include <exception>

#include "borderscan/scanner/digest.hpp"
#include "borderscan/scanner/error.hpp"
#include "borderscan/scanner/evidence_pack.hpp"
#include "borderscan/scanner/extension.hpp"
#include "borderscan/scanner/text.hpp"
#include "c_handle.hpp"
#include "digest.hpp"
#include "magic_classifier.hpp"

namespace borderscan::scanner {
namespace {

using yr_scanner_ptr = std::unique_ptr<YR_SCANNER, detail::c_deleter<&yr_scanner_destroy>>;

std::string base_name(std::string_view path) {
  // Archive members: the name after the last container separator.
  const auto cut = path.find_last_of("/!");
  return std::string(cut == std::string_view::npos ? path : path.substr(cut + 1));
}

std::string dir_name(std::string_view path) {
  const auto cut = path.find_last_of("/!");
  return std::string(cut == std::string_view::npos ? std::string_view{} : path.substr(0, cut));
}

// As `yara -s` shows matched data: printable ASCII as it is, every other
// byte (and the backslash) as \xHH, so no control character reaches a screen.
std::string printable_of(const std::uint8_t* data, std::size_t size) {
  std::string out;
  for (std::size_t i = 0; i < size; ++i) {
    const auto c = data[i];
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += "\\x" + to_hex(std::span(&c, 1));
    }
  }
  return out;
}

// The first matches of each of the rule's strings, so a reviewer sees what
// matched and where without the content (private strings stay private).
void add_matches(finding& f, YR_SCAN_CONTEXT* context, const YR_RULE* rule) {
  const YR_STRING* string = nullptr;
  yr_rule_strings_foreach(rule, string) {
    if (STRING_IS_PRIVATE(string)) {
      continue;
    }
    f.match_count += static_cast<std::uint64_t>(std::max(0, context->matches[string->idx].count));
    // libyara keeps matches in an arena without their alignment: each is
    // copied out before it is read (yr_string_matches_foreach reads in place).
    for (const YR_MATCH* at = context->matches[string->idx].head;
         at != nullptr && f.matches.size() < max_matches_per_finding;) {
      YR_MATCH match;
      std::memcpy(&match, at, sizeof match);
      at = match.next;
      if (match.is_private) {
        continue;
      }
      const auto shown =
          std::min<std::size_t>(static_cast<std::size_t>(std::max(0, match.data_length)), max_match_bytes);
      f.matches.push_back({string->identifier != nullptr ? string->identifier : "",
                           static_cast<std::uint64_t>(match.base + match.offset),
                           static_cast<std::uint64_t>(match.match_length), printable_of(match.data, shown),
                           to_hex(std::span(match.data, shown))});
    }
  }
}

finding make_yara_finding(const file_entry& entry, const YR_RULE* rule, YR_SCAN_CONTEXT* context) {
  finding f;
  f.path = entry.path;
  f.volume = entry.volume;
  f.source = "yara";
  f.rule = rule->identifier;
  f.rule_namespace = rule->ns != nullptr && rule->ns->name != nullptr ? rule->ns->name : "";
  const char* tag = nullptr;
  yr_rule_tags_foreach(rule, tag) {
    f.tags.emplace_back(tag);
  }
  std::optional<severity> from_severity, from_score;
  const YR_META* meta = nullptr;
  yr_rule_metas_foreach(rule, meta) {
    const std::string key = meta->identifier;
    nlohmann::json value;
    if (meta->type == META_TYPE_INTEGER) {
      value = meta->integer;
    } else if (meta->type == META_TYPE_BOOLEAN) {
      value = meta->integer != 0;
    } else {
      // Meta strings come from rule authors: keep them valid UTF-8.
      value = escape_name(meta->string != nullptr ? meta->string : "");
    }
    if (key == "severity" && value.is_string()) {
      from_severity = parse_severity(value.get<std::string>());
    } else if (key == "score") {
      if (value.is_number_integer()) {
        from_score = severity_from_score(value.get<long long>());
      } else if (value.is_string()) {
        try {
          from_score = severity_from_score(std::stoll(value.get<std::string>()));
        } catch (const std::exception&) {
        }
      }
    }
    // Repeated keys (several `reference` lines) become arrays.
    if (f.meta.contains(key)) {
      auto& slot = f.meta[key];
      if (!slot.is_array()) {
        slot = nlohmann::json::array({slot});
      }
      slot.push_back(std::move(value));
    } else {
      f.meta[key] = std::move(value);
    }
  }
  f.level = from_severity.value_or(from_score.value_or(severity::medium));
  if (context != nullptr) {
    add_matches(f, context, rule);
  }
  return f;
}

}  // namespace

std::optional<std::vector<finding>> yara_result_cache::find(const std::string& key) const {
  std::lock_guard lock(mutex_);
  const auto it = entries_.find(key);
  if (it == entries_.end()) {
    return std::nullopt;
  }
  ++hits_;
  return it->second;
}

void yara_result_cache::store(std::string key, std::vector<finding> findings) {
  std::lock_guard lock(mutex_);
  if (entries_.size() < max_entries_) {
    entries_.emplace(std::move(key), std::move(findings));
  }
}

std::uint64_t yara_result_cache::hits() const {
  std::lock_guard lock(mutex_);
  return hits_;
}

std::size_t yara_result_cache::digest_hash::operator()(const sha256_digest& d) const noexcept {
  std::size_t h = 0;
  std::memcpy(&h, d.data(), sizeof h);  // a cryptographic digest is already well mixed
  return h;
}

std::optional<yara_result_cache::content_type> yara_result_cache::find_type(const sha256_digest& sha256) const {
  std::lock_guard lock(mutex_);
  const auto it = types_.find(sha256);
  if (it == types_.end()) {
    return std::nullopt;
  }
  ++type_hits_;
  return content_type{it->second->first, it->second->second};
}

void yara_result_cache::store_type(const sha256_digest& sha256, const content_type& type) {
  std::lock_guard lock(mutex_);
  if (types_.size() < max_entries_) {
    const auto name = type_names_.emplace(type.mime, type.description).first;
    types_.emplace(sha256, &*name);
  }
}

std::uint64_t yara_result_cache::type_hits() const {
  std::lock_guard lock(mutex_);
  return type_hits_;
}

std::size_t memory_source::read_at(std::uint64_t offset, std::span<std::byte> out) {
  if (offset >= data_.size()) {
    return 0;
  }
  const std::size_t n = std::min<std::uint64_t>(out.size(), data_.size() - offset);
  std::memcpy(out.data(), data_.data() + offset, n);
  return n;
}

struct object_scanner::impl {
  const limits& lim;
  std::shared_ptr<const rule_set> rules;
  std::size_t block_size;
  std::size_t overlap;
  detail::magic_classifier magic;
  detail::multi_hasher hasher;
  yr_scanner_ptr yara;
  std::vector<std::byte> buffer;
  // Block 0 of a large object, kept while YARA runs: rule conditions and
  // modules read headers (uint16(0), pe, elf) after the blocks went past.
  std::vector<std::byte> head;
  yara_result_cache* cache;
  std::shared_ptr<evidence_pack> evidence;

  // State of the object being scanned; valid during scan() only.
  struct current_state {
    file_entry* entry = nullptr;
    content_source* source = nullptr;
    const std::function<void(std::uint64_t)>* on_bytes = nullptr;
    object_outcome* outcome = nullptr;
    std::uint64_t total = 0;      // bytes to read
    std::uint64_t fed_until = 0;  // bytes hashed so far, in order
    bool feed = true;             // hash while YARA reads
    bool failed = false;          // a read failed or came up short
    bool unknown_size = false;    // the length is found by reading to the end
    std::uint64_t cached_base = UINT64_MAX;
    std::size_t cached_size = 0;
    std::size_t head_size = 0;  // bytes of block 0 kept in `head` (large objects only)
    bool scan_pass_started = false;
    bool replaying = false;  // YARA walks the blocks again to evaluate conditions and modules
    YR_MEMORY_BLOCK block{};
    std::exception_ptr callback_error;
    // Evidence: a small object's content stays in `buffer`; a forward-only
    // one is copied into `tee` as it is fed (it cannot be read again).
    bool small = false;
    std::optional<evidence_pack::reservation> tee;
    bool tee_overflow = false;            // a stream of unknown length went past the region
    std::string tee_error;                // why the copy could not be made
    std::optional<sha256_digest> sha256;  // of the whole content, when complete
  } cur;

  impl(const limits& l, std::shared_ptr<const rule_set> r, std::size_t bs, std::size_t ov, yara_result_cache* c,
       std::shared_ptr<evidence_pack> ev)
      : lim(l),
        rules(std::move(r)),
        block_size(bs),
        overlap(std::min(ov, bs / 2)),
        buffer(bs),
        cache(c),
        evidence(std::move(ev)) {
    if (rules->yara() != nullptr) {
      YR_SCANNER* s = nullptr;
      if (yr_scanner_create(rules->yara(), &s) != ERROR_SUCCESS) {
        throw scan_error(scan_errc::internal, "yr_scanner_create failed");
      }
      yara.reset(s);
      yr_scanner_set_flags(yara.get(), SCAN_FLAGS_REPORT_RULES_MATCHING);
      yr_scanner_set_timeout(yara.get(), static_cast<int>(lim.yara_timeout_seconds));
      yr_scanner_set_callback(yara.get(), &impl::on_yara_message, this);
    }
  }

  void add_error(const char* stage, scan_errc code, std::string message) {
    error_entry e;
    e.path = cur.entry->path;
    e.volume = cur.entry->volume;
    e.stage = stage;
    e.code = to_string(code);
    e.message = std::move(message);
    // Deleted content may simply no longer exist: evidence, not an unread image.
    e.affects_verdict = !cur.entry->deleted;
    cur.outcome->errors.push_back(std::move(e));
  }

  // Reads [offset, offset+out.size()) fully, or records why not. Returns bytes
  // read. Only the first read problem of an object is recorded: later attempts
  // (YARA walking the blocks again) would only repeat it.
  std::size_t read_fully(std::uint64_t offset, std::span<std::byte> out) {
    std::size_t done = 0;
    try {
      while (done < out.size()) {
        const std::size_t n = cur.source->read_at(offset + done, out.subspan(done));
        if (n == 0) {
          break;
        }
        done += n;
      }
    } catch (const scan_error& e) {
      if (!cur.failed) {
        add_error("read", scan_errc::read_failed,
                  "read failed at offset " + std::to_string(offset + done) + ": " + e.what());
      }
      cur.failed = true;
      return done;
    }
    if (done < out.size() && cur.unknown_size) {
      // The end of a stream of unknown length: that is its size.
      cur.total = offset + done;
      cur.unknown_size = false;
      return done;
    }
    if (done < out.size()) {
      if (!cur.failed) {
        add_error(
            "read", scan_errc::short_read,
            "short read: content ends at byte " + std::to_string(offset + done) + " of " + std::to_string(cur.total));
      }
      cur.failed = true;
    }
    return done;
  }

  void feed(std::uint64_t base, std::span<const std::byte> data) {
    const std::uint64_t end = base + data.size();
    if (!cur.feed || end <= cur.fed_until || base > cur.fed_until) {
      return;
    }
    const auto fresh = data.subspan(static_cast<std::size_t>(cur.fed_until - base));
    hasher.update(fresh);
    copy_to_tee(cur.fed_until, fresh);
    cur.fed_until = end;
    if (*cur.on_bytes) {
      (*cur.on_bytes)(fresh.size());
    }
  }

  // --- YARA block iterator over the source: blocks of block_size that overlap
  // by `overlap` bytes, so a match shorter than the overlap that straddles a
  // boundary lies wholly inside the next block.
  //
  // YARA walks the blocks once to match strings (the scan pass), then again,
  // from the first, whenever a condition reads data (uint16(0)) or a module
  // looks for its header (pe, elf, math, hash): the replays. Block 0 and the
  // last block are held in memory, so replays cost no reads for them. Middle
  // blocks are read again from a random-access source; a forward-only source
  // (a streamed archive member) cannot go back, so replays skip its middle
  // blocks and YARA treats data there as undefined.
  static YR_MEMORY_BLOCK* iter_first(YR_MEMORY_BLOCK_ITERATOR* it) {
    auto* self = static_cast<impl*>(it->context);
    it->last_error = ERROR_SUCCESS;
    self->cur.replaying = self->cur.scan_pass_started;
    self->cur.scan_pass_started = true;
    return self->block_at(0);
  }
  static YR_MEMORY_BLOCK* iter_next(YR_MEMORY_BLOCK_ITERATOR* it) {
    auto* self = static_cast<impl*>(it->context);
    it->last_error = ERROR_SUCCESS;
    const std::uint64_t prev_end = self->cur.block.base + self->cur.block.size;
    if (prev_end >= self->cur.total || self->cur.failed) {
      return nullptr;
    }
    std::uint64_t next = self->cur.block.base + (self->block_size - self->overlap);
    if (self->cur.replaying && self->cur.source->forward_only() && next < self->cur.cached_base) {
      next = self->cur.cached_base;  // the blocks in between went past and are gone
    }
    return self->block_at(next);
  }
  static uint64_t iter_size(YR_MEMORY_BLOCK_ITERATOR* it) { return static_cast<impl*>(it->context)->cur.total; }
  static const uint8_t* fetch(YR_MEMORY_BLOCK* block) {
    auto* self = static_cast<impl*>(block->context);
    try {
      const uint8_t* data = self->load_block(block->base, block->size);
      // A stream that ended inside this block, or a failed read: YARA sees
      // only the bytes that exist, never a zero-filled tail.
      block->size = std::min(block->size, self->held_bytes_at(block->base));
      return data;
    } catch (...) {
      self->cur.callback_error = std::current_exception();
      return nullptr;
    }
  }

  YR_MEMORY_BLOCK* block_at(std::uint64_t base) {
    if (base >= cur.total && !(base == 0 && cur.total == 0)) {
      return nullptr;
    }
    cur.block.base = base;
    cur.block.size = static_cast<std::size_t>(std::min<std::uint64_t>(block_size, cur.total - base));
    cur.block.context = this;
    cur.block.fetch_data = &impl::fetch;
    return &cur.block;
  }

  // Bytes held in memory from `base` on (block 0 or the current window).
  std::size_t held_bytes_at(std::uint64_t base) const {
    if (base == 0 && cur.head_size > 0) {
      return cur.head_size;
    }
    return base == cur.cached_base ? cur.cached_size : 0;
  }

  // The bytes of block [base, base+size), from memory when held, else read.
  // Null when they went past and the source cannot be read backwards.
  const uint8_t* load_block(std::uint64_t base, std::size_t size) {
    if (base == 0 && cur.head_size > 0) {
      return reinterpret_cast<const uint8_t*>(head.data());
    }
    if (base == cur.cached_base) {
      // Held already; a shorter window means the content ended or failed there.
      return reinterpret_cast<const uint8_t*>(buffer.data());
    }
    if (cur.cached_base != UINT64_MAX && base < cur.cached_base && cur.source->forward_only()) {
      return nullptr;
    }
    std::size_t have = 0;
    // Sequential step: keep the overlap already in the buffer.
    if (cur.cached_base != UINT64_MAX && base > cur.cached_base && base < cur.cached_base + cur.cached_size) {
      have = static_cast<std::size_t>(cur.cached_base + cur.cached_size - base);
      std::memmove(buffer.data(), buffer.data() + (base - cur.cached_base), have);
    }
    const std::size_t got = have < size ? read_fully(base + have, std::span(buffer).subspan(have, size - have)) : 0;
    const std::size_t valid = have + got;
    cur.cached_base = base;
    cur.cached_size = valid;
    feed(base, std::span(buffer).first(valid));
    if (base == 0 && cur.total > block_size) {
      // Large object: keep block 0 for YARA's replays (and libmagic's prefix).
      head.resize(block_size);
      std::memcpy(head.data(), buffer.data(), valid);
      cur.head_size = valid;
    }
    return reinterpret_cast<const uint8_t*>(buffer.data());
  }

  static int on_yara_message(YR_SCAN_CONTEXT* context, int message, void* message_data, void* user_data) {
    auto* self = static_cast<impl*>(user_data);
    try {
      if (message == CALLBACK_MSG_RULE_MATCHING) {
        self->cur.entry->findings.push_back(
            make_yara_finding(*self->cur.entry, static_cast<const YR_RULE*>(message_data), context));
      } else if (message == CALLBACK_MSG_TOO_MANY_MATCHES) {
        const auto* string = static_cast<const YR_STRING*>(message_data);
        error_entry e;
        e.path = self->cur.entry->path;
        e.volume = self->cur.entry->volume;
        e.stage = "yara";
        e.code = "too_many_matches";
        e.message = std::string("string ") + (string && string->identifier ? string->identifier : "?") +
                    " matched too many times; later matches of it were not counted";
        e.affects_verdict = false;
        self->cur.outcome->errors.push_back(std::move(e));
      }
      return CALLBACK_CONTINUE;
    } catch (...) {
      // Never unwind through libyara.
      self->cur.callback_error = std::current_exception();
      return CALLBACK_ERROR;
    }
  }

  void set_externals(const file_entry& entry) {
    const std::string name = base_name(entry.path);
    yr_scanner_define_string_variable(yara.get(), "filename", name.c_str());
    yr_scanner_define_string_variable(yara.get(), "filepath", dir_name(entry.path).c_str());
    yr_scanner_define_string_variable(yara.get(), "extension", extension_of(name).c_str());
    yr_scanner_define_string_variable(yara.get(), "filetype", entry.mime.c_str());
    yr_scanner_define_string_variable(yara.get(), "owner", "");
  }

  void report_yara_result(int rc) {
    if (cur.callback_error) {
      std::exception_ptr e = std::exchange(cur.callback_error, nullptr);
      std::rethrow_exception(e);
    }
    if (rc == ERROR_SUCCESS) {
      return;
    }
    if (rc == ERROR_SCAN_TIMEOUT) {
      add_error("yara", scan_errc::yara_timeout,
                "YARA scan timed out after " + std::to_string(lim.yara_timeout_seconds) + " s; matches may be missing");
    } else if (rc == ERROR_BLOCK_NOT_READY || cur.failed) {
      // The read error is already recorded.
    } else {
      add_error("yara", scan_errc::yara_failed, "libyara error code " + std::to_string(rc));
    }
  }

  void yara_scan_buffer(std::span<const std::byte> data) {
    set_externals(*cur.entry);
    const int rc = yr_scanner_scan_mem(yara.get(), reinterpret_cast<const uint8_t*>(data.data()), data.size());
    report_yara_result(rc);
  }

  void yara_scan_blocks() {
    set_externals(*cur.entry);
    YR_MEMORY_BLOCK_ITERATOR it{};
    it.context = this;
    it.first = &impl::iter_first;
    it.next = &impl::iter_next;
    it.file_size = &impl::iter_size;
    const int rc = yr_scanner_scan_mem_blocks(yara.get(), &it);
    report_yara_result(rc);
  }

  // Reads (and hashes) whatever YARA did not.
  void read_rest() {
    while (cur.fed_until < cur.total && !cur.failed) {
      const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(block_size, cur.total - cur.fed_until));
      const std::uint64_t base = cur.fed_until;
      const std::size_t got = read_fully(base, std::span(buffer).first(want));
      cur.cached_base = base;
      cur.cached_size = got;
      feed(base, std::span(buffer).first(got));
      if (got < want) {
        break;
      }
    }
  }

  // digests: of the whole content, when known, so that a copy of content
  // already classified in this scan reuses the answer.
  void classify_prefix(std::span<const std::byte> prefix, const detail::digests* digests = nullptr) {
    const bool use_cache = cache != nullptr && digests != nullptr;
    if (use_cache) {
      if (auto known = cache->find_type(digests->sha256)) {
        cur.entry->mime = std::move(known->mime);
        cur.entry->description = std::move(known->description);
        return;
      }
    }
    try {
      auto m = magic.classify(prefix.first(std::min<std::size_t>(prefix.size(), lim.magic_bytes)));
      cur.entry->mime = std::move(m.mime);
      cur.entry->description = escape_name(m.description);
    } catch (const scan_error& e) {
      add_error("magic", scan_errc::magic_failed, e.what());
      return;
    }
    if (use_cache) {
      cache->store_type(digests->sha256, {cur.entry->mime, cur.entry->description});
    }
  }

  // Same bytes, same YARA result, unless rules read the per-file externals.
  std::string cache_key(const detail::digests& d) const {
    std::string key(reinterpret_cast<const char*>(d.sha256.data()), d.sha256.size());
    if (rules->uses_externals()) {
      const std::string name = base_name(cur.entry->path);
      for (const std::string& part : {name, dir_name(cur.entry->path), extension_of(name), cur.entry->mime}) {
        key += '\0';
        key += part;
      }
    }
    return key;
  }

  bool known_good_only(const std::vector<hashset_hit>& hits) const {
    return !hits.empty() && std::all_of(hits.begin(), hits.end(),
                                        [](const hashset_hit& h) { return h.kind == hashset_kind::known_good; });
  }

  void apply_hashsets(const detail::digests& d) {
    file_entry& entry = *cur.entry;
    for (const auto& hit : rules->hashsets().lookup(d.md5, d.sha1, d.sha256)) {
      if (hit.kind == hashset_kind::known_good) {
        if (std::find(entry.known.begin(), entry.known.end(), hit.set) == entry.known.end()) {
          entry.known.push_back(hit.set);
        }
        continue;
      }
      const bool seen = std::any_of(entry.findings.begin(), entry.findings.end(), [&](const finding& f) {
        return f.source == "hashset" && f.rule_namespace == hit.set;
      });
      if (seen) {
        continue;  // the same set listing md5 and sha256 of one sample is one finding
      }
      finding f;
      f.path = entry.path;
      f.volume = entry.volume;
      f.source = "hashset";
      f.rule = hit.entry.empty() ? hit.set : hit.entry;
      f.rule_namespace = hit.set;
      f.level = severity::high;
      f.tags = {"known-bad"};
      f.meta = {{"algorithm", hit.algorithm}, {"set", hit.set}, {"entry", hit.entry}};
      entry.findings.push_back(std::move(f));
    }
  }

  void check_extension_stage() {
    file_entry& entry = *cur.entry;
    if (auto v = check_extension(base_name(entry.path), entry.mime)) {
      entry.extension_mismatch = true;
      finding f;
      f.path = entry.path;
      f.volume = entry.volume;
      f.source = "heuristic";
      f.rule = "extension_mismatch";
      f.level = v->level;
      f.tags = {"masquerading"};
      f.meta = {{"extension", extension_of(base_name(entry.path))},
                {"claimed_family", to_string(v->claimed)},
                {"content_family", to_string(v->actual)},
                {"mime", entry.mime},
                {"description", "the file name claims " + std::string(to_string(v->claimed)) + " but the content is " +
                                    to_string(v->actual)}};
      entry.findings.push_back(std::move(f));
    }
  }

  // --- Evidence: a flagged file's content copied into the scan's pack. Every
  // flagged file gets a note saying whether its copy was kept, and why not.

  bool flagged(const file_entry& entry) const {
    return std::any_of(entry.findings.begin(), entry.findings.end(),
                       [&](const finding& f) { return f.level >= lim.flag_threshold; });
  }

  void add_evidence_error(const char* code, std::string message) {
    // The content was scanned all the same: the verdict does not depend on its copy.
    cur.outcome->errors.push_back({cur.entry->path, cur.entry->volume, "evidence", code, std::move(message), false});
  }

  void note_evidence(bool kept, std::string reason = {}) {
    cur.entry->evidence = evidence_note{kept, std::move(reason)};
  }

  void evidence_limit_hit(const char* limit, std::uint64_t value) {
    cur.outcome->limits.push_back({limit, std::to_string(value), cur.entry->path, cur.entry->volume});
    note_evidence(false, std::string("not kept: ") + limit + " (" + std::to_string(value) + " bytes)");
  }

  // A forward-only object cannot be read again once flagged: claim a region
  // before reading, copy every byte fed, and keep or drop it at the end.
  void start_tee(bool unknown_size, std::uint64_t declared, bool truncated_by_limit) {
    if (!evidence || cur.small || !cur.source->forward_only() || truncated_by_limit) {
      return;
    }
    const evidence_limits& el = evidence->limits();
    if (!unknown_size && declared > el.max_file_bytes) {
      return;  // if it is flagged, settle_evidence() records the limit
    }
    if (!evidence->fits_budget(unknown_size ? 1 : declared)) {
      return;
    }
    try {
      cur.tee = evidence->reserve(unknown_size ? std::min(el.max_file_bytes, lim.max_file_bytes) : declared);
    } catch (const std::exception& e) {
      cur.tee_error = e.what();
    }
  }

  void copy_to_tee(std::uint64_t offset, std::span<const std::byte> fresh) {
    if (!cur.tee) {
      return;
    }
    if (offset > cur.tee->capacity() || fresh.size() > cur.tee->capacity() - offset) {
      cur.tee_overflow = true;
      drop_tee();
      return;
    }
    try {
      evidence->write(*cur.tee, offset, fresh);
    } catch (const std::exception& e) {
      cur.tee_error = e.what();
      drop_tee();
    }
  }

  void drop_tee() {
    if (!cur.tee) {
      return;
    }
    try {
      evidence->drop(*cur.tee);
    } catch (const std::exception& e) {
      // The copy of content that may not be flagged could stay in the pack.
      add_evidence_error("evidence_drop_failed", std::string("dropping a copy from the evidence pack: ") + e.what());
    }
    cur.tee.reset();
  }

  // After all findings: keeps a flagged file's content, or says why not.
  void settle_evidence() {
    if (!evidence || !flagged(*cur.entry) || cur.entry->evidence) {
      drop_tee();
      return;
    }
    file_entry& entry = *cur.entry;
    const evidence_limits& el = evidence->limits();
    const std::uint64_t size = entry.size.value_or(entry.bytes_read);
    if (cur.tee_overflow || size > el.max_file_bytes) {
      drop_tee();
      evidence_limit_hit("evidence.max_file_bytes", el.max_file_bytes);
      return;
    }
    if (!entry.content_complete || !cur.sha256) {
      drop_tee();
      note_evidence(false, entry.skipped ? "content not fully read: " + *entry.skipped : "content not fully read");
      return;
    }
    if (evidence->contains(*cur.sha256)) {
      drop_tee();
      note_evidence(true);  // the same content, kept for another file
      return;
    }
    if (!evidence->fits_budget(entry.bytes_read)) {
      drop_tee();
      evidence_limit_hit("evidence.max_bytes_per_scan", el.max_bytes_per_scan);
      return;
    }
    try {
      std::optional<evidence_pack::reservation> copy = take_copy();
      if (!copy) {
        return;  // noted
      }
      switch (evidence->keep(*copy, *cur.sha256, entry.bytes_read)) {
        case evidence_outcome::kept:
        case evidence_outcome::already_kept:
          note_evidence(true);
          break;
        case evidence_outcome::over_scan_budget:
          evidence_limit_hit("evidence.max_bytes_per_scan", el.max_bytes_per_scan);
          break;
      }
    } catch (const std::exception& e) {
      drop_tee();
      add_evidence_error("evidence_write_failed", std::string("copying into the evidence pack: ") + e.what());
      note_evidence(false, std::string("copy failed: ") + e.what());
    }
  }

  // The content in a pending record: the tee, the buffer of a small object,
  // or the object read again. Nullopt (and a note) when there is none.
  std::optional<evidence_pack::reservation> take_copy() {
    const std::uint64_t size = cur.entry->bytes_read;
    if (cur.tee) {
      return std::exchange(cur.tee, std::nullopt);
    }
    if (!cur.tee_error.empty()) {
      add_evidence_error("evidence_write_failed", "copying into the evidence pack: " + cur.tee_error);
      note_evidence(false, "copy failed: " + cur.tee_error);
      return std::nullopt;
    }
    if (cur.small) {
      auto r = evidence->reserve(size);
      evidence->write(r, 0, std::span<const std::byte>(buffer).first(static_cast<std::size_t>(size)));
      return r;
    }
    if (cur.source->forward_only()) {
      note_evidence(false, "streamed content cannot be read again to copy it");
      return std::nullopt;
    }
    return read_again(size);
  }

  // Only flagged files pay for a second read; the copy must hash to what the
  // first read found (a device changing under the scan is not evidence).
  std::optional<evidence_pack::reservation> read_again(std::uint64_t size) {
    auto r = evidence->reserve(size);
    sha256_hasher again;
    std::uint64_t done = 0;
    try {
      while (done < size) {
        const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), size - done));
        const std::size_t n = cur.source->read_at(done, std::span(buffer).first(want));
        if (n == 0) {
          break;
        }
        const auto piece = std::span<const std::byte>(buffer).first(n);
        again.update(piece);
        evidence->write(r, done, piece);
        done += n;
      }
    } catch (const scan_error& e) {
      evidence->drop(r);
      add_evidence_error("evidence_read_failed", std::string("reading the content again to copy it: ") + e.what());
      note_evidence(false, std::string("reading the content again failed: ") + e.what());
      return std::nullopt;
    }
    if (done != size || again.finish() != *cur.sha256) {
      evidence->drop(r);
      add_evidence_error("evidence_content_changed", "the content read again to copy it was not the content scanned (" +
                                                         std::to_string(done) + " of " + std::to_string(size) +
                                                         " bytes, different SHA-256 or length)");
      note_evidence(false, "content changed when read again");
      return std::nullopt;
    }
    return r;
  }

  // For a file flagged after scan() (a container stage found it to be a bomb
  // or encrypted): its copy comes from reading it again.
  object_outcome settle_later(file_entry& entry, content_source& source) {
    object_outcome outcome;
    // Called for every file after its container stages: most are not
    // flagged, or already settled, and cost nothing more here.
    if (!evidence || entry.evidence || !flagged(entry)) {
      return outcome;
    }
    cur = current_state{};
    cur.entry = &entry;
    cur.source = &source;
    cur.outcome = &outcome;
    if (sha256_digest d{}; entry.content_complete && from_hex(entry.sha256, d)) {
      cur.sha256 = d;
    }
    settle_evidence();
    return outcome;
  }

  object_outcome run(file_entry& entry, content_source& source, const std::function<void(std::uint64_t)>& on_bytes) {
    object_outcome outcome;
    cur = current_state{};
    cur.entry = &entry;
    cur.source = &source;
    cur.on_bytes = &on_bytes;
    cur.outcome = &outcome;
    hasher.reset();

    const bool unknown_size = !entry.size && !source.size_known();
    const std::uint64_t declared = unknown_size ? lim.max_file_bytes : entry.size.value_or(source.size());
    cur.unknown_size = unknown_size;
    cur.total = std::min(declared, lim.max_file_bytes);
    bool truncated_by_limit = !unknown_size && declared > lim.max_file_bytes;
    cur.small = cur.total <= block_size;
    start_tee(unknown_size, declared, truncated_by_limit);
    const bool have_yara = yara != nullptr;
    const bool can_skip_known = lim.skip_yara_for_known_good && rules->hashsets().size() > 0;

    std::optional<detail::digests> early_digests;
    if (cur.small) {
      // Small object: one buffer serves every stage.
      const std::size_t n = read_fully(0, std::span(buffer).first(static_cast<std::size_t>(cur.total)));
      cur.cached_base = 0;
      cur.cached_size = n;
      feed(0, std::span(buffer).first(n));
      const auto data = std::span<const std::byte>(buffer).first(n);
      bool skip_yara = false;
      const bool whole = !cur.failed && !truncated_by_limit;
      if ((can_skip_known || cache != nullptr) && whole) {
        early_digests = hasher.finish();
      }
      classify_prefix(data, early_digests ? &*early_digests : nullptr);
      if (can_skip_known && early_digests) {
        skip_yara =
            known_good_only(rules->hashsets().lookup(early_digests->md5, early_digests->sha1, early_digests->sha256));
      }
      if (have_yara && !skip_yara) {
        const std::string key = cache != nullptr && early_digests ? cache_key(*early_digests) : std::string();
        if (auto cached = key.empty() ? std::nullopt : cache->find(key)) {
          for (auto& f : *cached) {
            f.path = entry.path;
            f.volume = entry.volume;
            entry.findings.push_back(std::move(f));
          }
        } else {
          const std::size_t errors_before = outcome.errors.size();
          const auto findings_before = static_cast<std::ptrdiff_t>(entry.findings.size());
          yara_scan_buffer(data);
          // Only a complete, error-free result may stand in for later copies,
          // and only YARA's part of it (a raw volume head arrives with its
          // volume's encrypted_volume finding, which is not the bytes').
          if (!key.empty() && outcome.errors.size() == errors_before) {
            cache->store(key, std::vector<finding>(entry.findings.begin() + findings_before, entry.findings.end()));
          }
        }
      }
    } else {
      // Large object: read the first block for libmagic, then let YARA pull
      // overlapping blocks while the hashes are fed in order.
      bool skip_yara = false;
      // Hashing first means reading twice: a forward-only source gets YARA
      // whatever its hash (reading it again would fail and lose the content).
      if (can_skip_known && !truncated_by_limit && !source.forward_only()) {
        // Knowing the hash first costs a separate pass, which only this option asks for.
        read_rest();
        if (!cur.failed) {
          early_digests = hasher.finish();
          skip_yara =
              known_good_only(rules->hashsets().lookup(early_digests->md5, early_digests->sha1, early_digests->sha256));
        }
        cur.feed = false;
        cur.cached_base = UINT64_MAX;
      }
      const std::uint8_t* first = load_block(0, block_size);
      classify_prefix(std::span(reinterpret_cast<const std::byte*>(first), cur.cached_size));
      if (have_yara && !skip_yara && !cur.failed) {
        yara_scan_blocks();
      }
      read_rest();
    }

    entry.bytes_read = cur.fed_until;
    std::uint64_t expected = declared;
    if (unknown_size) {
      // Still "unknown" means the end was never reached within max_file_bytes.
      truncated_by_limit = cur.unknown_size && !cur.failed;
      expected = cur.unknown_size ? UINT64_MAX : cur.total;
      if (!cur.unknown_size && !cur.failed) {
        entry.size = cur.total;
      }
    }
    entry.content_complete = !cur.failed && !truncated_by_limit && entry.bytes_read == expected;
    if (truncated_by_limit) {
      entry.skipped = "content past max_file_bytes (" + std::to_string(lim.max_file_bytes) + ") not read";
      outcome.limits.push_back({"max_file_bytes", std::to_string(lim.max_file_bytes), entry.path, entry.volume});
    }
    if (entry.content_complete) {
      const detail::digests d = early_digests ? *early_digests : hasher.finish();
      entry.md5 = to_hex(d.md5);
      entry.sha1 = to_hex(d.sha1);
      entry.sha256 = to_hex(d.sha256);
      cur.sha256 = d.sha256;
      apply_hashsets(d);
    }
    check_extension_stage();
    settle_evidence();
    return outcome;
  }
};

object_scanner::object_scanner(const limits& lim, std::shared_ptr<const rule_set> rules, std::size_t block_size,
                               std::size_t overlap, yara_result_cache* cache, std::shared_ptr<evidence_pack> evidence)
    : impl_(std::make_unique<impl>(lim, std::move(rules), block_size, overlap, cache, std::move(evidence))) {}

object_scanner::~object_scanner() = default;

object_outcome object_scanner::scan(file_entry& entry, content_source& source,
                                    const std::function<void(std::uint64_t)>& on_bytes) {
  try {
    return impl_->run(entry, source, on_bytes);
  } catch (...) {
    impl_->cur.tee.reset();  // a copy half made is dropped now, not at the next object
    throw;
  }
}

object_outcome object_scanner::settle_evidence(file_entry& entry, content_source& source) {
  return impl_->settle_later(entry, source);
}

object_outcome object_scanner::scan_region(file_entry& entry, std::span<const std::byte> data) {
  object_outcome outcome;
  impl_->cur = impl::current_state{};
  impl_->cur.entry = &entry;
  impl_->cur.outcome = &outcome;
  impl_->cur.total = data.size();
  if (impl_->yara) {
    impl_->yara_scan_buffer(data);
  }
  return outcome;
}

}  // namespace borderscan::scanner
