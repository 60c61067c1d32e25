#include "borderscan/server/report_ingest.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <istream>
#include <streambuf>
#include <system_error>

#include <spdlog/spdlog.h>

#include "borderscan/scanner/atomic_file.hpp"
#include "borderscan/scanner/evidence_pack.hpp"
#include "borderscan/scanner/digest.hpp"
#include "borderscan/scanner/report_file.hpp"

namespace borderscan::server {
namespace {

namespace fs = std::filesystem;

// An input buffer over a descriptor that hashes every byte it hands out, so
// that the file is checked and parsed in the same single read.
class hashing_reader final : public std::streambuf {
 public:
  explicit hashing_reader(const fs::path& file) : fd_(::open(file.c_str(), O_RDONLY | O_CLOEXEC)) {
    if (fd_ < 0) {
      throw std::system_error(errno, std::generic_category(), file.string());
    }
  }
  ~hashing_reader() override { ::close(fd_); }
  hashing_reader(const hashing_reader&) = delete;
  hashing_reader& operator=(const hashing_reader&) = delete;

  // Hashes what the parser did not read (nothing, for a well-formed file
  // that ends with its document) and returns the file's size and digest.
  scanner::report_file_info finish() {
    setg(eback(), egptr(), egptr());  // what is buffered was hashed when it was read
    while (underflow() != traits_type::eof()) {
      setg(eback(), egptr(), egptr());
    }
    return {size_, hasher_.hex_digest()};
  }

 protected:
  int_type underflow() override {
    if (gptr() < egptr()) {
      return traits_type::to_int_type(*gptr());
    }
    ssize_t n = 0;
    do {
      n = ::read(fd_, buffer_.data(), buffer_.size());
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      throw std::system_error(errno, std::generic_category(), "reading the report");
    }
    if (n == 0) {
      return traits_type::eof();
    }
    hasher_.update(buffer_.data(), static_cast<std::size_t>(n));
    size_ += static_cast<std::uint64_t>(n);
    setg(buffer_.data(), buffer_.data(), buffer_.data() + n);
    return traits_type::to_int_type(*gptr());
  }

 private:
  int fd_;
  std::array<char, 64 * 1024> buffer_{};
  scanner::sha256_hasher hasher_;
  std::uint64_t size_ = 0;
};

// Into the report folder. Same file system: a rename. Else (the spool on
// another disk): a copy made durable before the original goes.
void move_into(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::rename(from, to, ec);
  if (ec == std::errc::cross_device_link) {
    fs::copy_file(from, to, fs::copy_options::overwrite_existing);
    const int fd = ::open(to.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || ::fsync(fd) != 0) {
      const int err = errno;
      if (fd >= 0) {
        ::close(fd);
      }
      throw std::system_error(err, std::generic_category(), to.string());
    }
    ::close(fd);
    fs::remove(from);
  } else if (ec) {
    throw std::system_error(ec, "moving the report to " + to.string());
  }
  scanner::sync_directory(to.parent_path());
}

// Signs a copy made beside its final place, then renames it there: the
// worker's file stays as the worker wrote it until the signed one is in
// place, so a store retried after a failure here (a full disk) reads the
// same bytes and digest again. Returns the signed document's digest and size,
// which the audit log pins.
scanner::report_file_info sign_beside(const fs::path& from, const fs::path& to, const std::string& canonical_sha256,
                                      const evidence::signing_key& signer) {
  const fs::path signing = fs::path(to).concat(".signing");
  const std::unique_ptr<const fs::path, void (*)(const fs::path*)> remove_partial(&signing, [](const fs::path* p) {
    std::error_code ignored;
    fs::remove(*p, ignored);
  });
  fs::copy_file(from, signing, fs::copy_options::overwrite_existing);
  evidence::sign_report_file(signing, signer, canonical_sha256);  // fsyncs
  const scanner::report_file_info signed_file = hashing_reader(signing).finish();
  fs::rename(signing, to);
  scanner::sync_directory(to.parent_path());
  fs::remove(from);
  return signed_file;
}

// The weightiest findings of a report (severity, then report order), for
// triage in the reports listing without opening each report.
class top_findings {
 public:
  void offer(const scanner::finding& f) {
    const auto heavier = [](const scanner::finding& a, const scanner::finding& b) { return a.level > b.level; };
    if (kept_.size() == limit && !heavier(f, kept_.back())) {
      return;
    }
    kept_.insert(std::upper_bound(kept_.begin(), kept_.end(), f, heavier), f);
    if (kept_.size() > limit) {
      kept_.pop_back();
    }
  }
  std::string json_text() const {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& f : kept_) {
      out.push_back({{"id", scanner::finding_id(f)},
                     {"rule", f.rule},
                     {"severity", scanner::to_string(f.level)},
                     {"path", f.path},
                     {"source", f.source}});
    }
    return out.dump();
  }

