// Importers of hash sets from the field into compact files: text (the line
// format of hashset_db), Project VIC / CAID VICS JSON (streamed with
// nlohmann's SAX interface, one Media record in memory at a time), and the
// dispatch (NSRL RDS v3 lives in hashset_nsrl.cpp).
#include "hashset_import.hpp"

#include <algorithm>
#include <array>
#include <fstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "borderscan/scanner/error.hpp"
#include "borderscan/scanner/text.hpp"
#include "hashset_format.hpp"

namespace borderscan::scanner {
namespace fs = std::filesystem;

const char* to_string(hashset_source f) noexcept {
  switch (f) {
    case hashset_source::text:
      return "text";
    case hashset_source::nsrl_rds3:
      return "nsrl-rds3";
    case hashset_source::vics:
      return "vics";
  }
  return "text";
}

std::optional<hashset_source> parse_hashset_source(std::string_view text) noexcept {
  for (auto f : {hashset_source::text, hashset_source::nsrl_rds3, hashset_source::vics}) {
    if (text == to_string(f)) {
      return f;
    }
  }
  return std::nullopt;
}

namespace detail {

bool add_record(hashset_writer& w, const record_digests& d, std::string_view name,
                hashset_import_options::digests which) {
  const bool all = which == hashset_import_options::digests::all;
  bool added = false;
  for (const auto& digest : {d.sha256, d.sha1, d.md5}) {
    if (digest) {
      w.add(*digest, name);
      added = true;
      if (!all) {
        break;
      }
    }
  }
  return added;
}

bool parse_digest_field(std::string_view text, std::span<std::uint8_t> out, const char* field,
                        const std::string& where) {
  if (text.empty()) {
    return false;
  }
  if (text.size() != out.size() * 2 || !from_hex(text, out)) {
    throw scan_error(scan_errc::rules_invalid, where + ": " + field + " \"" + escape_name(text.substr(0, 80)) +
                                                   "\" is not " + std::to_string(out.size() * 2) + " hex digits");
  }
  return true;
}

namespace {

// Field names of a VICS Media record, compared without regard to case
// (exports differ: "MD5", "Md5").
bool field_is(std::string_view key, std::string_view name) {
  return key.size() == name.size() && std::equal(key.begin(), key.end(), name.begin(), [](char a, char b) {
           return (a >= 'A' && a <= 'Z' ? a + 32 : a) == (b >= 'A' && b <= 'Z' ? b + 32 : b);
         });
}

// A VICS document, as events. The records are the objects of the top-level
// "value" array (the "#Media" shape of VICS 1.x) and the objects of a
// "Media" array inside one of those (the "#Cases" shape of VICS 1.3 and
// 2.0). Only a record's own scalar fields count: MediaFiles and Exifs
// entries also carry an MD5, which names the same media, not another one.
class vics_reader final : public nlohmann::json_sax<nlohmann::json> {
 public:
  vics_reader(const fs::path& file, hashset_writer& w, const hashset_import_options& opt, hashset_import_result& r)
      : file_(file), writer_(w), opt_(opt), result_(r) {}

  bool saw_value_array() const noexcept { return saw_value_; }

  bool null() override { return scalar({}); }
  bool boolean(bool v) override { return scalar(v ? "true" : "false"); }
  bool number_integer(number_integer_t v) override { return scalar(std::to_string(v)); }
  bool number_unsigned(number_unsigned_t v) override { return scalar(std::to_string(v)); }
  bool number_float(number_float_t, const string_t& text) override { return scalar(text); }
  bool string(string_t& v) override { return scalar(v); }
  bool binary(binary_t&) override { return scalar({}); }

  bool start_object(std::size_t) override {
    role r = role::other;
    if (stack_.empty()) {
      r = role::root;
    } else if (top().kind == role::value_array || top().kind == role::media_array) {
      r = role::record;
    } else if (top().kind == role::files_array) {
      r = role::media_file;
    }
    stack_.push_back({r, {}, {}});
    return true;
  }
  bool key(string_t& k) override {
    top().key = k;
    return true;
  }
  bool end_object() override {
    if (top().kind == role::record) {
      finish_record(top().rec);
    }
    stack_.pop_back();
    return true;
  }
  bool start_array(std::size_t) override {
    role r = role::other;
    if (!stack_.empty()) {
      const frame& parent = top();
      if (parent.kind == role::root && parent.key == "value") {
        r = role::value_array;
        saw_value_ = true;
      } else if (parent.kind == role::record && field_is(parent.key, "Media")) {
        r = role::media_array;
      } else if (parent.kind == role::record && field_is(parent.key, "MediaFiles")) {
        r = role::files_array;
      }
    }
    stack_.push_back({r, {}, {}});
    return true;
  }
  bool end_array() override {
    stack_.pop_back();
    return true;
  }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& ex) override {
    throw scan_error(scan_errc::rules_invalid,
                     file_.string() + ": byte " + std::to_string(position) + ": not valid JSON (" + ex.what() + ")");
  }

