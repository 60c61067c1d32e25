// Verdict, score and summary of a finished report.
#include <algorithm>
#include <functional>
#include <tuple>

#include "borderscan/scanner/file_spill.hpp"
#include "borderscan/scanner/report.hpp"
#include "encrypted_volume.hpp"

namespace borderscan::scanner {
namespace {

int severity_weight(severity s) {
  switch (s) {
    case severity::info:
      return 0;
    case severity::low:
      return 20;
    case severity::medium:
      return 50;
    case severity::high:
      return 80;
    case severity::critical:
      return 100;
  }
  return 50;
}

auto volume_key(const std::optional<std::uint32_t>& v) {
  return v ? static_cast<std::int64_t>(*v) : -1;
}

}  // namespace

bool file_order(const file_entry& a, const file_entry& b) {
  return std::tie(a.volume, a.path, a.inode) < std::tie(b.volume, b.path, b.inode);
}

void tally_file(const file_entry& f, scan_summary& s, std::vector<finding>& findings) {
  if (f.type == "directory") {
    ++s.directories;
  } else {
    ++s.files;
  }
  s.deleted += f.deleted ? 1 : 0;
  s.deleted_directories += f.deleted && f.type == "directory" ? 1 : 0;
  s.bytes += f.bytes_read;
  if (!f.mime.empty()) {
    ++s.by_mime[f.mime];
  }
  ++s.by_type[f.type];
  const std::size_t first = findings.size();
  findings.insert(findings.end(), f.findings.begin(), f.findings.end());
  for (std::size_t i = first; i < findings.size(); ++i) {
    findings[i].deleted = f.deleted;
  }
}

void finalize(report& r, severity flag_threshold) {
  std::stable_sort(r.errors.begin(), r.errors.end(), [](const error_entry& a, const error_entry& b) {
    return std::make_tuple(volume_key(a.volume), a.path) < std::make_tuple(volume_key(b.volume), b.path);
  });

  // Image-level findings (no file) stay; file findings are gathered from files.
  std::vector<finding> all;
  for (auto& f : r.findings) {
    all.push_back(std::move(f));
  }
  scan_summary s;
  if (r.spilled_files) {
    r.spilled_files->sort();
    s = r.spilled_files->tally();
    s.flagged_files = r.spilled_files->files_at_or_above(flag_threshold);
    all.insert(all.end(), r.spilled_files->findings().begin(), r.spilled_files->findings().end());
  }
  std::stable_sort(r.files.begin(), r.files.end(), file_order);
  for (const auto& f : r.files) {
    tally_file(f, s, all);
    s.flagged_files +=
        std::any_of(f.findings.begin(), f.findings.end(), [&](const finding& fi) { return fi.level >= flag_threshold; })
            ? 1
            : 0;
  }
  std::stable_sort(all.begin(), all.end(), [](const finding& a, const finding& b) {
    // Findings arrive in the order files finished: order by everything a
    // finding shows, so that reports come out the same run after run.
    const auto key = [](const finding& f) {
      return std::make_tuple(volume_key(f.volume), std::cref(f.path), std::cref(f.rule), std::cref(f.rule_namespace),
                             f.level, std::cref(f.source), std::cref(f.tags));
    };
    if (key(a) != key(b)) {
      return key(a) < key(b);
    }
    return a.meta.dump() < b.meta.dump();
  });
  r.findings = std::move(all);
  s.findings = r.findings.size();
  s.errors = r.errors.size();
  s.limits_hit = r.limits_hit.size();
  r.summary = std::move(s);

  std::vector<severity> levels;
  levels.reserve(r.findings.size());
  for (const auto& f : r.findings) {
    levels.push_back(f.level);
  }
  // An encrypted volume's content was not examined: never clean.
  const bool encrypted = std::any_of(r.findings.begin(), r.findings.end(), [](const finding& f) {
    return f.source == "volume" && f.rule == "encrypted_volume";
  });
  const bool unread = encrypted || std::any_of(r.errors.begin(), r.errors.end(),
                                               [](const error_entry& e) { return e.affects_verdict; });
  const judgement j = judge(levels, !r.limits_hit.empty(), unread, flag_threshold);
  r.score = j.score;
  r.score_reasons = explain_score(r.findings);
  if (r.result == verdict::error) {
    // verdict_reason was set where the image failed to open.
    return;
  }
  r.result = j.result;
  if (j.result == verdict::flagged) {
    r.verdict_reason = "findings at or above severity " + std::string(to_string(flag_threshold));
  } else if (!r.limits_hit.empty()) {
    r.verdict_reason = "limit hit: " + r.limits_hit.front().limit;
  } else if (encrypted) {
    r.verdict_reason = detail::encrypted_volume_reason;
  } else if (unread) {
    r.verdict_reason = "part of the image could not be read";
  } else {
    r.verdict_reason = "no findings at or above severity " + std::string(to_string(flag_threshold));
  }
}

judgement judge(const std::vector<severity>& finding_levels, bool limits_hit, bool unread, severity flag_threshold) {
  int score = 0;
  bool flagged = false;
  int above_info = 0;
  for (const severity level : finding_levels) {
    score = std::max(score, severity_weight(level));
    flagged = flagged || level >= flag_threshold;
    above_info += level > severity::info ? 1 : 0;
  }
  judgement j;
  // More independent findings raise the score a little, never past 100.
  j.score = std::min(100, score + std::max(0, above_info - 1));
  j.result = flagged ? verdict::flagged : limits_hit || unread ? verdict::incomplete : verdict::clean;
  return j;
}

std::vector<score_reason> explain_score(const std::vector<finding>& findings) {
  const auto reason = [](const finding& f, int points) {
    return score_reason{finding_id(f), f.path, f.rule, f.source, f.level, points};
  };
  std::vector<score_reason> out;
  const auto top = std::max_element(findings.begin(), findings.end(), [](const finding& a, const finding& b) {
    return severity_weight(a.level) < severity_weight(b.level);
  });
  if (top == findings.end() || top->level == severity::info) {
    return out;
  }
  out.push_back(reason(*top, severity_weight(top->level)));
  int score = out.front().points;
  for (auto it = findings.begin(); it != findings.end() && score < 100; ++it) {
    if (it != top && it->level > severity::info) {
      out.push_back(reason(*it, 1));
      ++score;
    }
  }
  return out;
}

}  // namespace borderscan::scanner
