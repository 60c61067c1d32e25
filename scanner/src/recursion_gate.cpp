#include "borderscan/scanner/recursion_gate.hpp"

#include <algorithm>
#include <exception>
#include <iterator>

#include "borderscan/scanner/error.hpp"
#include "borderscan/scanner/scratch.hpp"
#include "container_stages.hpp"

namespace borderscan::scanner {
namespace {

// Containers smaller than this may expand to ratio * this before counting as a bomb,
// so that tiny archives of ordinary files are not flagged.
constexpr std::uint64_t ratio_floor_bytes = 1 << 20;

limit_hit hit(const char* limit, std::uint64_t value, const file_entry& at) {
  return {limit, std::to_string(value), at.path, at.volume};
}

void append(object_outcome& to, object_outcome&& more) {
  std::move(more.errors.begin(), more.errors.end(), std::back_inserter(to.errors));
  std::move(more.limits.begin(), more.limits.end(), std::back_inserter(to.limits));
}

}  // namespace

namespace detail {

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

}  // namespace detail

std::string container_stage::bomb_description(std::uint32_t max_ratio) const {
  return "the container expands to more than " + std::to_string(max_ratio) + " times its size; expansion stopped";
}

container::container(file_entry& entry, std::uint64_t size, std::uint32_t max_ratio, const container_stage& stage,
                     container* outer)
    : entry_(entry),
      stage_(stage),
      outer_(outer),
      size_(size),
      allowed_(std::max(size, ratio_floor_bytes) * max_ratio) {}

bool container::count(std::uint64_t n) {
  expanded_ += n;
  if (expanded_ > allowed_) {
    bomb_ = true;
  }
  // Bytes expanded in here count in every enclosing container too, so nested
  // layers cannot multiply the ratio.
  if (outer_ != nullptr && !outer_->count(n)) {
    outer_stopped_ = true;
  }
  return !bomb_ && !outer_stopped_;
}

// An inflated member read once, front to back, metered as its bytes come out.
// Reading backwards is not possible; object_scanner only reads forwards except
// when YARA conditions look back, which then see no data.
class recursion_gate::metered_stream final : public content_source {
 public:
  metered_stream(recursion_gate& gate, container& parent, inflated_member& bytes, std::optional<std::uint64_t> size)
      : gate_(gate), parent_(parent), bytes_(bytes), size_(size) {}
  std::uint64_t size() const override { return size_.value_or(0); }
  bool size_known() const override { return size_.has_value(); }
  bool forward_only() const override { return true; }
  std::size_t read_at(std::uint64_t offset, std::span<std::byte> out) override {
    if (offset < pos_) {
      throw scan_error(scan_errc::read_failed, "streamed archive member cannot be read backwards");
    }
    std::vector<std::byte> skipped;
    while (pos_ < offset) {
      skipped.resize(static_cast<std::size_t>(std::min<std::uint64_t>(offset - pos_, 1 << 16)));
      if (read_some(skipped) == 0) {
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
    const std::size_t n = bytes_.read(out);
    pos_ += n;
    if (!gate_.count_inflated(parent_, n)) {
      stopped_ = true;
    }
    return n;
  }

  recursion_gate& gate_;
  container& parent_;
  inflated_member& bytes_;
  std::optional<std::uint64_t> size_;
  std::uint64_t pos_ = 0;
  bool stopped_ = false;
};

namespace {

// A scratch file read back as content.
class scratch_source final : public content_source {
 public:
  explicit scratch_source(const scratch_space::file& file) : file_(file) {}
  std::uint64_t size() const override { return file_.size(); }
  std::size_t read_at(std::uint64_t offset, std::span<std::byte> out) override {
    if (offset >= file_.size()) {
      return 0;
    }
    return file_.read_at(
        offset, out.first(static_cast<std::size_t>(std::min<std::uint64_t>(out.size(), file_.size() - offset))));
  }

 private:
  const scratch_space::file& file_;
};

}  // namespace

// A streamed member's bytes kept in the scratch space as they are read, when
// it turns out to be a container, so that one too large to hold in memory
// is still opened. Until the scanner has named its type (from the first
// block), the head waits in memory, at most `undecided_cap` bytes.
class recursion_gate::spooled_stream final : public inflated_member {
 public:
  spooled_stream(recursion_gate& gate, const file_entry& child, inflated_member& bytes)
      : gate_(gate),
        child_(child),
        bytes_(bytes),
        state_(gate.scratch_ != nullptr ? state::undecided : state::dropped) {}

  std::size_t read(std::span<std::byte> out) override {
    const std::size_t n = bytes_.read(out);
    take(out.first(n));
    return n;
  }

  // The whole member, when it was kept.
  std::unique_ptr<content_source> copy() const {
    if (state_ == state::spooling) {
      return std::make_unique<scratch_source>(*file_);
    }
    if (state_ == state::undecided) {
      return std::make_unique<memory_source>(head_);  // it ended before a type was named
    }
    return nullptr;
  }
  const std::string& failure() const noexcept { return failure_; }

 private:
  static constexpr std::size_t undecided_cap = 8 << 20;
  enum class state { undecided, spooling, dropped };

  void take(std::span<const std::byte> bytes) {
    if (bytes.empty() || state_ == state::dropped) {
      return;
    }
    try {
      if (state_ == state::spooling) {
        file_->append(bytes);
        return;
      }
      head_.insert(head_.end(), bytes.begin(), bytes.end());
      if (child_.description.empty() && head_.size() <= undecided_cap) {
        return;
      }
      if (!child_.description.empty() && gate_.claimant(child_) == nullptr) {
        drop();
        return;
      }
      const std::string& path = child_.path;
      file_ = gate_.scratch_->create(path.substr(path.find_last_of("/!") + 1));
      file_->append(head_);
      state_ = state::spooling;
      head_ = {};
    } catch (const scan_error& e) {
      failure_ = e.what();  // a full disk: the member is still scanned, only not opened
      drop();
    }
  }
  void drop() {
    state_ = state::dropped;
    head_ = {};
    file_.reset();
  }

  recursion_gate& gate_;
  const file_entry& child_;
  inflated_member& bytes_;
  state state_;
  std::vector<std::byte> head_;
  std::unique_ptr<scratch_space::file> file_;
  std::string failure_;
};

recursion_gate::recursion_gate(const limits& lim, object_scanner& scanner, expansion_budget& budget, scan_sink& sink,
                               stage_list stages)
    : limits_(lim),
      scanner_(scanner),
      budget_(budget),
      sink_(sink),
      stages_(std::move(stages)),
      on_bytes_([this](std::uint64_t n) { sink_.add_bytes(n); }) {}

void recursion_gate::scan_top(file_entry& entry, stored_member& content, object_outcome& outcome) {
  if (const auto why = sink_.stop_reason()) {
    entry.skipped = std::string(*why);
    return;
  }
  try {
    const auto source = content.open();
    outcome = scanner_.scan(entry, *source, on_bytes_);
    expand_in(entry, *source, nullptr);
    append(outcome, scanner_.settle_evidence(entry, *source));
  } catch (const scan_error& e) {
    outcome.errors.push_back({entry.path, entry.volume, "read", to_string(static_cast<scan_errc>(e.code().value())),
                              e.what(), !entry.deleted});
  } catch (const std::exception& e) {
    outcome.errors.push_back({entry.path, entry.volume, "engine", "internal", e.what(), true});
  }
}

void recursion_gate::expand(file_entry& entry, content_source& source) {
  expand_in(entry, source, nullptr);
}

bool recursion_gate::more(container& parent) {
  return !parent.stopped() && !sink_.stop_reason();
}

bool recursion_gate::admit(container& parent) {
  if (++parent.members_ > limits_.max_members) {
    add_limit(hit("max_members", limits_.max_members, parent.entry()));
    return false;
  }
  return true;
}

void recursion_gate::list(container& parent, file_entry&& child) {
  place(parent, child);
  sink_.add_file(std::move(child));
}

void recursion_gate::recurse(container& parent, file_entry&& child, inflated_member& bytes) {
  place(parent, child);
  if (child.size && *child.size > limits_.max_member_bytes) {
    child.skipped = "member larger than max_member_bytes";
    add_limit(hit("max_member_bytes", limits_.max_member_bytes, child));
  } else if (child.size && *child.size > parent.allowed_) {
    // The header alone promises a bomb: do not inflate it.
    parent.bomb_ = true;
    child.skipped = "declared size exceeds the expansion ratio";
  } else {
    try {
      if (child.size && *child.size <= limits_.member_memory_bytes) {
        scan_held(parent, child, bytes);
      } else {
        scan_streamed(parent, child, bytes);
      }
    } catch (const scan_error& e) {
      add_error({child.path, child.volume, std::string(parent.stage().name()), "member_unreadable", e.what(),
                 !child.deleted});
    }
  }
  sink_.add_file(std::move(child));
}

void recursion_gate::recurse(container& parent, file_entry&& child, stored_member& bytes) {
  place(parent, child);
  if (parent.stopped()) {
    child.skipped = "not read: expansion limit reached";
  } else {
    try {
      const auto source = bytes.open();
      object_outcome outcome = scanner_.scan(child, *source, on_bytes_);
      parent.count(child.bytes_read);
      record(std::move(outcome));
      if (!parent.stopped()) {
        expand_in(child, *source, &parent);
        record(scanner_.settle_evidence(child, *source));
      }
    } catch (const scan_error& e) {
      add_error({child.path, child.volume, "read", "member_unreadable", e.what(), !child.deleted});
    }
  }
  sink_.add_file(std::move(child));
}

void recursion_gate::add_error(error_entry&& e) {
  sink_.add_error(std::move(e));
}

void recursion_gate::add_limit(limit_hit&& l) {
  sink_.add_limit(std::move(l));
}

const container_stage* recursion_gate::claimant(const file_entry& entry) const {
  const auto it =
      std::find_if(stages_.begin(), stages_.end(), [&](const container_stage* stage) { return stage->claims(entry); });
  return it != stages_.end() ? *it : nullptr;
}

void recursion_gate::expand_in(file_entry& entry, content_source& source, container* outer) {
  const container_stage* stage = claimant(entry);
  if (stage == nullptr) {
    return;
  }
  if (entry.depth >= limits_.max_depth) {
    add_limit(hit("max_depth", limits_.max_depth, entry));
    return;
  }
  if (stage->yields() == member_bytes::inflated && budget_.expanded_bytes.load() >= limits_.max_total_expanded_bytes) {
    // Every container left unopened is named, not just the first.
    budget_.total_limit_reported = true;
    add_limit(hit("max_total_expanded_bytes", limits_.max_total_expanded_bytes, entry));
    return;
  }
  container c(entry, source.size(), limits_.max_expansion_ratio, *stage, outer);
  stage->expand(c, source, *this);
  close_container(c);
}

void recursion_gate::close_container(container& c) {
  file_entry& entry = c.entry();
  if (c.bomb_) {
    entry.findings.push_back(
        detail::container_finding(entry, "archive_bomb", severity::high,
                                  {{"container_bytes", c.size_},
                                   {"expanded_bytes", c.expanded_},
                                   {"max_expansion_ratio", limits_.max_expansion_ratio},
                                   {"description", c.stage().bomb_description(limits_.max_expansion_ratio)}},
                                  {"archive-bomb"}));
    add_limit(hit("max_expansion_ratio", limits_.max_expansion_ratio, entry));
  }
  if (c.budget_exhausted_ && !budget_.total_limit_reported.exchange(true)) {
    add_limit(hit("max_total_expanded_bytes", limits_.max_total_expanded_bytes, entry));
  }
}

void recursion_gate::place(const container& parent, file_entry& child) const {
  const file_entry& p = parent.entry();
  child.path = p.path + "!" + child.path;
  child.volume = p.volume;
  child.deleted = child.deleted || p.deleted;
  child.container = p.path;
  child.depth = p.depth + 1;
}

void recursion_gate::scan_held(container& parent, file_entry& child, inflated_member& bytes) {
  std::vector<std::byte>& held = parent.held_;
  held.resize(static_cast<std::size_t>(*child.size));
  std::size_t got = 0;
  while (got < held.size()) {
    const std::size_t n = bytes.read(std::span(held).subspan(got));
    if (n == 0) {
      break;
    }
    got += n;
    if (!count_inflated(parent, n)) {
      break;
    }
  }
  held.resize(got);  // a short member is reported by the scanner as a short read
  memory_source mem(held);
  record(scanner_.scan(child, mem, on_bytes_));
  if (!parent.stopped()) {
    // A nested container's frame has a buffer of its own, so `held` stays valid.
    expand_in(child, mem, &parent);
    record(scanner_.settle_evidence(child, mem));
  }
}

void recursion_gate::scan_streamed(container& parent, file_entry& child, inflated_member& bytes) {
  spooled_stream spool(*this, child, bytes);
  metered_stream stream(*this, parent, spool, child.size);
  object_outcome outcome = scanner_.scan(child, stream, on_bytes_);
  record(std::move(outcome));
  if (claimant(child) == nullptr || !child.content_complete || parent.stopped()) {
    return;
  }
  if (const auto copy = spool.copy()) {
    expand_in(child, *copy, &parent);
    return;
  }
  // Streamed once and not kept: its members cannot be read again.
  add_limit(hit("member_memory_bytes", limits_.member_memory_bytes, child));
  child.skipped = "nested container too large to expand in memory" +
                  (spool.failure().empty() ? std::string() : " (" + spool.failure() + ")");
}

bool recursion_gate::count_inflated(container& c, std::uint64_t n) {
  c.count(n);
  if (budget_.expanded_bytes.fetch_add(n) + n > limits_.max_total_expanded_bytes) {
    c.budget_exhausted_ = true;
  }
  return !c.stopped();
}

void recursion_gate::record(object_outcome&& outcome) {
  for (auto& e : outcome.errors) {
    sink_.add_error(std::move(e));
  }
  for (auto& l : outcome.limits) {
    sink_.add_limit(std::move(l));
  }
}

const recursion_gate::stage_list& default_container_stages() {
  static const recursion_gate::stage_list stages{&detail::archive_stage(), &detail::disk_image_stage(),
                                                 &detail::virtual_disk_stage()};
  return stages;
}

}  // namespace borderscan::scanner
