#include "borderscan/scanner/archive.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <locale.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <cwchar>
#include <exception>
#include <optional>

#include "borderscan/scanner/error.hpp"
#include "borderscan/scanner/text.hpp"
#include "c_handle.hpp"
#include "tsk_image.hpp"

namespace borderscan::scanner {
namespace detail {

// Containers smaller than this may expand to ratio * this before counting as a bomb,
// so that tiny archives of ordinary files are not flagged.
constexpr std::uint64_t ratio_floor_bytes = 1 << 20;

// Counts expanded bytes against the container's ratio and the scan's budget.
struct expansion_meter {
  std::uint64_t container_size;
  std::uint32_t ratio;
  std::uint64_t expanded = 0;
  bool bomb = false;
  bool budget_exhausted = false;
  expansion_budget* budget;
  std::uint64_t budget_limit;
  // The enclosing container's meter: bytes expanded in here count there too,
  // so nested layers cannot multiply the ratio.
  expansion_meter* outer = nullptr;
  bool outer_stopped = false;

  // Returns false when no more bytes may be expanded from this container.
  bool account(std::uint64_t n) {
    expanded += n;
    const std::uint64_t allowed = std::max(container_size, ratio_floor_bytes) * ratio;
    if (expanded > allowed) {
      bomb = true;
    }
    if (outer != nullptr && !outer->account_nested(n)) {
      outer_stopped = true;
    }
    return !bomb && !outer_stopped && !budget_exhausted;
  }

 private:
  bool account_nested(std::uint64_t n) {
    expanded += n;
    if (expanded > std::max(container_size, ratio_floor_bytes) * ratio) {
      bomb = true;
    }
    if (outer != nullptr && !outer->account_nested(n)) {
      outer_stopped = true;
    }
    return !bomb && !outer_stopped;
  }

 public:
  // The scan-wide budget is charged once, at the innermost level.
  bool charge_budget(std::uint64_t n) {
    if (budget->expanded_bytes.fetch_add(n) + n > budget_limit) {
      budget_exhausted = true;
    }
    return !budget_exhausted;
  }
  bool stopped() const { return bomb || outer_stopped || budget_exhausted; }
};

}  // namespace detail

namespace {

using detail::expansion_meter;

using archive_ptr = std::unique_ptr<archive, detail::c_deleter<&archive_read_free>>;

// libarchive converts member names between the charset they are stored in
// (UTF-8 flag in zip, UTF-16 in 7z and Joliet, pax hdrcharset) and the calling
// thread's LC_CTYPE. In the "C" locale every non-ASCII name fails to convert
// and libarchive keeps no form of it. Names are therefore read under a UTF-8
// LC_CTYPE, on this thread only and whatever the process locale is (the CLI
// sets one, but the daemon's in-process runner and the tests may not).
locale_t utf8_ctype() {
  static const locale_t loc = [] {
    for (const char* name : {"C.UTF-8", "C.utf8", "en_US.UTF-8"}) {
      if (const locale_t l = newlocale(LC_CTYPE_MASK, name, locale_t{}); l != locale_t{}) {
        return l;  // never freed: shared by every thread for the life of the process
      }
    }
    return locale_t{};
  }();
  return loc;
}

// Switches this thread to utf8_ctype() for a scope. Only libarchive's header
// and name calls run inside it; libmagic and YARA keep the process locale.
class utf8_names_scope {
 public:
  utf8_names_scope() : previous_(utf8_ctype() != locale_t{} ? uselocale(utf8_ctype()) : locale_t{}) {}
  ~utf8_names_scope() {
    if (previous_ != locale_t{}) {
      uselocale(previous_);
    }
  }
  utf8_names_scope(const utf8_names_scope&) = delete;
  utf8_names_scope& operator=(const utf8_names_scope&) = delete;

