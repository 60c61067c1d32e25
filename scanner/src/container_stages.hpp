#pragma once
// The container stages a scan opens (default_container_stages lists them) and
// what they share.

#include <string>
#include <vector>

#include "borderscan/scanner/recursion_gate.hpp"
#include "borderscan/scanner/report.hpp"

namespace borderscan::scanner::detail {

// libarchive: archives, compressed single streams, ZIP documents (archive.cpp).
const container_stage& archive_stage();
// libtsk over the content of a file that looks like a disk image (disk_image_stage.cpp).
const container_stage& disk_image_stage();
// Virtual-disk files (E01, qcow, VHD, VHDX, VMDK) inside the device, spooled
// and opened with libyal; VDI and unreadable ones an error (disk_image_stage.cpp).
const container_stage& virtual_disk_stage();

// A finding about a container itself (archive_bomb, encrypted_archive).
finding container_finding(const file_entry& parent, const std::string& rule, severity level, nlohmann::json meta,
                          std::vector<std::string> tags);

}  // namespace borderscan::scanner::detail
