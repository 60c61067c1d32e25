#include "unallocated.hpp"

#include <tsk/libtsk.h>

#include <algorithm>
#include <exception>

#include "borderscan/scanner/error.hpp"

namespace borderscan::scanner::detail {

std::uint64_t unallocated_chunk::length() const {
  std::uint64_t n = 0;
  for (const auto& e : extents) {
    n += e.length;
  }
  return n;
}

std::uint64_t unallocated_chunk::image_offset(std::uint64_t at) const {
  for (const auto& e : extents) {
    if (at < e.length) {
      return e.offset + at;
    }
    at -= e.length;
  }
  return extents.empty() ? 0 : extents.back().offset + extents.back().length;
}

std::string unallocated_path(const unallocated_area& area, std::uint64_t offset) {
  return (area.volume ? "/$Unallocated@" : "$Gap@") + std::to_string(offset);
}

// One area's stream of extents, cut into chunks of unallocated_chunk_bytes
// (or unallocated_chunk_runs runs) that each reach unallocated_overlap_bytes
// into the next.
class unallocated_planner::chunker {
 public:
  chunker(unallocated_area area, const emit_fn& emit) : area_(area), emit_(emit) {}

  void add(image_extent e) {
    if (!pending_.empty() && pending_.back().offset + pending_.back().length == e.offset) {
      pending_.back().length += e.length;
    } else {
      pending_.push_back(e);
    }
    pending_bytes_ += e.length;
    while (pending_bytes_ >= unallocated_chunk_bytes + unallocated_overlap_bytes ||
           pending_.size() >= 2 * unallocated_chunk_runs) {
      emit(false);
    }
  }

  void finish() {
    if (pending_bytes_ > 0) {
      emit(true);
    }
  }

 private:
  void emit(bool last) {
    unallocated_chunk c;
    c.area = area_;
    // The chunk's own bytes: up to the chunk size, in at most the run cap.
    std::uint64_t own = 0;
    std::size_t runs = 0;
    while (runs < pending_.size() && runs < unallocated_chunk_runs && own < unallocated_chunk_bytes) {
      own += std::min(pending_[runs].length, unallocated_chunk_bytes - own);
      ++runs;
    }
    if (last) {
      own = pending_bytes_;
    }
    c.own_length = own;
    const std::uint64_t wanted = std::min(pending_bytes_, own + (last ? 0 : unallocated_overlap_bytes));
    std::uint64_t taken = 0;
    for (std::size_t i = 0; i < pending_.size() && taken < wanted; ++i) {
      const std::uint64_t n = std::min(pending_[i].length, wanted - taken);
      c.extents.push_back({pending_[i].offset, n});
      taken += n;
    }
    // Drop the own bytes from the front: the overlap stays for the next chunk.
    std::uint64_t drop = own;
    while (drop > 0 && !pending_.empty()) {
      image_extent& e = pending_.front();
      const std::uint64_t n = std::min(drop, e.length);
      e.offset += n;
      e.length -= n;
      drop -= n;
      if (e.length == 0) {
        pending_.erase(pending_.begin());
      }
    }
    pending_bytes_ -= own;
    emit_(std::move(c));
  }

  unallocated_area area_;
  const emit_fn& emit_;
  std::vector<image_extent> pending_;
  std::uint64_t pending_bytes_ = 0;
};

unallocated_planner::unallocated_planner(const limits& lim, std::uint64_t image_size, walk_sink& sink, emit_fn emit)
    : limits_(lim), image_size_(image_size), sink_(sink), emit_(std::move(emit)), left_(lim.max_unallocated_bytes) {}

void unallocated_planner::take(chunker& c, image_extent e, const unallocated_area& area) {
  if (exhausted_ || e.offset >= image_size_) {
    return;  // past the budget, or not in the image: nothing to read
  }
  e.length = std::min(e.length, image_size_ - e.offset);
  if (e.length > left_) {
    e.length = left_;
    exhausted_ = true;
    // Recorded once per scan, where the look stopped.
    sink_.limit({"max_unallocated_bytes", std::to_string(limits_.max_unallocated_bytes),
                 unallocated_path(area, e.offset + e.length), area.volume});
  }
  left_ -= e.length;
  if (e.length > 0) {
    c.add(e);
  }
}

namespace {

// tsk_fs_block_walk's callback state: joins adjacent free blocks into runs.
struct block_runs {
  std::uint64_t base = 0, block_size = 0;
  std::uint64_t run_offset = 0, run_length = 0;
  std::uint64_t blocks = 0;
  std::function<void(image_extent)> flush_run;
  walk_sink* sink = nullptr;
  std::exception_ptr error;

  void flush() {
    if (run_length > 0) {
      flush_run({run_offset, run_length});
      run_length = 0;
    }
  }

