#include "borderscan/scanner/report_file.hpp"

#include <unistd.h>

#include <array>
#include <cerrno>
#include <ostream>
#include <streambuf>
#include <system_error>
#include <vector>

#include "borderscan/scanner/digest.hpp"
#include "borderscan/scanner/file_spill.hpp"

namespace borderscan::scanner {
namespace {

using nlohmann::json;

// An output buffer onto a descriptor that hashes what passes and stops at a
// byte budget.
class hashing_fd_buf final : public std::streambuf {
 public:
  hashing_fd_buf(int fd, std::uint64_t max_bytes) : fd_(fd), max_bytes_(max_bytes) {
    setp(buffer_.data(), buffer_.data() + buffer_.size());
  }

  report_file_info finish() {
    flush();
    // EINVAL: a descriptor that cannot be synced (a pipe, /dev/null): nothing to make durable.
    if (::fsync(fd_) != 0 && errno != EINVAL) {
      throw std::system_error(errno, std::generic_category(), "fsync of the report");
    }
    return {written_, hasher_.hex_digest()};
  }

 protected:
  int_type overflow(int_type ch) override {
    flush();
    if (!traits_type::eq_int_type(ch, traits_type::eof())) {
      *pptr() = traits_type::to_char_type(ch);
      pbump(1);
    }
    return traits_type::not_eof(ch);
  }
  int sync() override {
    flush();
    return 0;
  }

 private:
  void flush() {
    const auto n = static_cast<std::size_t>(pptr() - pbase());
    if (max_bytes_ != 0 && written_ + n > max_bytes_) {
      throw std::length_error("the report is larger than " + std::to_string(max_bytes_) + " bytes");
    }
    hasher_.update(pbase(), n);
    for (std::size_t done = 0; done < n;) {
      const ssize_t w = ::write(fd_, pbase() + done, n - done);
      if (w < 0 && errno == EINTR) {
        continue;
      }
      if (w <= 0) {
        throw std::system_error(errno, std::generic_category(), "writing the report");
      }
      done += static_cast<std::size_t>(w);
    }
    written_ += n;
    setp(buffer_.data(), buffer_.data() + buffer_.size());
  }

  int fd_;
  std::uint64_t max_bytes_;
  std::uint64_t written_ = 0;
  sha256_hasher hasher_;
  std::array<char, 64 * 1024> buffer_{};
};

// Builds the document the way nlohmann's DOM parser does, except for the
// top-level arrays "files" and "findings": their elements are handed over one
// by one as they complete, and never kept.
class report_sax final : public nlohmann::json_sax<json> {
 public:
  using element_handler = std::function<void(const std::string& array, json&& element)>;
  explicit report_sax(element_handler on_element) : on_element_(std::move(on_element)) {}

  json root;
  std::string error;

  bool null() override { return value(json(nullptr)); }
  bool boolean(bool v) override { return value(json(v)); }
  bool number_integer(number_integer_t v) override { return value(json(v)); }
  bool number_unsigned(number_unsigned_t v) override { return value(json(v)); }
  bool number_float(number_float_t v, const string_t&) override { return value(json(v)); }
  bool string(string_t& v) override { return value(json(std::move(v))); }
  bool binary(binary_t& v) override { return value(json::binary(std::move(v))); }
  bool key(string_t& k) override {
    key_ = std::move(k);
    return true;
  }
  bool start_object(std::size_t) override { return open(json::object()); }
  bool start_array(std::size_t) override {
    if (stack_.size() == 1 && stack_.back() == &root && (key_ == "files" || key_ == "findings")) {
      root[key_] = json::array();  // the head keeps the key, not the elements
      streamed_ = key_;
      stack_.push_back(nullptr);
      return true;
    }
    return open(json::array());
  }
  bool end_object() override { return close(); }
  bool end_array() override { return close(); }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& e) override {
    error = "not JSON at byte " + std::to_string(position) + ": " + e.what();
    return false;
  }

 private:
  // Where the next value goes: nullptr when it is an element of the array
  // being streamed.
  json* insert(json&& v) {
    if (stack_.empty()) {
      root = std::move(v);
      return &root;
    }
    json* top = stack_.back();
    if (top == nullptr) {
      element_ = std::move(v);
      return &element_;
    }
    if (top->is_array()) {
      top->push_back(std::move(v));
      return &top->back();
    }
    json& slot = (*top)[key_];
    slot = std::move(v);
    return &slot;
  }
  bool value(json&& v) {
    const bool element = !stack_.empty() && stack_.back() == nullptr;
    insert(std::move(v));
    if (element) {
      on_element_(streamed_, std::move(element_));
    }
    return true;
  }
  bool open(json&& container) {
    stack_.push_back(insert(std::move(container)));
    return true;
  }
  bool close() {
    stack_.pop_back();
    if (!stack_.empty() && stack_.back() == nullptr) {
      on_element_(streamed_, std::move(element_));  // an element of the streamed array is complete
      element_ = json();
    }
    return true;
  }

