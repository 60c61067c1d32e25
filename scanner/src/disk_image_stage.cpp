// The container stage for disk images held as files (a stick's backup.img, a
// raw disk inside an archive): libtsk walks the content like an image of its
// own, and every file it finds is a member, "/backup.img!/DCIM/a.jpg" (one
// volume) or "/disk.img!vol1/a.jpg" (partitioned).

#include <algorithm>
#include <memory>
#include <optional>
#include <vector>

#include "borderscan/scanner/archive.hpp"
#include "borderscan/scanner/error.hpp"
#include "borderscan/scanner/scratch.hpp"
#include "container_stages.hpp"
#include "tsk_image.hpp"
#include "virtual_disk.hpp"

namespace borderscan::scanner {
namespace {

// Relays libtsk's walk of an embedded image to the gate, under the image's path.
class embedded_walk final : public detail::walk_sink {
 public:
  embedded_walk(container& parent, detail::tsk_image& image, recursion_gate& gate)
      : parent_(parent), image_(image), gate_(gate) {}

  void run() {
    std::vector<detail::volume_plan> volumes = image_.discover_volumes(*this);
    const bool partitioned = volumes.size() > 1 || (volumes.size() == 1 && volumes.front().entry.scheme != "none");
    bool any_filesystem = false;
    for (auto& v : volumes) {
      any_filesystem = any_filesystem || v.fs_type != 0;
      volume_ = &v;
      prefix_ = partitioned ? "vol" + std::to_string(v.entry.index) : "";
      image_.walk(v, gate_.scan_limits(), *this);
    }
    if (!any_filesystem) {
      gate_.add_error({parent().path, parent().volume, "image", "embedded_image_no_filesystem",
                       "looks like a disk image, but no file system could be opened in it", false});
    }
  }

  void item(detail::walk_item&& item) override {
    if (item.entry.type == "raw") {
      // The head of a volume without a file system: the image file itself was
      // scanned whole. What the walk found about the volume (encrypted) stays,
      // on the image file.
      for (finding& f : item.entry.findings) {
        f.meta["embedded_volume"] = prefix_.empty() ? "whole image" : prefix_;
        f.path = parent().path;
        f.volume = parent().volume;
        parent_.entry().findings.push_back(std::move(f));
      }
      return;
    }
    file_entry child = std::move(item.entry);
    child.path = prefix_ + child.path;
    if (!item.content) {
      gate_.list(parent_, std::move(child));
      return;
    }
    detail::tsk_content content(image_, *volume_, *item.content);
    gate_.recurse(parent_, std::move(child), content);
  }

  void error(error_entry&& e) override {
    e.path = e.path.empty() ? parent().path : parent().path + "!" + e.path;
    e.volume = parent().volume;
    // A file that merely looks like a disk image was still scanned whole as a file.
    e.affects_verdict = e.affects_verdict && !parent().deleted && e.code != "no_filesystem";
    gate_.add_error(std::move(e));
  }

  void warning(std::string&& w) override {
    gate_.add_error({parent().path, parent().volume, "image", "embedded_image_warning", std::move(w), false});
  }

  void limit(limit_hit&& l) override {
    l.path = parent().path + "!" + l.path;
    l.volume = parent().volume;
    gate_.add_limit(std::move(l));
  }

  bool stop() override { return !gate_.more(parent_); }

 private:
  const file_entry& parent() const { return parent_.entry(); }