  static TSK_WALK_RET_ENUM on_block(const TSK_FS_BLOCK* block, void* ptr) {
    auto* self = static_cast<block_runs*>(ptr);
    try {
      const std::uint64_t offset = self->base + block->addr * self->block_size;
      if (self->run_length > 0 && self->run_offset + self->run_length == offset) {
        self->run_length += self->block_size;
      } else {
        self->flush();
        self->run_offset = offset;
        self->run_length = self->block_size;
      }
      // Cancel and deadline, every 64 Ki blocks.
      if ((++self->blocks & 0xFFFF) == 0 && self->sink->stop()) {
        return TSK_WALK_STOP;
      }
      return TSK_WALK_CONT;
    } catch (...) {
      // Never unwind through libtsk.
      self->error = std::current_exception();
      return TSK_WALK_STOP;
    }
  }
};

}  // namespace

std::uint64_t unallocated_planner::add_filesystem(TSK_FS_INFO& fs, const volume_plan& volume, std::size_t area) {
  const unallocated_area where{area, volume.entry.index};
  chunker c(where, emit_);
  std::uint64_t found = 0;
  block_runs runs;
  runs.base = static_cast<std::uint64_t>(fs.offset);
  runs.block_size = fs.block_size;
  runs.sink = &sink_;
  runs.flush_run = [&](image_extent e) {
    found += e.length;
    take(c, e, where);
  };
  // AONLY: addresses and allocation state only; the chunks are read later,
  // in large pieces, by the workers.
  tsk_error_reset();
  const auto flags =
      static_cast<TSK_FS_BLOCK_WALK_FLAG_ENUM>(TSK_FS_BLOCK_WALK_FLAG_UNALLOC | TSK_FS_BLOCK_WALK_FLAG_AONLY);
  const bool failed = tsk_fs_block_walk(&fs, fs.first_block, fs.last_block_act, flags, &block_runs::on_block, &runs);
  if (runs.error) {
    std::rethrow_exception(runs.error);
  }
  runs.flush();
  if (failed) {
    error_entry e;
    e.path = "/$Unallocated";
    e.volume = volume.entry.index;
    e.stage = "unallocated";
    e.code = "block_walk_failed";
    e.message = "libtsk could not list the unallocated blocks of the file system";
    if (const char* why = tsk_error_get(); why != nullptr) {
      e.message += std::string(": ") + why;
    }
    sink_.error(std::move(e));
  }
  tsk_error_reset();
  // The volume's bytes past the end of its file system belong to no file either.
  const std::uint64_t fs_end =
      static_cast<std::uint64_t>(fs.offset) + (static_cast<std::uint64_t>(fs.last_block) + 1) * fs.block_size;
  const std::uint64_t volume_end = std::min(volume.entry.offset + volume.entry.length, image_size_);
  if (volume_end > fs_end) {
    found += volume_end - fs_end;
    take(c, {fs_end, volume_end - fs_end}, where);
  }
  c.finish();
  return found;
}

void unallocated_planner::add_gap(const layout_gap& gap, std::size_t area) {
  const unallocated_area where{area, std::nullopt};
  chunker c(where, emit_);
  take(c, {gap.offset, gap.length}, where);
  c.finish();
}

chunk_outcome scan_unallocated_chunk(const unallocated_chunk& chunk, tsk_image& image, object_scanner& scanner,
                                     std::vector<std::byte>& buffer) {
  chunk_outcome out;
  const std::uint64_t length = chunk.length();
  buffer.resize(static_cast<std::size_t>(length));
  std::uint64_t got = 0;
  const std::string chunk_path = unallocated_path(chunk.area, chunk.image_offset(0));
  for (const auto& e : chunk.extents) {
    const auto piece = std::span(buffer).subspan(static_cast<std::size_t>(got), static_cast<std::size_t>(e.length));
    std::string why;
    std::size_t n = 0;
    try {
      while (n < piece.size()) {
        const std::size_t r = image.read_raw(e.offset + n, piece.subspan(n));
        if (r == 0) {
          why = "the image ends there";
          break;
        }
        n += r;
      }
    } catch (const scan_error& err) {
      why = err.what();
    }
    got += n;
    if (n < piece.size()) {
      out.errors.push_back(
          {chunk_path, chunk.area.volume, "unallocated", to_string(scan_errc::read_failed),
           "cannot read unallocated space at image offset " + std::to_string(e.offset + n) + ": " + why, true});
      break;
    }
  }
  const auto data = std::span<const std::byte>(buffer).first(static_cast<std::size_t>(got));
  const auto own = data.first(static_cast<std::size_t>(std::min(got, chunk.own_length)));
  out.bytes_read = own.size();
  out.holds_data = std::any_of(own.begin(), own.end(), [](std::byte b) { return b != std::byte{0}; });
  if (!out.holds_data && own.size() == data.size()) {
    return out;  // zeros match no rule worth a finding here, and a blank card is mostly zeros
  }
  file_entry region;
  region.path = chunk_path;
  region.volume = chunk.area.volume.value_or(0);
  region.deleted = chunk.area.volume.has_value();
  object_outcome scanned = scanner.scan_region(region, data);
  for (auto& e : scanned.errors) {
    e.volume = chunk.area.volume;
    e.stage = e.stage == "read" ? "unallocated" : e.stage;
    out.errors.push_back(std::move(e));
  }
  for (auto& f : region.findings) {
    std::optional<string_match> first;
    for (const auto& m : f.matches) {
      if (!first || m.offset < first->offset) {
        first = m;
      }
    }
    if (first && first->offset >= chunk.own_length) {
      continue;  // in the overlap: the next chunk reports it
    }
    const std::uint64_t at = chunk.image_offset(first ? first->offset : 0);
    for (auto& m : f.matches) {
      m.offset = chunk.image_offset(m.offset);
    }
    f.path = unallocated_path(chunk.area, at);
    f.volume = chunk.area.volume;
    f.deleted = chunk.area.volume.has_value();
    f.meta["offset"] = at;
    f.meta["length"] = first ? first->length : got;
    out.findings.push_back(std::move(f));
  }
  return out;
}

}  // namespace borderscan::scanner::detail
