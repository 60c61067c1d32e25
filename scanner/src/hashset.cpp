#include "borderscan/scanner/hashset.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>

#include "borderscan/scanner/error.hpp"
#include "borderscan/scanner/text.hpp"
#include "c_handle.hpp"

namespace borderscan::scanner {
namespace {

using file_ptr = std::unique_ptr<FILE, detail::c_deleter<&std::fclose>>;

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// Stem without the ".known-bad.txt" style suffix: "eicar.known-bad.txt" -> "eicar".
std::string set_name_of(const std::filesystem::path& file) {
  std::string name = file.filename().string();
  for (std::string_view suffix : {".known-bad.txt", ".known-good.txt", ".txt", ".hashes"}) {
    if (name.size() > suffix.size() && name.ends_with(suffix)) {
      name.resize(name.size() - suffix.size());
      break;
    }
  }
  return name;
}

}  // namespace

const char* to_string(hashset_kind k) noexcept {
  return k == hashset_kind::known_bad ? "known-bad" : "known-good";
}

std::pair<std::filesystem::path, hashset_kind> parse_hashset_arg(std::string_view arg) {
  for (auto [suffix, kind] : {std::pair{std::string_view(":known-good"), hashset_kind::known_good},
                              std::pair{std::string_view(":known-bad"), hashset_kind::known_bad}}) {
    if (arg.ends_with(suffix)) {
      return {std::filesystem::path(arg.substr(0, arg.size() - suffix.size())), kind};
    }
  }
  return {std::filesystem::path(arg), hashset_kind::known_bad};
}

void hashset_db::load(const std::filesystem::path& file, hashset_kind kind, std::string set_name) {
  file_ptr f(std::fopen(file.c_str(), "rb"));
  if (!f) {
    throw scan_error(scan_errc::rules_invalid, file.string() + ": cannot open hash set: " + std::strerror(errno));
  }
  const auto set_id = static_cast<std::uint32_t>(sets_.size());
  sets_.push_back({set_name.empty() ? set_name_of(file) : std::move(set_name), kind, 0, file});

  char* line = nullptr;
  std::size_t cap = 0;
  // getline(3) may reallocate the buffer; free whatever it ends up as.
  struct line_guard {
    char*& p;
    ~line_guard() { std::free(p); }
  } guard{line};
  std::uint64_t line_no = 0;
  std::uint64_t count = 0;
  ssize_t len = 0;
  while ((len = ::getline(&line, &cap, f.get())) >= 0) {
    ++line_no;
    std::string_view text = trim(std::string_view(line, static_cast<std::size_t>(len)));
    if (text.empty() || text.front() == '#') {
      continue;
    }
    std::size_t end = 0;
    while (end < text.size() && !is_space(text[end])) ++end;
    const std::string_view hex = text.substr(0, end);
    const std::string_view entry_name = trim(text.substr(end));
    std::uint32_t name_id = 0;
    if (!entry_name.empty()) {
      // Consecutive lines often share a name (one sample, three digests).
      if (names_.back() != entry_name) {
        names_.emplace_back(entry_name);
      }
      name_id = static_cast<std::uint32_t>(names_.size() - 1);
    }
    bool ok = false;
    switch (hex.size()) {
      case 32: {
        entry<16> e{{}, set_id, name_id};
        ok = from_hex(hex, e.digest);
        if (ok) md5_.push_back(e);
        break;
      }
      case 40: {
        entry<20> e{{}, set_id, name_id};
        ok = from_hex(hex, e.digest);
        if (ok) sha1_.push_back(e);
        break;
      }
      case 64: {
        entry<32> e{{}, set_id, name_id};
        ok = from_hex(hex, e.digest);
        if (ok) sha256_.push_back(e);
        break;
      }
      default:
        break;
    }
    if (!ok) {
      throw scan_error(scan_errc::rules_invalid,
                       file.string() + ":" + std::to_string(line_no) + ": not an MD5, SHA-1 or SHA-256 hex digest");
    }
    ++count;
  }
  if (std::ferror(f.get())) {
    throw scan_error(scan_errc::rules_invalid, file.string() + ": read error");
  }
  sets_.back().entries = count;
}

void hashset_db::seal() {
  std::sort(md5_.begin(), md5_.end());
  std::sort(sha1_.begin(), sha1_.end());
  std::sort(sha256_.begin(), sha256_.end());
  md5_.shrink_to_fit();
  sha1_.shrink_to_fit();
  sha256_.shrink_to_fit();
}

std::uint64_t hashset_db::size() const noexcept {
  return md5_.size() + sha1_.size() + sha256_.size();
}

template <std::size_t N>
void hashset_db::collect(const std::vector<entry<N>>& table, std::span<const std::uint8_t, N> key,
                         const char* algorithm, std::vector<hashset_hit>& out) const {
  entry<N> probe{};
  std::copy(key.begin(), key.end(), probe.digest.begin());
  auto [first, last] = std::equal_range(table.begin(), table.end(), probe);
  for (auto it = first; it != last; ++it) {
    const auto& set = sets_[it->set];
    out.push_back({set.name, set.kind, names_[it->name], algorithm});
  }
}

std::vector<hashset_hit> hashset_db::lookup(std::span<const std::uint8_t, 16> md5,
                                            std::span<const std::uint8_t, 20> sha1,
                                            std::span<const std::uint8_t, 32> sha256) const {
  std::vector<hashset_hit> hits;
  if (!sha256_.empty()) collect<32>(sha256_, sha256, "sha256", hits);
  if (!sha1_.empty()) collect<20>(sha1_, sha1, "sha1", hits);
  if (!md5_.empty()) collect<16>(md5_, md5, "md5", hits);
  return hits;
}

}  // namespace borderscan::scanner