 private:
  locale_t previous_;
};

static_assert(sizeof(wchar_t) == 4, "wide names are taken to be UTF-32");

// A wide-character name as UTF-8, or nullopt if it holds a value that is no
// Unicode scalar (a lone surrogate, past U+10FFFF).
std::optional<std::string> wide_to_utf8(const wchar_t* wide) {
  std::string out;
  for (; *wide != L'\0'; ++wide) {
    const auto cp = static_cast<std::uint32_t>(*wide);
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return std::nullopt;
    }
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  return out;
}

// The member's name, unescaped: libarchive's UTF-8 form, else its wide form,
// else the bytes as stored (possibly not UTF-8: the caller escapes them).
// Empty when libarchive has no usable form of the name at all.
std::string member_name(archive_entry* entry) {
  const utf8_names_scope utf8_names;
  if (const char* utf8 = archive_entry_pathname_utf8(entry); utf8 != nullptr && *utf8 != '\0') {
    return utf8;
  }
  if (const wchar_t* wide = archive_entry_pathname_w(entry); wide != nullptr && *wide != L'\0') {
    if (auto converted = wide_to_utf8(wide)) {
      return *std::move(converted);
    }
  }
  if (const char* stored = archive_entry_pathname(entry); stored != nullptr) {
    return stored;
  }
  return {};
}

bool mime_is_any(std::string_view mime, std::initializer_list<std::string_view> list) {
  return std::find(list.begin(), list.end(), mime) != list.end();
}

bool is_zip_document(std::string_view mime) {
  return mime.starts_with("application/vnd.openxmlformats-officedocument.") ||
         mime.starts_with("application/vnd.oasis.opendocument.") || mime.starts_with("application/vnd.ms-word.") ||
         mime.starts_with("application/vnd.ms-excel.sheet.") || mime.starts_with("application/vnd.ms-powerpoint.") ||
         mime == "application/java-archive" || mime == "application/epub+zip";
}

bool is_single_stream(std::string_view mime) {
  return mime_is_any(mime, {"application/gzip", "application/x-gzip", "application/x-bzip2", "application/x-xz",
                            "application/zstd", "application/x-zstd", "application/x-lz4", "application/x-lzma",
                            "application/x-lzip", "application/x-compress"});
}

// Reads the container through its content_source; exceptions are kept and
// rethrown after libarchive returns (never unwound through C).
struct container_reader {
  content_source* source = nullptr;
  std::uint64_t pos = 0;
  std::vector<std::byte> buffer = std::vector<std::byte>(256 * 1024);
  std::exception_ptr error;

  static la_ssize_t on_read(archive* a, void* self_ptr, const void** out) {
    auto* self = static_cast<container_reader*>(self_ptr);
    try {
      const std::size_t n = self->source->read_at(self->pos, self->buffer);
      self->pos += n;
      *out = self->buffer.data();
      return static_cast<la_ssize_t>(n);
    } catch (...) {
      self->error = std::current_exception();
      archive_set_error(a, EIO, "reading the container failed");
      return -1;
    }
  }
  static la_int64_t on_seek(archive*, void* self_ptr, la_int64_t offset, int whence) {
    auto* self = static_cast<container_reader*>(self_ptr);
    const auto size = static_cast<la_int64_t>(self->source->size());
    la_int64_t target = offset;
    if (whence == SEEK_CUR) {
      target = static_cast<la_int64_t>(self->pos) + offset;
    } else if (whence == SEEK_END) {
      target = size + offset;
    }
    if (target < 0) {
      return ARCHIVE_FATAL;
    }
    self->pos = static_cast<std::uint64_t>(std::min(target, size));
    return static_cast<la_int64_t>(self->pos);
  }
  static la_int64_t on_skip(archive*, void* self_ptr, la_int64_t request) {
    auto* self = static_cast<container_reader*>(self_ptr);
    const std::uint64_t size = self->source->size();
    const std::uint64_t step = std::min<std::uint64_t>(static_cast<std::uint64_t>(std::max<la_int64_t>(request, 0)),
                                                       size > self->pos ? size - self->pos : 0);
    self->pos += step;
    return static_cast<la_int64_t>(step);
  }
};

// A member read once from libarchive, front to back. Random access backwards
// is not possible; object_scanner only reads forwards except when YARA
// conditions look back, which then see no data.
class member_stream final : public content_source {
 public:
  member_stream(archive* a, std::optional<std::uint64_t> size, expansion_meter& meter)
      : archive_(a), size_(size), meter_(meter) {}
  std::uint64_t size() const override { return size_.value_or(0); }
  bool size_known() const override { return size_.has_value(); }
  bool forward_only() const override { return true; }
  std::size_t read_at(std::uint64_t offset, std::span<std::byte> out) override {
    if (offset < pos_) {
      throw scan_error(scan_errc::read_failed, "streamed archive member cannot be read backwards");
    }
    std::vector<std::byte> sink;
    while (pos_ < offset) {  // skip forward
      sink.resize(static_cast<std::size_t>(std::min<std::uint64_t>(offset - pos_, 1 << 16)));
      const std::size_t n = read_some(sink);
      if (n == 0) {
        return 0;
      }
    }
    return read_some(out);
  }