  element_handler on_element_;
  std::vector<json*> stack_;  // open containers; nullptr: the streamed array
  std::string key_;
  std::string streamed_;
  json element_;
};

[[noreturn]] void invalid(const std::string& why) {
  throw report_invalid("invalid report: " + why);
}

void expect_equal(std::uint64_t stated, std::uint64_t counted, const char* what) {
  if (stated != counted) {
    invalid(std::string("summary.") + what + " is " + std::to_string(stated) + " but the entries give " +
            std::to_string(counted));
  }
}

}  // namespace

report_file_info write_report_file(int fd, const report& r, std::uint64_t max_bytes) {
  hashing_fd_buf buf(fd, max_bytes);
  std::ostream out(&buf);
  out.exceptions(std::ios::badbit);  // errors of the buffer reach the caller
  write_report(out, r, /*pretty=*/true);
  out << "\n";
  out.flush();
  return buf.finish();
}

report_reading read_report(std::istream& in, severity flag_threshold,
                           const std::function<void(const file_entry& entry, const std::string& json_text)>& on_file,
                           const std::function<void(const finding& f)>& on_finding) {
  report_reading out;
  scan_summary counted;
  std::vector<finding> ignored;
  std::vector<severity> levels;
  report_sax sax([&](const std::string& array, json&& element) {
    if (array == "findings") {
      finding f;
      try {
        from_json(element, f);
      } catch (const std::exception& e) {
        invalid("finding " + std::to_string(out.findings) + ": " + e.what());
      }
      levels.push_back(f.level);
      ++out.findings;
      if (on_finding) {
        on_finding(f);
      }
      return;
    }
    file_entry entry;
    try {
      from_json(element, entry);
    } catch (const std::exception& e) {
      invalid("file entry " + std::to_string(out.files) + ": " + e.what());
    }
    tally_file(entry, counted, ignored);
    ignored.clear();
    counted.flagged_files += std::any_of(entry.findings.begin(), entry.findings.end(),
                                         [&](const finding& f) { return f.level >= flag_threshold; })
                                 ? 1
                                 : 0;
    ++out.files;
    on_file(entry, report_element_text(element));
  });
  if (!json::sax_parse(in, &sax) || !sax.error.empty()) {
    invalid(sax.error.empty() ? "not JSON" : sax.error);
  }
  if (!sax.root.is_object() || !sax.root.contains("files") || !sax.root.contains("findings")) {
    invalid("not a report document (no files or findings)");
  }
  try {
    from_json(sax.root, out.head);
  } catch (const std::exception& e) {
    invalid(e.what());
  }
  const scan_summary& stated = out.head.summary;
  expect_equal(stated.files, counted.files, "files");
  expect_equal(stated.directories, counted.directories, "directories");
  expect_equal(stated.deleted, counted.deleted, "deleted");
  if (sax.root.at("summary").contains("deleted_directories")) {  // reports before it have none
    expect_equal(stated.deleted_directories, counted.deleted_directories, "deleted_directories");
  }
  expect_equal(stated.bytes, counted.bytes, "bytes");
  expect_equal(stated.flagged_files, counted.flagged_files, "flagged_files");
  expect_equal(stated.findings, out.findings, "findings");
  expect_equal(stated.errors, out.head.errors.size(), "errors");
  expect_equal(stated.limits_hit, out.head.limits_hit.size(), "limits_hit");
  if (stated.by_mime != counted.by_mime || stated.by_type != counted.by_type) {
    invalid("summary.by_mime or summary.by_type does not match the file entries");
  }
  const bool unread = std::any_of(out.head.errors.begin(), out.head.errors.end(),
                                  [](const error_entry& e) { return e.affects_verdict; });
  const judgement j = judge(levels, !out.head.limits_hit.empty(), unread, flag_threshold);
  if (out.head.score != j.score) {
    invalid("score " + std::to_string(out.head.score) + " does not follow from the findings (" +
            std::to_string(j.score) + ")");
  }
  int explained = 0;
  for (const auto& reason : out.head.score_reasons) {
    explained += reason.points;
  }
  // Reports stored before score reasons existed carry none.
  if (!out.head.score_reasons.empty() && explained != j.score) {
    invalid("score_reasons add up to " + std::to_string(explained) + ", the score is " + std::to_string(j.score));
  }
  if (out.head.result != verdict::error && out.head.result != j.result) {
    invalid(std::string("verdict ") + to_string(out.head.result) +
            " does not follow from the findings, errors and limits (" + to_string(j.result) + ")");
  }
  return out;
}

}  // namespace borderscan::scanner