 private:
  enum class role { root, value_array, media_array, record, files_array, media_file, other };
  struct media {
    std::string md5, sha1, sha256, media_id, category, name, file_name;
  };
  struct frame {
    role kind;
    std::string key;  // the last key read in this object
    media rec;        // kind == record: its fields so far
  };

  frame& top() { return stack_.back(); }

  bool scalar(std::string_view v) {
    if (stack_.empty()) {
      return true;
    }
    frame& f = top();
    if (f.kind == role::record) {
      media& m = f.rec;
      for (auto [name, field] : {std::pair{"MD5", &m.md5}, std::pair{"SHA1", &m.sha1}, std::pair{"SHA256", &m.sha256},
                                 std::pair{"MediaID", &m.media_id}, std::pair{"Category", &m.category},
                                 std::pair{"Name", &m.name}, std::pair{"FileName", &m.file_name}}) {
        if (field_is(f.key, name)) {
          field->assign(v);
          break;
        }
      }
    } else if (f.kind == role::media_file && field_is(f.key, "FileName") && stack_.size() >= 3) {
      // MediaFiles[].FileName: the media's first known file name, if it has no name of its own.
      media& owner = stack_[stack_.size() - 3].rec;
      if (owner.file_name.empty()) {
        owner.file_name.assign(v);
      }
    }
    return true;
  }

  void finish_record(const media& m) {
    ++result_.records;
    const std::string where = file_.string() + ": media record " + std::to_string(result_.records) +
                              (m.media_id.empty() ? "" : " (MediaID " + escape_name(m.media_id) + ")");
    std::array<std::uint8_t, 16> md5{};
    std::array<std::uint8_t, 20> sha1{};
    std::array<std::uint8_t, 32> sha256{};
    record_digests d;
    if (parse_digest_field(m.md5, md5, "MD5", where)) d.md5 = md5;
    if (parse_digest_field(m.sha1, sha1, "SHA1", where)) d.sha1 = sha1;
    if (parse_digest_field(m.sha256, sha256, "SHA256", where)) d.sha256 = sha256;
    const bool wanted = opt_.categories.empty() ||
                        std::find(opt_.categories.begin(), opt_.categories.end(), m.category) != opt_.categories.end();
    if (!wanted || !add_record(writer_, d, entry_name(m), which())) {
      ++result_.skipped;  // a case object (no digests of its own), or a category not asked for
    }
  }

  // What a finding shows: the record's MediaID and category, by which the
  // VICS set's owner finds it; a file name only when neither is there.
  static std::string entry_name(const media& m) {
    std::string out;
    if (!m.media_id.empty()) {
      out = "MediaID " + m.media_id;
    }
    if (!m.category.empty()) {
      out += (out.empty() ? "category " : ", category ") + m.category;
    }
    if (out.empty()) {
      out = !m.name.empty() ? m.name : m.file_name;
    }
    return out;
  }

  hashset_import_options::digests which() const {
    return opt_.which == hashset_import_options::digests::format_default ? hashset_import_options::digests::all
                                                                         : opt_.which;
  }

  const fs::path& file_;
  hashset_writer& writer_;
  const hashset_import_options& opt_;
  hashset_import_result& result_;
  std::vector<frame> stack_;
  bool saw_value_ = false;
};

}  // namespace

void import_vics(const fs::path& input, hashset_writer& w, const hashset_import_options& opt,
                 hashset_import_result& result) {
  // A larger buffer than the default, set before the file is opened (libstdc++ ignores it after).
  std::vector<char> buf(1 << 20);
  std::ifstream in;
  in.rdbuf()->pubsetbuf(buf.data(), static_cast<std::streamsize>(buf.size()));
  in.open(input, std::ios::binary);
  if (!in) {
    throw scan_error(scan_errc::rules_invalid, input.string() + ": cannot open");
  }
  vics_reader reader(input, w, opt, result);
  nlohmann::json::sax_parse(in, &reader);
  if (in.bad()) {
    throw scan_error(scan_errc::rules_invalid, input.string() + ": read error");
  }
  if (!reader.saw_value_array()) {
    throw scan_error(scan_errc::rules_invalid,
                     input.string() + ": not VICS JSON (no top-level \"value\" array of Media records or cases)");
  }
}

}  // namespace detail

hashset_import_result import_hashset(hashset_source format, const fs::path& input, const fs::path& output,
                                     const hashset_import_options& opt) {
  hashset_writer::options wo;
  wo.memory_bytes = opt.memory_bytes;
  wo.temp_dir = opt.temp_dir;
  wo.source_format = to_string(format);
  wo.source_file = input.filename().string();
  hashset_writer writer(output, opt.name, opt.kind, wo);
  hashset_import_result result;
  switch (format) {
    case hashset_source::text:
      detail::read_text_hashset(input, [&](std::span<const std::uint8_t> digest, std::string_view name) {
        ++result.records;
        writer.add(digest, name);
      });
      break;
    case hashset_source::nsrl_rds3:
      detail::import_nsrl_rds3(input, writer, opt, result);
      break;
    case hashset_source::vics:
      detail::import_vics(input, writer, opt, result);
      break;
  }
  result.written = writer.finish();
  return result;
}

}  // namespace borderscan::scanner