  container& parent_;
  detail::tsk_image& image_;
  recursion_gate& gate_;
  detail::volume_plan* volume_ = nullptr;  // the volume being walked
  std::string prefix_;                     // its name in member paths ("vol1"), empty when unpartitioned
};

class disk_image_stage_impl final : public container_stage {
 public:
  std::string_view name() const override { return "image"; }
  member_bytes yields() const override { return member_bytes::stored; }
  bool claims(const file_entry& entry) const override { return is_disk_image(entry); }
  void expand(container& parent, content_source& source, recursion_gate& gate) const override {
    std::unique_ptr<detail::tsk_image> image;
    try {
      image = std::make_unique<detail::tsk_image>(source);
    } catch (const scan_error& e) {
      gate.add_error(
          {parent.entry().path, parent.entry().volume, "image", "embedded_image_unreadable", e.what(), false});
      return;
    }
    embedded_walk(parent, *image, gate).run();
  }
  std::string bomb_description(std::uint32_t max_ratio) const override {
    return "the embedded image's files add up to more than " + std::to_string(max_ratio) + " times its size";
  }
};

// Virtual-disk containers held as files (an E01, a qcow2, a VHD/VHDX or a
// VMDK on a stick): spooled to the scan's scratch space, opened with their
// libyal library and walked like an embedded raw image. One that cannot be
// opened is an error on its path, so the verdict is never a silent clean.
constexpr std::string_view virtual_disk_descriptions[] = {
    "EWF/Expert Witness/EnCase image",
    "QEMU QCOW",
    "Microsoft Disk Image eXtended",
    "Microsoft Disk Image, Virtual Server or Virtual PC",
    "VMware4 disk image",
    "VirtualBox Disk Image",
};

bool names_virtual_disk(const file_entry& entry) {
  return entry.type == "regular" &&
         std::any_of(std::begin(virtual_disk_descriptions), std::end(virtual_disk_descriptions),
                     [&](std::string_view d) { return std::string_view(entry.description).starts_with(d); });
}

// The member's bytes in a scratch file; null when the scan stopped meanwhile.
std::unique_ptr<scratch_space::file> spool(container& parent, content_source& source, recursion_gate& gate,
                                           scratch_space& scratch) {
  const std::string& path = parent.entry().path;
  auto file = scratch.create(path.substr(path.find_last_of("/!") + 1));
  std::vector<std::byte> buf(1 << 20);
  for (std::uint64_t offset = 0;;) {
    if (!gate.more(parent)) {
      return nullptr;
    }
    const std::size_t n = source.read_at(offset, buf);
    if (n == 0) {
      break;
    }
    file->append(std::span(buf).first(n));
    offset += n;
  }
  return file;
}

class virtual_disk_stage_impl final : public container_stage {
 public:
  std::string_view name() const override { return "image"; }
  member_bytes yields() const override { return member_bytes::stored; }
  bool claims(const file_entry& entry) const override { return names_virtual_disk(entry); }
  void expand(container& parent, content_source& source, recursion_gate& gate) const override {
    const file_entry& e = parent.entry();
    auto not_opened = [&](const std::string& why) {
      gate.add_error({e.path, e.volume, "image", "embedded_image_not_opened",
                      e.description.substr(0, e.description.find(',')) + " inside the device, not opened: " + why,
                      !e.deleted});
    };
    scratch_space* scratch = gate.scratch();
    if (scratch == nullptr) {
      not_opened("this scan has no scratch folder to spool it to");
      return;
    }
    std::unique_ptr<scratch_space::file> copy;
    std::optional<detail::disk_container> format;
    std::unique_ptr<detail::virtual_disk> disk;
    try {
      copy = spool(parent, source, gate, *scratch);
      if (!copy) {
        return;  // the scan is stopping; the stop is recorded by the scan
      }
      format = detail::sniff_container(copy->path());
      if (!format) {
        not_opened("libmagic names the format, but the file does not carry its signature");
        return;
      }
      if (!detail::can_open(*format)) {
        not_opened(std::string(detail::container_description(*format)) + " is not read by this scanner");
        return;
      }
      disk = std::make_unique<detail::virtual_disk>(*format, std::vector<std::filesystem::path>{copy->path()});
    } catch (const scan_error& err) {
      not_opened(err.what());
      return;
    }
    std::unique_ptr<detail::tsk_image> image;
    try {
      image = std::make_unique<detail::tsk_image>(*disk);
    } catch (const scan_error& err) {
      gate.add_error({e.path, e.volume, "image", "embedded_image_unreadable", err.what(), !e.deleted});
      return;
    }
    embedded_walk(parent, *image, gate).run();
  }
  std::string bomb_description(std::uint32_t max_ratio) const override {
    return "the virtual disk's files add up to more than " + std::to_string(max_ratio) + " times its size";
  }
};

}  // namespace

const container_stage& detail::virtual_disk_stage() {
  static const virtual_disk_stage_impl stage;
  return stage;
}

bool is_disk_image(const file_entry& entry) {
  // Raw volume heads are already the inside of an image; tiny boot-sector
  // files (NTFS $Boot, saved MBRs) hold no file system worth walking.
  if (entry.type != "regular" || entry.mime != "application/octet-stream" || entry.size.value_or(0) < (64 << 10)) {
    return false;
  }
  const std::string_view d = entry.description;
  return d.starts_with("DOS/MBR boot sector") || d.starts_with("Apple HFS") ||
         d.find("filesystem data") != std::string_view::npos;
}

const container_stage& detail::disk_image_stage() {
  static const disk_image_stage_impl stage;
  return stage;
}

}  // namespace borderscan::scanner