 private:
  std::size_t read_some(std::span<std::byte> out) {
    if (stopped_ || out.empty()) {
      return 0;
    }
    const la_ssize_t n = archive_read_data(archive_, out.data(), out.size());
    if (n < 0) {
      const char* why = archive_error_string(archive_);
      throw scan_error(scan_errc::read_failed, escape_name(why != nullptr ? why : "archive read error"));
    }
    pos_ += static_cast<std::uint64_t>(n);
    const bool more = meter_.account(static_cast<std::uint64_t>(n));
    if (!meter_.charge_budget(static_cast<std::uint64_t>(n)) || !more) {
      stopped_ = true;
    }
    return static_cast<std::size_t>(n);
  }

  archive* archive_;
  std::optional<std::uint64_t> size_;
  expansion_meter& meter_;
  std::uint64_t pos_ = 0;
  bool stopped_ = false;
};

finding container_finding(const file_entry& parent, const std::string& rule, severity level, nlohmann::json meta,
                          std::vector<std::string> tags) {
  finding f;
  f.path = parent.path;
  f.volume = parent.volume;
  f.source = "limit";
  f.rule = rule;
  f.level = level;
  f.tags = std::move(tags);
  f.meta = std::move(meta);
  return f;
}

}  // namespace

bool is_container(const file_entry& entry) {
  const std::string_view mime = entry.mime;
  return mime_is_any(mime,
                     {"application/zip", "application/x-7z-compressed", "application/x-rar", "application/vnd.rar",
                      "application/x-tar", "application/x-gtar", "application/vnd.ms-cab-compressed",
                      "application/x-cpio", "application/x-archive", "application/x-iso9660-image", "application/x-xar",
                      "application/x-lha", "application/x-lharc"}) ||
         is_single_stream(mime) || is_zip_document(mime);
}

container_expander::container_expander(const limits& lim, object_scanner& scanner, expansion_budget& budget)
    : limits_(lim), scanner_(scanner), budget_(budget) {}

void container_expander::expand(file_entry& parent, content_source& source, const expansion_sink& sink) {
  expand_nested(parent, source, sink, nullptr);
}

bool is_disk_image(const file_entry& entry) {
  // Raw volume heads are already the inside of an image; tiny boot-sector
  // files (NTFS $Boot, saved MBRs) hold no file system worth walking.
  if (entry.type != "regular" || entry.mime != "application/octet-stream" || entry.size.value_or(0) < (64 << 10)) {
    return false;
  }
  const std::string_view d = entry.description;
  return d.starts_with("DOS/MBR boot sector") || d.starts_with("Apple HFS") ||
         d.find("filesystem data") != std::string_view::npos;
}

void container_expander::expand_nested(file_entry& parent, content_source& source, const expansion_sink& sink,
                                       detail::expansion_meter* outer) {
  if (parent.depth >= limits_.max_depth) {
    sink.limit({"max_depth", std::to_string(limits_.max_depth), parent.path, parent.volume});
    return;
  }
  if (is_container(parent)) {
    expand_archive(parent, source, sink, outer);
  } else if (is_disk_image(parent)) {
    expand_disk_image(parent, source, sink, outer);
  }
}

void container_expander::expand_disk_image(file_entry& parent, content_source& source, const expansion_sink& sink,
                                           detail::expansion_meter* outer) {
  std::unique_ptr<detail::tsk_image> image;
  try {
    image = std::make_unique<detail::tsk_image>(source);
  } catch (const scan_error& e) {
    sink.error({parent.path, parent.volume, "image", "embedded_image_unreadable", e.what(), false});
    return;
  }
  // Reading N files that share blocks can amplify an image; count it like expansion.
  expansion_meter meter{source.size(), limits_.max_expansion_ratio,      0,    false, false,
                        &budget_,      limits_.max_total_expanded_bytes, outer};
  detail::walk_sink walk;
  walk.error = [&](error_entry&& e) {
    e.path = e.path.empty() ? parent.path : parent.path + "!" + e.path;
    e.volume = parent.volume;
    // A file that merely looks like a disk image was still scanned whole as a file.
    e.affects_verdict = e.affects_verdict && !parent.deleted && e.code != "no_filesystem";
    sink.error(std::move(e));
  };
  walk.warning = [&](std::string&& w) {
    sink.error({parent.path, parent.volume, "image", "embedded_image_warning", std::move(w), false});
  };
  walk.limit = [&](limit_hit&& l) {
    l.path = parent.path + "!" + l.path;
    l.volume = parent.volume;
    sink.limit(std::move(l));
  };
  walk.stop = [&] { return meter.stopped() || (sink.stop && sink.stop()); };
  std::vector<detail::volume_plan> volumes = image->discover_volumes(walk);
  const bool partitioned = volumes.size() > 1 || (volumes.size() == 1 && volumes.front().entry.scheme != "none");
  bool any_filesystem = false;
  for (auto& v : volumes) {
    any_filesystem = any_filesystem || v.fs_type != 0;
    const std::string prefix = parent.path + "!" + (partitioned ? "vol" + std::to_string(v.entry.index) : "");
    walk.item = [&](detail::walk_item&& item) {
      if (item.entry.type == "raw") {
        return;  // the head of a volume without a file system: the image file itself was scanned whole
      }
      file_entry child = std::move(item.entry);
      child.path = prefix + child.path;
      child.volume = parent.volume;
      child.deleted = child.deleted || parent.deleted;
      child.container = parent.path;
      child.depth = parent.depth + 1;
      if (item.content && !meter.stopped()) {
        try {
          auto member_source = image->open(v, *item.content);
          object_outcome outcome = scanner_.scan(child, *member_source, sink.on_bytes);
          meter.account(child.bytes_read);
          for (auto& e : outcome.errors) sink.error(std::move(e));
          for (auto& l : outcome.limits) sink.limit(std::move(l));
          if (is_expandable(child) && !meter.stopped()) {
            expand_nested(child, *member_source, sink, &meter);
          }
        } catch (const scan_error& e) {
          sink.error({child.path, child.volume, "read", "member_unreadable", e.what(), !child.deleted});
        }
      } else if (item.content) {
        child.skipped = "not read: expansion limit reached";
      }
      sink.member(std::move(child));
    };
    image->walk(v, limits_, walk);
  }
  if (!any_filesystem) {
    sink.error({parent.path, parent.volume, "image", "embedded_image_no_filesystem",
                "looks like a disk image, but no file system could be opened in it", false});
  }
  if (meter.bomb) {
    parent.findings.push_back(
        container_finding(parent, "archive_bomb", severity::high,
                          {{"container_bytes", source.size()},
                           {"expanded_bytes", meter.expanded},
                           {"max_expansion_ratio", limits_.max_expansion_ratio},
                           {"description", "the embedded image's files add up to more than " +
                                               std::to_string(limits_.max_expansion_ratio) + " times its size"}},
                          {"archive-bomb"}));
    sink.limit({"max_expansion_ratio", std::to_string(limits_.max_expansion_ratio), parent.path, parent.volume});
  }
}

void container_expander::expand_archive(file_entry& parent, content_source& source, const expansion_sink& sink,
                                        detail::expansion_meter* outer) {
  // A compressed stream whose content starts with 1 KiB of zeros looks like an
  // empty tar; if the archive formats find no member, read the stream raw.
  if (expand_archive_as(parent, source, sink, outer, false) == 0 && is_single_stream(parent.mime)) {
    expand_archive_as(parent, source, sink, outer, true);
  }
}

std::uint64_t container_expander::expand_archive_as(file_entry& parent, content_source& source,
                                                    const expansion_sink& sink, detail::expansion_meter* outer,
                                                    bool raw_only) {
  auto add_error = [&](const std::string& path, std::string code, std::string message) {
    sink.error({path, parent.volume, "archive", std::move(code), std::move(message), !parent.deleted});
  };
  if (budget_.expanded_bytes.load() >= limits_.max_total_expanded_bytes) {
    // Every container left unopened is named, not just the first.
    budget_.total_limit_reported = true;
    sink.limit(
        {"max_total_expanded_bytes", std::to_string(limits_.max_total_expanded_bytes), parent.path, parent.volume});
    return 1;  // nothing to retry
  }

  archive_ptr a(archive_read_new());
  if (!a) {
    throw scan_error(scan_errc::internal, "archive_read_new failed");
  }
  archive_read_support_filter_all(a.get());
  if (raw_only) {
    archive_read_support_format_raw(a.get());
  } else if (is_zip_document(parent.mime)) {
    archive_read_support_format_zip(a.get());
  } else {
    // Every real archive format, but not mtree or warc: they bid on plain
    // text and would turn a compressed .txt into fake members.
    for (auto* enable :
         {&archive_read_support_format_7zip, &archive_read_support_format_ar, &archive_read_support_format_cab,
          &archive_read_support_format_cpio, &archive_read_support_format_iso9660, &archive_read_support_format_lha,
          &archive_read_support_format_rar, &archive_read_support_format_rar5, &archive_read_support_format_tar,
          &archive_read_support_format_xar, &archive_read_support_format_zip}) {
      enable(a.get());
    }
    if (is_single_stream(parent.mime)) {
      // A compressed file that is not an archive: its one stream is the member.
      archive_read_support_format_raw(a.get());
    }
  }
  container_reader reader;
  reader.source = &source;
  archive_read_set_read_callback(a.get(), &container_reader::on_read);
  archive_read_set_seek_callback(a.get(), &container_reader::on_seek);
  archive_read_set_skip_callback(a.get(), &container_reader::on_skip);
  archive_read_set_callback_data(a.get(), &reader);
  int open_rc = ARCHIVE_OK;
  {
    const utf8_names_scope utf8_names;
    open_rc = archive_read_open1(a.get());
  }
  if (open_rc != ARCHIVE_OK) {
    const char* why = archive_error_string(a.get());
    add_error(parent.path, "archive_unreadable",
              std::string("cannot open as a container: ") + escape_name(why != nullptr ? why : "unknown format"));
    return 1;
  }

  expansion_meter meter{source.size(), limits_.max_expansion_ratio,      0,    false, false,
                        &budget_,      limits_.max_total_expanded_bytes, outer};
  std::vector<std::string> encrypted_members;
  std::uint64_t members = 0;
  std::vector<std::byte> held;

  for (;;) {
    if (sink.stop && sink.stop()) {
      break;
    }
    archive_entry* entry = nullptr;
    int rc = ARCHIVE_OK;
    {
      const utf8_names_scope utf8_names;  // the format readers convert names here
      rc = archive_read_next_header(a.get(), &entry);
    }
    if (rc == ARCHIVE_EOF) {
      break;
    }
    if (rc == ARCHIVE_FATAL || entry == nullptr) {
      const char* why = archive_error_string(a.get());
      add_error(parent.path, "archive_corrupt",
                std::string("container ends early or is corrupt after ") + std::to_string(members) +
                    " member(s): " + escape_name(why != nullptr ? why : "unknown error"));
      break;
    }
    std::string warning;
    if (rc == ARCHIVE_WARN) {
      const char* why = archive_error_string(a.get());
      warning = escape_name(why != nullptr ? why : "warning");
      sink.error({parent.path, parent.volume, "archive", "archive_warning", warning, false});
    }
    if (++members > limits_.max_members) {
      sink.limit({"max_members", std::to_string(limits_.max_members), parent.path, parent.volume});
      break;
    }
    std::string name;
    if (archive_format(a.get()) == ARCHIVE_FORMAT_RAW) {
      // A raw stream has no name of its own: use the container's, less the compression suffix.
      const std::string base = parent.path.substr(parent.path.find_last_of("/!") + 1);
      const auto dot = base.find_last_of('.');
      name = dot != std::string::npos && dot > 0 ? base.substr(0, dot) : base + ".data";
    } else {
      name = escape_name(member_name(entry));  // stored bytes that are not UTF-8 become \xNN
      while (name.size() > 1 && name.back() == '/') {
        name.pop_back();  // directories: "inner/" -> "inner"
      }
    }
    if (name.empty()) {
      // No form of the name survived: a synthetic one, unique in this container
      // (the ordinal counts every entry), and an entry saying why.
      name = "member-" + std::to_string(members);
      sink.error({parent.path + "!" + name, parent.volume, "archive", "archive_member_unnamed",
                  "entry " + std::to_string(members) + " of the container has no readable name" +
                      (warning.empty() ? std::string() : " (" + warning + ")") + "; listed as " + name,
                  false});
    }

    file_entry child;
    child.path = parent.path + "!" + name;
    child.volume = parent.volume;
    child.deleted = parent.deleted;
    child.container = parent.path;
    child.depth = parent.depth + 1;
    const auto filetype = archive_entry_filetype(entry);
    // Some formats (ar, raw streams) carry no file type: their members are files.
    if (filetype == AE_IFDIR) {
      child.type = "directory";
    } else if (filetype == AE_IFLNK) {
      child.type = "symlink";
    } else if (filetype == AE_IFREG || filetype == 0) {
      child.type = "regular";
    } else {
      child.type = "other";
    }
    if (archive_entry_mtime_is_set(entry)) {
      child.times.mtime = archive_entry_mtime(entry);
    }
    if (archive_entry_size_is_set(entry)) {
      child.size = static_cast<std::uint64_t>(std::max<la_int64_t>(archive_entry_size(entry), 0));
    }
    if (child.type != "regular") {
      sink.member(std::move(child));
      continue;
    }
    if (archive_entry_is_data_encrypted(entry) || archive_entry_is_encrypted(entry)) {
      encrypted_members.push_back(name);
      child.skipped = "encrypted member: content not readable";
      sink.member(std::move(child));
      continue;
    }
    const std::uint64_t declared = child.size.value_or(0);
    if (child.size && declared > limits_.max_member_bytes) {
      child.skipped = "member larger than max_member_bytes";
      sink.limit({"max_member_bytes", std::to_string(limits_.max_member_bytes), child.path, child.volume});
      sink.member(std::move(child));
      continue;
    }
    if (child.size && declared > std::max(source.size(), detail::ratio_floor_bytes) * limits_.max_expansion_ratio) {
      // The header alone promises a bomb: do not inflate it.
      meter.bomb = true;
      child.skipped = "declared size exceeds the expansion ratio";
      sink.member(std::move(child));
      break;
    }

    std::unique_ptr<content_source> member_source;
    const bool in_memory = child.size ? declared <= limits_.member_memory_bytes : false;
    object_outcome outcome;
    try {
      if (in_memory) {
        held.resize(static_cast<std::size_t>(declared));
        std::size_t got = 0;
        while (got < held.size()) {
          const la_ssize_t n = archive_read_data(a.get(), held.data() + got, held.size() - got);
          if (n < 0) {
            const char* why = archive_error_string(a.get());
            throw scan_error(scan_errc::read_failed, escape_name(why != nullptr ? why : "archive read error"));
          }
          if (n == 0) {
            break;
          }
          got += static_cast<std::size_t>(n);
          const bool more = meter.account(static_cast<std::uint64_t>(n));
          if (!meter.charge_budget(static_cast<std::uint64_t>(n)) || !more) {
            break;
          }
        }
        held.resize(got);  // a short member is reported by the scanner as a short read
        memory_source mem(held);
        outcome = scanner_.scan(child, mem, sink.on_bytes);
        if (is_expandable(child) && !meter.stopped()) {
          // Nested container: its own expand() call has its own buffer, so `held` stays valid.
          for (auto& e : outcome.errors) sink.error(std::move(e));
          for (auto& l : outcome.limits) sink.limit(std::move(l));
          outcome = {};
          expand_nested(child, mem, sink, &meter);
        }
      } else {
        member_stream stream(a.get(), child.size, meter);
        outcome = scanner_.scan(child, stream, sink.on_bytes);
        if (is_expandable(child) && child.content_complete) {
          // Streamed once: its members cannot be read again without holding it.
          sink.limit({"member_memory_bytes", std::to_string(limits_.member_memory_bytes), child.path, child.volume});
          child.skipped = "nested container too large to expand in memory";
        }
      }
    } catch (const scan_error& e) {
      add_error(child.path, "member_unreadable", e.what());
    }
    for (auto& e : outcome.errors) sink.error(std::move(e));
    for (auto& l : outcome.limits) sink.limit(std::move(l));
    sink.member(std::move(child));
    if (reader.error) {
      break;
    }
    if (meter.stopped()) {
      break;
    }
  }

  if (reader.error) {
    try {
      std::rethrow_exception(reader.error);
    } catch (const std::exception& e) {
      add_error(parent.path, "archive_unreadable", std::string("reading the container failed: ") + e.what());
    }
  }
  if (meter.bomb) {
    parent.findings.push_back(container_finding(
        parent, "archive_bomb", severity::high,
        {{"container_bytes", source.size()},
         {"expanded_bytes", meter.expanded},
         {"max_expansion_ratio", limits_.max_expansion_ratio},
         {"description", "the container expands to more than " + std::to_string(limits_.max_expansion_ratio) +
                             " times its size; expansion stopped"}},
        {"archive-bomb"}));
    sink.limit({"max_expansion_ratio", std::to_string(limits_.max_expansion_ratio), parent.path, parent.volume});
  }
  if (meter.budget_exhausted && !budget_.total_limit_reported.exchange(true)) {
    sink.limit(
        {"max_total_expanded_bytes", std::to_string(limits_.max_total_expanded_bytes), parent.path, parent.volume});
  }
  if (!encrypted_members.empty() || archive_read_has_encrypted_entries(a.get()) > 0) {
    parent.findings.push_back(
        container_finding(parent, "encrypted_archive", severity::medium,
                          {{"members", encrypted_members},
                           {"description", "the container holds encrypted members that cannot be scanned"}},
                          {"encrypted"}));
  }
  return members;
}

}  // namespace borderscan::scanner