 private:
  static constexpr std::size_t limit = 3;
  std::vector<scanner::finding> kept_;
};

[[noreturn]] void refuse(const std::string& why) {
  throw scan_failed("malformed worker output: " + why);
}

}  // namespace

report_ingest::report_ingest(report_store& store, ingest_settings settings)
    : store_(store), settings_(std::move(settings)) {}

std::vector<evidence_record> report_ingest::take_evidence(const scan_record& scan, const fs::path& pack,
                                                          const std::set<std::string>& named) const {
  std::vector<evidence_record> kept;
  if (pack.empty()) {
    return kept;
  }
  // The pack goes whatever happens: what is not taken now is never served.
  const std::unique_ptr<const fs::path, void (*)(const fs::path*)> remove_pack(&pack, [](const fs::path* p) {
    std::error_code ignored;
    fs::remove(*p, ignored);
  });
  if (settings_.evidence_dir.empty() || named.empty() || !fs::exists(pack)) {
    return kept;
  }
  const fs::path dir = settings_.evidence_dir / scan.id;
  std::vector<scanner::evidence_record> records;
  try {
    scanner::read_evidence_pack(pack, [&](const scanner::evidence_record& r) {
      if (named.contains(r.sha256)) {
        records.push_back(r);
      }
    });
  } catch (const std::exception& e) {
    // The pack is the worker's (which parsed a hostile image): a broken one
    // loses the copies, never the report.
    spdlog::error("job={} evidence pack refused: {}", scan.id, e.what());
    return kept;
  }
  std::set<std::string> taken;
  for (const auto& r : records) {
    if (!taken.insert(r.sha256).second) {
      continue;
    }
    try {
      fs::create_directories(dir);
      fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace);
      kept.push_back(copy_out(pack, r, dir));
    } catch (const std::exception& e) {
      spdlog::error("job={} evidence {} not kept: {}", scan.id, r.sha256, e.what());
    }
  }
  if (kept.size() != named.size()) {
    spdlog::warn("job={} the report names {} kept copies; {} matched their SHA-256 and were taken", scan.id,
                 named.size(), kept.size());
  }
  return kept;
}

evidence_record report_ingest::copy_out(const fs::path& pack, const scanner::evidence_record& r,
                                        const fs::path& dir) const {
  const fs::path target = dir / r.sha256;
  // copy_evidence checks the bytes hash to the digest the report names; a
  // copy that does not is never put in place.
  scanner::write_file_atomically(target,
                                 [&](const scanner::piece_writer& write) { scanner::copy_evidence(pack, r, write); });
  evidence_record e;
  e.sha256 = r.sha256;
  e.size = r.length;
  e.path = target.string();
  return e;
}

