#pragma once
// Partition-table anomalies: volumes that overlap, table entries that cover
// the table itself, and unpartitioned gaps (which may hold hidden data).
// Found once, on the walking thread, from libtsk's volume system.

#include <cstdint>
#include <optional>
#include <vector>

#include "tsk_image.hpp"

struct TSK_VS_INFO;

namespace borderscan::scanner::detail {

// Notes each anomaly on the volumes concerned, warns about it through
// `sink`, and returns the gaps in image order. The alignment gap before the
// first partition is left out when it is at most 1 MiB (the usual place of a
// boot loader), as is GPT's backup table at the end of the image.
std::vector<layout_gap> check_layout(const TSK_VS_INFO& vs, std::vector<volume_plan>& volumes, std::uint64_t image_size,
                                     walk_sink& sink);

}  // namespace borderscan::scanner::detail
