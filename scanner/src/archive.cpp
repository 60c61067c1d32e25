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
#include "container_stages.hpp"

namespace borderscan::scanner {
namespace {

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

// libarchive's reason for the last failure, escaped for the report.
std::string archive_reason(archive* a, const char* otherwise) {
  const char* why = archive_error_string(a);
  return escape_name(why != nullptr ? why : otherwise);
}

// The current member's data, inflated by libarchive as it is read.
class archive_member_bytes final : public inflated_member {
 public:
  explicit archive_member_bytes(archive* a) : archive_(a) {}
  std::size_t read(std::span<std::byte> out) override {
    const la_ssize_t n = archive_read_data(archive_, out.data(), out.size());
    if (n < 0) {
      throw scan_error(scan_errc::read_failed, archive_reason(archive_, "archive read error"));
    }
    return static_cast<std::size_t>(n);
  }

 private:
  archive* archive_;
};

// The formats one pass over a container enables.
void enable_formats(archive* a, std::string_view mime, bool raw_only) {
  archive_read_support_filter_all(a);
  if (raw_only) {
    archive_read_support_format_raw(a);
    return;
  }
  if (is_zip_document(mime)) {
    archive_read_support_format_zip(a);
    return;
  }
  // Every real archive format, but not mtree or warc: they bid on plain
  // text and would turn a compressed .txt into fake members.
  for (auto* enable :
       {&archive_read_support_format_7zip, &archive_read_support_format_ar, &archive_read_support_format_cab,
        &archive_read_support_format_cpio, &archive_read_support_format_iso9660, &archive_read_support_format_lha,
        &archive_read_support_format_rar, &archive_read_support_format_rar5, &archive_read_support_format_tar,
        &archive_read_support_format_xar, &archive_read_support_format_zip}) {
    enable(a);
  }
  if (is_single_stream(mime)) {
    // A compressed file that is not an archive: its one stream is the member.
    archive_read_support_format_raw(a);
  }
}

// The type of a member as the report names it.
std::string member_type(archive_entry* entry) {
  switch (archive_entry_filetype(entry)) {
    case AE_IFDIR:
      return "directory";
    case AE_IFLNK:
      return "symlink";
    case AE_IFREG:
    case 0:  // some formats (ar, raw streams) carry no file type: their members are files
      return "regular";
    default:
      return "other";
  }
}

// One pass of libarchive over a container: opens it and hands each member
// to the gate. The gate applies every limit; this only lists.
class archive_listing {
 public:
  archive_listing(container& parent, content_source& source, recursion_gate& gate) : parent_(parent), gate_(gate) {
    reader_.source = &source;
  }

  // Returns the number of members found (to tell "no member" from "opened").
  std::uint64_t run(bool raw_only) {
    if (!open(raw_only)) {
      return 1;  // nothing to retry
    }
    while (gate_.more(parent_)) {
      archive_entry* entry = next_header();
      if (entry == nullptr || !gate_.admit(parent_)) {
        break;
      }
      take(entry);
      if (reader_.error) {
        break;
      }
    }
    finish();
    return parent_.members();
  }

 private:
  const file_entry& parent_entry() const { return parent_.entry(); }

  void add_error(const std::string& path, std::string code, std::string message, bool affects) {
    gate_.add_error({path, parent_entry().volume, "archive", std::move(code), std::move(message), affects});
  }

  bool open(bool raw_only) {
    archive_.reset(archive_read_new());
    if (!archive_) {
      throw scan_error(scan_errc::internal, "archive_read_new failed");
    }
    enable_formats(archive_.get(), parent_entry().mime, raw_only);
    archive_read_set_read_callback(archive_.get(), &container_reader::on_read);
    archive_read_set_seek_callback(archive_.get(), &container_reader::on_seek);
    archive_read_set_skip_callback(archive_.get(), &container_reader::on_skip);
    archive_read_set_callback_data(archive_.get(), &reader_);
    int rc = ARCHIVE_OK;
    {
      const utf8_names_scope utf8_names;
      rc = archive_read_open1(archive_.get());
    }
    if (rc != ARCHIVE_OK) {
      add_error(parent_entry().path, "archive_unreadable",
                "cannot open as a container: " + archive_reason(archive_.get(), "unknown format"),
                !parent_entry().deleted);
      return false;
    }
    return true;
  }

  // The next member's header, or null at the end or where the container is cut.
  archive_entry* next_header() {
    archive_entry* entry = nullptr;
    int rc = ARCHIVE_OK;
    {
      const utf8_names_scope utf8_names;  // the format readers convert names here
      rc = archive_read_next_header(archive_.get(), &entry);
    }
    if (rc == ARCHIVE_EOF) {
      return nullptr;
    }
    if (rc == ARCHIVE_FATAL || entry == nullptr) {
      add_error(parent_entry().path, "archive_corrupt",
                "container ends early or is corrupt after " + std::to_string(parent_.members()) +
                    " member(s): " + archive_reason(archive_.get(), "unknown error"),
                !parent_entry().deleted);
      return nullptr;
    }
    warning_.clear();
    if (rc == ARCHIVE_WARN) {
      warning_ = archive_reason(archive_.get(), "warning");
      add_error(parent_entry().path, "archive_warning", warning_, false);
    }
    return entry;
  }