stored_report report_ingest::ingest(const scan_record& scan, const report_file& file, scanner::severity flag_threshold,
                                    const std::string& expected_ruleset) {
  std::error_code ec;
  const auto on_disk = fs::file_size(file.path, ec);
  if (ec) {
    refuse("the report file " + file.path.string() + " cannot be read: " + ec.message());
  }
  if (on_disk != file.size || on_disk > settings_.max_report_bytes) {
    refuse("the report file has " + std::to_string(on_disk) + " bytes; the worker said " + std::to_string(file.size) +
           " and at most " + std::to_string(settings_.max_report_bytes) + " are accepted");
  }

  store_.begin_report(scan.id);
  std::vector<report_file_row> batch;
  batch.reserve(settings_.batch_rows);
  std::vector<report_finding_row> finding_batch;
  top_findings top;
  std::set<std::string> evidence_named;  // SHA-256 of each file the report says was kept
  std::int64_t index = 0;
  hashing_reader bytes(file.path);
  std::istream in(&bytes);
  scanner::report_reading reading;
  try {
    reading = scanner::read_report(
        in, flag_threshold,
        [&](const scanner::file_entry& entry, const std::string& text) {
          const bool flagged = std::any_of(entry.findings.begin(), entry.findings.end(),
                                           [&](const scanner::finding& f) { return f.level >= flag_threshold; });
          batch.push_back(
              {index++, entry.path, entry.deleted, entry.mime, flagged, text, entry.md5, entry.sha1, entry.sha256});
          if (entry.evidence && entry.evidence->kept && !entry.sha256.empty()) {
            evidence_named.insert(entry.sha256);
          }
          if (batch.size() == settings_.batch_rows) {
            store_.add_report_rows(scan.id, batch);
            batch.clear();
          }
        },
        [&](const scanner::finding& f) {
          top.offer(f);
          finding_batch.push_back({scanner::finding_id(f), f.path, f.source, f.rule, scanner::to_string(f.level),
                                   f.level >= flag_threshold});
          if (finding_batch.size() == settings_.batch_rows) {
            store_.add_report_findings(scan.id, finding_batch);
            finding_batch.clear();
          }
        });
  } catch (const scanner::report_invalid& e) {
    refuse(e.what());
  }
  store_.add_report_rows(scan.id, batch);
  store_.add_report_findings(scan.id, finding_batch);
  const scanner::report_file_info read = bytes.finish();
  if (read.sha256 != file.sha256 || read.size != file.size) {
    refuse("the report file's SHA-256 is " + read.sha256 + ", the worker said " + file.sha256);
  }
  const scanner::report& head = reading.head;
  if (head.scan_id != scan.id) {
    refuse("the report is of scan '" + head.scan_id + "', not of " + scan.id);
  }
  if (!scan.image_sha256.empty() && head.image.sha256 != scan.image_sha256) {
    refuse("the report names image " + head.image.sha256 + ", the upload was " + scan.image_sha256);
  }
  const std::string& ruleset = expected_ruleset.empty() ? file.ruleset_digest : expected_ruleset;
  if (head.ruleset.digest != ruleset) {
    throw scan_failed("rule-set digest mismatch: the report names " + head.ruleset.digest + ", the scan ran with " +
                      ruleset);
  }

  scanner::report_file_info kept = read;
  fs::create_directories(settings_.reports_dir);
  const fs::path stored_at = settings_.reports_dir / (scan.id + ".json");
  if (settings_.signer != nullptr) {
    kept = sign_beside(file.path, stored_at, read.sha256, *settings_.signer);
  } else {
    move_into(file.path, stored_at);
  }
  stored_report out;
  out.evidence = take_evidence(scan, file.evidence_pack, evidence_named);
  out.path = stored_at.string();
  out.size = kept.size;
  out.sha256 = kept.sha256;
  out.verdict = scanner::to_string(head.result);
  out.score = head.score;
  out.ruleset_digest = head.ruleset.digest;
  out.files = head.summary.files + head.summary.directories;
  out.flagged_files = head.summary.flagged_files;
  out.bytes = head.summary.bytes;
  out.top_findings = top.json_text();
  if (head.result == scanner::verdict::error) {
    out.verdict_without_flags = "error";
  } else {
    const bool unread = std::any_of(head.errors.begin(), head.errors.end(),
                                    [](const scanner::error_entry& e) { return e.affects_verdict; });
    out.verdict_without_flags =
        scanner::to_string(scanner::judge({}, !head.limits_hit.empty(), unread, flag_threshold).result);
  }
  return out;
}

}  // namespace borderscan::server
