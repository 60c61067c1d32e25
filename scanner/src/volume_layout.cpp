#include "volume_layout.hpp"

#include <tsk/libtsk.h>

#include <algorithm>
#include <string>

namespace borderscan::scanner::detail {
namespace {

constexpr std::uint64_t alignment_gap = 1 << 20;
// GPT keeps a copy of its table in the image's last 33 sectors (32 of
// entries, then the backup header); libtsk does not list it.
constexpr std::uint64_t gpt_backup_sectors = 33;

struct extent {
  std::uint64_t begin = 0, end = 0;  // bytes, end exclusive
};

std::string range_text(std::uint64_t begin, std::uint64_t end) {
  return "bytes " + std::to_string(begin) + "-" + std::to_string(end - 1) + " (" + std::to_string(end - begin) +
         " bytes)";
}

std::uint64_t end_of(const volume_plan& v) {
  return v.entry.length > UINT64_MAX - v.entry.offset ? UINT64_MAX : v.entry.offset + v.entry.length;
}

void note_overlaps(std::vector<volume_plan>& volumes, walk_sink& sink) {
  for (std::size_t i = 0; i < volumes.size(); ++i) {
    for (std::size_t j = i + 1; j < volumes.size(); ++j) {
      volume_plan& a = volumes[i];
      volume_plan& b = volumes[j];
      const std::uint64_t begin = std::max(a.entry.offset, b.entry.offset);
      const std::uint64_t end = std::min(end_of(a), end_of(b));
      if (begin >= end) {
        continue;
      }
      const std::string range = range_text(begin, end);
      // The shared sectors are read as part of both file systems: one's
      // files can surface in the other's $OrphanFiles or fail to read there.
      const std::string why =
          ": the same sectors belong to both volumes, so files of one may reappear in the other's $OrphanFiles "
          "or as unreadable entries there";
      a.entry.notes.push_back("overlaps volume " + std::to_string(b.entry.index) + " over " + range + why);
      b.entry.notes.push_back("overlaps volume " + std::to_string(a.entry.index) + " over " + range + why);
      sink.warning("volumes " + std::to_string(a.entry.index) + " and " + std::to_string(b.entry.index) +
                   " overlap over " + range + " (partition table inconsistent)");
    }
  }
}

// The sectors holding the table itself (MBR, EBRs, GPT header and entries).
std::vector<extent> table_extents(const TSK_VS_INFO& vs, const std::vector<volume_plan>& volumes) {
  std::vector<extent> out;
  const std::uint64_t bs = vs.block_size;
  for (TSK_PNUM_T i = 0; i < vs.part_count; ++i) {
    const TSK_VS_PART_INFO* part = tsk_vs_part_get(&vs, i);
    if (part == nullptr || !(part->flags & TSK_VS_PART_FLAG_META) || (part->flags & TSK_VS_PART_FLAG_ALLOC)) {
      continue;
    }
    const extent e{part->start * bs, (part->start + part->len) * bs};
    // An MBR's extended partition is listed as metadata around its logical
    // partitions: a container, not table sectors.
    const bool container = std::any_of(volumes.begin(), volumes.end(), [&](const volume_plan& v) {
      return v.entry.offset >= e.begin && end_of(v) <= e.end;
    });
    if (!container) {
      out.push_back(e);
    }
  }
  tsk_error_reset();
  return out;
}

void note_table_overlaps(const std::vector<extent>& tables, std::vector<volume_plan>& volumes, walk_sink& sink) {
  for (auto& v : volumes) {
    for (const auto& t : tables) {
      const std::uint64_t begin = std::max(v.entry.offset, t.begin);
      const std::uint64_t end = std::min(end_of(v), t.end);
      if (begin >= end) {
        continue;
      }
      v.entry.notes.push_back("covers the partition table itself at " + range_text(begin, end) +
                              ": the table is inconsistent");
      sink.warning("volume " + std::to_string(v.entry.index) + " covers the partition table at " +
                   range_text(begin, end));
    }
  }
}

std::vector<layout_gap> find_gaps(const std::vector<extent>& tables, const std::vector<volume_plan>& volumes,
                                  std::uint64_t image_end) {
  if (volumes.empty()) {
    return {};
  }
  std::vector<extent> covered = tables;
  std::uint64_t first_volume = UINT64_MAX;
  for (const auto& v : volumes) {
    covered.push_back({v.entry.offset, end_of(v)});
    first_volume = std::min(first_volume, v.entry.offset);
  }
  std::sort(covered.begin(), covered.end(), [](const extent& a, const extent& b) { return a.begin < b.begin; });
  std::vector<extent> holes;
  std::uint64_t at = 0;
  for (const auto& c : covered) {
    if (c.begin > at && at < image_end) {
      holes.push_back({at, std::min(c.begin, image_end)});
    }
    at = std::max(at, c.end);
  }
  if (at < image_end) {
    holes.push_back({at, image_end});
  }
  std::vector<layout_gap> gaps;
  for (const auto& h : holes) {
    if (h.end <= first_volume && first_volume <= alignment_gap) {
      continue;  // the usual alignment gap before the first partition
    }
    layout_gap g{h.begin, h.end - h.begin, std::nullopt, std::nullopt};
    for (const auto& v : volumes) {
      if (end_of(v) <= h.begin && (!g.after || end_of(v) > end_of(volumes[*g.after]))) {
        g.after = v.entry.index;
      }
      if (v.entry.offset >= h.end && (!g.before || v.entry.offset < volumes[*g.before].entry.offset)) {
        g.before = v.entry.index;
      }
    }
    gaps.push_back(g);
  }
  return gaps;
}

}  // namespace

std::vector<layout_gap> check_layout(const TSK_VS_INFO& vs, std::vector<volume_plan>& volumes, std::uint64_t image_size,
                                     walk_sink& sink) {
  note_overlaps(volumes, sink);
  const std::vector<extent> tables = table_extents(vs, volumes);
  note_table_overlaps(tables, volumes, sink);
  std::uint64_t image_end = image_size;
  if (vs.vstype == TSK_VS_TYPE_GPT) {
    const std::uint64_t backup = gpt_backup_sectors * vs.block_size;
    image_end = image_size > backup ? image_size - backup : 0;
  }
  return find_gaps(tables, volumes, image_end);
}

}  // namespace borderscan::scanner::detail