  std::string name_of(archive_entry* entry) {
    std::string name;
    if (archive_format(archive_.get()) == ARCHIVE_FORMAT_RAW) {
      // A raw stream has no name of its own: use the container's, less the compression suffix.
      const std::string& path = parent_entry().path;
      const std::string base = path.substr(path.find_last_of("/!") + 1);
      const auto dot = base.find_last_of('.');
      return dot != std::string::npos && dot > 0 ? base.substr(0, dot) : base + ".data";
    }
    name = escape_name(member_name(entry));  // stored bytes that are not UTF-8 become \xNN
    while (name.size() > 1 && name.back() == '/') {
      name.pop_back();  // directories: "inner/" -> "inner"
    }
    if (name.empty()) {
      // No form of the name survived: a synthetic one, unique in this container
      // (the ordinal counts every entry), and an entry saying why.
      const std::string ordinal = std::to_string(parent_.members());
      name = "member-" + ordinal;
      add_error(parent_entry().path + "!" + name, "archive_member_unnamed",
                "entry " + ordinal + " of the container has no readable name" +
                    (warning_.empty() ? std::string() : " (" + warning_ + ")") + "; listed as " + name,
                false);
    }
    return name;
  }

  void take(archive_entry* entry) {
    file_entry child;
    child.path = name_of(entry);
    child.type = member_type(entry);
    if (archive_entry_mtime_is_set(entry)) {
      child.times.mtime = archive_entry_mtime(entry);
    }
    if (archive_entry_size_is_set(entry)) {
      child.size = static_cast<std::uint64_t>(std::max<la_int64_t>(archive_entry_size(entry), 0));
    }
    if (child.type != "regular") {
      gate_.list(parent_, std::move(child));
      return;
    }
    if (archive_entry_is_data_encrypted(entry) || archive_entry_is_encrypted(entry)) {
      encrypted_members_.push_back(child.path);
      child.skipped = "encrypted member: content not readable";
      gate_.list(parent_, std::move(child));
      return;
    }
    archive_member_bytes bytes(archive_.get());
    gate_.recurse(parent_, std::move(child), bytes);
  }

  void finish() {
    if (reader_.error) {
      try {
        std::rethrow_exception(reader_.error);
      } catch (const std::exception& e) {
        add_error(parent_entry().path, "archive_unreadable", std::string("reading the container failed: ") + e.what(),
                  !parent_entry().deleted);
      }
    }
    if (!encrypted_members_.empty() || archive_read_has_encrypted_entries(archive_.get()) > 0) {
      parent_.entry().findings.push_back(
          detail::container_finding(parent_entry(), "encrypted_archive", severity::medium,
                                    {{"members", encrypted_members_},
                                     {"description", "the container holds encrypted members that cannot be scanned"}},
                                    {"encrypted"}));
    }
  }

  container& parent_;
  recursion_gate& gate_;
  archive_ptr archive_;
  container_reader reader_;
  std::string warning_;  // libarchive's warning on the current header
  std::vector<std::string> encrypted_members_;
};

class archive_stage_impl final : public container_stage {
 public:
  std::string_view name() const override { return "archive"; }
  member_bytes yields() const override { return member_bytes::inflated; }
  bool claims(const file_entry& entry) const override { return is_container(entry); }
  void expand(container& parent, content_source& source, recursion_gate& gate) const override {
    // A compressed stream whose content starts with 1 KiB of zeros looks like an
    // empty tar; if the archive formats find no member, read the stream raw.
    if (archive_listing(parent, source, gate).run(false) == 0 && is_single_stream(parent.entry().mime)) {
      archive_listing(parent, source, gate).run(true);
    }
  }
};

// Adapts the callbacks of an expansion_sink to the gate's sink.
class function_sink final : public scan_sink {
 public:
  explicit function_sink(const expansion_sink& sink) : sink_(sink) {}
  void add_file(file_entry&& f) override { sink_.member(std::move(f)); }
  void add_error(error_entry&& e) override { sink_.error(std::move(e)); }
  void add_limit(limit_hit&& l) override { sink_.limit(std::move(l)); }
  std::optional<std::string_view> stop_reason() override {
    return sink_.stop && sink_.stop() ? std::optional<std::string_view>("stopped") : std::nullopt;
  }
  void add_bytes(std::uint64_t n) override {
    if (sink_.on_bytes) {
      sink_.on_bytes(n);
    }
  }

 private:
  const expansion_sink& sink_;
};

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

const container_stage& detail::archive_stage() {
  static const archive_stage_impl stage;
  return stage;
}

container_expander::container_expander(const limits& lim, object_scanner& scanner, expansion_budget& budget)
    : limits_(lim), scanner_(scanner), budget_(budget) {}

void container_expander::expand(file_entry& parent, content_source& source, const expansion_sink& sink) {
  function_sink adapter(sink);
  recursion_gate gate(limits_, scanner_, budget_, adapter, default_container_stages());
  gate.expand(parent, source);
}

}  // namespace borderscan::scanner
