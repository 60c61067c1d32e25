// The container stage for disk images held as files (a stick's backup.img, a
// raw disk inside an archive): libtsk walks the content like an image of its
// own, and every file it finds is a member, "/backup.img!/DCIM/a.jpg" (one
// volume) or "/disk.img!vol1/a.jpg" (partitioned).

#include <memory>

#include "borderscan/scanner/archive.hpp"
#include "borderscan/scanner/error.hpp"
#include "container_stages.hpp"
#include "tsk_image.hpp"

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

// Virtual-disk formats libmagic names but the walk does not open when they
// are files inside the device (the top-level image opens through libewf,
// libvhdi and qemu's formats only as the uploaded image itself): an error on
// the path, so that the verdict is incomplete, never a silent clean.
struct unopened_format {
  std::string_view description_prefix;
  std::string_view name;
};
constexpr unopened_format unopened_formats[] = {
    {"EWF/Expert Witness/EnCase image", "an E01 (EWF) forensic image"},
    {"QEMU QCOW", "a QEMU qcow disk image"},
    {"Microsoft Disk Image eXtended", "a VHDX disk image"},
    {"Microsoft Disk Image, Virtual Server or Virtual PC", "a VHD disk image"},
    {"VMware4 disk image", "a VMDK disk image"},
    {"VirtualBox Disk Image", "a VirtualBox VDI disk image"},
};

const unopened_format* unopened_format_of(const file_entry& entry) {
  if (entry.type != "regular") {
    return nullptr;
  }
  for (const auto& f : unopened_formats) {
    if (std::string_view(entry.description).starts_with(f.description_prefix)) {
      return &f;
    }
  }
  return nullptr;
}

class unopened_image_stage_impl final : public container_stage {
 public:
  std::string_view name() const override { return "image"; }
  member_bytes yields() const override { return member_bytes::stored; }
  bool claims(const file_entry& entry) const override { return unopened_format_of(entry) != nullptr; }
  void expand(container& parent, content_source&, recursion_gate& gate) const override {
    const file_entry& e = parent.entry();
    gate.add_error({e.path, e.volume, "image", "embedded_image_not_opened",
                    std::string(unopened_format_of(e)->name) +
                        " inside the device: recognised, but the files in it are not opened by this scanner; "
                        "scan it on its own (borderscan scan FILE) to see them",
                    !e.deleted});
  }
};

}  // namespace

const container_stage& detail::unopened_image_stage() {
  static const unopened_image_stage_impl stage;
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
