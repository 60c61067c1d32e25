#include "tsk_image.hpp"

#include <tsk/libtsk.h>

#include <algorithm>
#include <cstring>
#include <map>

#include "borderscan/scanner/error.hpp"
#include "borderscan/scanner/text.hpp"
#include "c_handle.hpp"
#include "encrypted_volume.hpp"
#include "volume_layout.hpp"

namespace borderscan::scanner::detail {
namespace {

using img_ptr = std::unique_ptr<TSK_IMG_INFO, c_deleter<&tsk_img_close>>;
using vs_ptr = std::unique_ptr<TSK_VS_INFO, c_deleter<&tsk_vs_close>>;
using fs_ptr = std::unique_ptr<TSK_FS_INFO, c_deleter<&tsk_fs_close>>;
using fs_file_ptr = std::unique_ptr<TSK_FS_FILE, c_deleter<&tsk_fs_file_close>>;
using fs_dir_ptr = std::unique_ptr<TSK_FS_DIR, c_deleter<&tsk_fs_dir_close>>;
using pool_ptr = std::unique_ptr<const TSK_POOL_INFO, c_deleter<&tsk_pool_close>>;

std::string tsk_reason() {
  const char* s = tsk_error_get();  // errno text plus detail
  std::string out = (s != nullptr && *s != '\0') ? s : "unknown libtsk error";
  // libtsk messages end with newlines and may carry raw bytes from the image.
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) {
    out.pop_back();
  }
  std::replace(out.begin(), out.end(), '\n', ' ');
  return escape_name(out);
}

std::string filesystem_name(TSK_FS_TYPE_ENUM t) {
  if (TSK_FS_TYPE_ISHFS(t)) {
    return "hfs+";  // libtsk reads HFS+ and HFSX only
  }
  const char* n = tsk_fs_type_toname(t);
  return n != nullptr ? n : "unknown";
}

// $BadClus is MFT entry 8 on every NTFS volume.
constexpr std::uint64_t NTFS_BADCLUS_INODE = 8;

std::optional<std::int64_t> known_time(std::int64_t t) {
  return t != 0 ? std::optional<std::int64_t>(t) : std::nullopt;
}

class fs_stream_source final : public content_source {
 public:
  // attr belongs to file.
  fs_stream_source(fs_file_ptr file, const TSK_FS_ATTR* attr) : file_(std::move(file)), attr_(attr) {}
  std::uint64_t size() const override { return attr_ != nullptr ? static_cast<std::uint64_t>(attr_->size) : 0; }
  std::size_t read_at(std::uint64_t offset, std::span<std::byte> out) override {
    if (attr_ == nullptr || offset >= size() || out.empty()) {
      return 0;
    }
    tsk_error_reset();
    const ssize_t n = tsk_fs_attr_read(attr_, static_cast<TSK_OFF_T>(offset), reinterpret_cast<char*>(out.data()),
                                       out.size(), TSK_FS_FILE_READ_FLAG_NONE);
    if (n < 0) {
      throw scan_error(scan_errc::read_failed, tsk_reason());
    }
    return static_cast<std::size_t>(n);
  }

 private:
  fs_file_ptr file_;
  const TSK_FS_ATTR* attr_;
};

class volume_head_source final : public content_source {
 public:
  volume_head_source(TSK_IMG_INFO* img, std::uint64_t offset, std::uint64_t length)
      : img_(img), offset_(offset), length_(length) {}
  std::uint64_t size() const override { return length_; }
  std::size_t read_at(std::uint64_t offset, std::span<std::byte> out) override {
    if (offset >= length_) {
      return 0;
    }
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(out.size(), length_ - offset));
    tsk_error_reset();
    const ssize_t n =
        tsk_img_read(img_, static_cast<TSK_OFF_T>(offset_ + offset), reinterpret_cast<char*>(out.data()), want);
    if (n < 0) {
      throw scan_error(scan_errc::read_failed, tsk_reason());
    }
    return static_cast<std::size_t>(n);
  }

 private:
  TSK_IMG_INFO* img_;
  std::uint64_t offset_, length_;
};

struct dir_key {
  TSK_INUM_T inode;
  std::optional<TSK_DADDR_T> first_block;
};

struct ancestor {
  dir_key key;
  std::string path;
};

// The walk over one file system, with loop protection by inode and by the
// first data block (FAT directory "inodes" are entry slots, so two entries can
// name the same cluster with different inodes).
class fs_walker {
 public:
  fs_walker(TSK_FS_INFO* fs, volume_plan& volume, const limits& lim, walk_sink& sink)
      : fs_(fs), volume_(volume), lim_(lim), sink_(sink) {}

  void run() {
    std::vector<ancestor> ancestors;
    ancestors.push_back({{fs_->root_inum, std::nullopt}, "/"});
    if (const fs_file_ptr root(tsk_fs_file_open_meta(fs_, nullptr, fs_->root_inum)); root && root->meta != nullptr) {
      if (!plausible_directory(root->meta, "/")) {
        return;
      }
    }
    tsk_error_reset();
    walk_dir(fs_->root_inum, "", ancestors);
    if (!saw_orphan_dir_ && !stopped_ && orphan_search_allowed("/$OrphanFiles")) {
      // Some file systems do not list the virtual orphan folder in the root.
      walk_dir(TSK_FS_ORPHANDIR_INUM(fs_), "/$OrphanFiles", ancestors, /*quiet=*/true);
    }
  }

 private:
  void error(const std::string& path, const std::string& code, std::string message, bool affects) {
    error_entry e;
    e.path = path;
    e.volume = volume_.entry.index;
    e.stage = "walk";
    e.code = code;
    e.message = std::move(message);
    e.affects_verdict = affects;
    sink_.error(std::move(e));
  }

  bool should_stop() {
    if (stopped_) {
      return true;
    }
    if (sink_.stop()) {
      stopped_ = true;
    }
    return stopped_;
  }

  // libtsk reads a directory as long as its metadata says, building its
  // block list one block at a time (quadratic): a crafted inode claiming
  // gigabytes in a tiny file system costs minutes and gigabytes of memory.
  // A directory cannot hold more than its whole file system, so one that
  // claims to is listed as an error and not read.
  bool plausible_directory(const TSK_FS_META* meta, const std::string& path) {
    const std::uint64_t cap = bytes_present();
    if (meta->size <= 0 || cap == 0 || static_cast<std::uint64_t>(meta->size) <= cap ||
        meta->type == TSK_FS_META_TYPE_VIRT_DIR) {
      return true;
    }
    implausible_directory_ = path;
    error(path, "directory_implausible",
          "directory claims " + std::to_string(meta->size) + " bytes, more than its whole file system (" +
              std::to_string(cap) + " bytes present); not listed",
          true);
    return false;
  }

  // ext2/3 and UFS list a file's blocks pointer by pointer, and libtsk builds
  // its block list one pointer at a time for the whole claimed size: crafted
  // indirect blocks make that quadratic. A sparse file may be bigger than its
  // volume, but not one mapped that way on a device that holds so little.
  // Extents (ext4) and run lists (NTFS) are compact and read as usual.
  bool block_pointers_past_the_volume(const TSK_FS_META* meta) const {
    if (!TSK_FS_TYPE_ISEXT(fs_->ftype) && !TSK_FS_TYPE_ISFFS(fs_->ftype)) {
      return false;
    }
    const std::uint64_t cap = bytes_present();
    return meta->content_type == TSK_FS_META_CONTENT_TYPE_DEFAULT && meta->size > 0 && cap > 0 &&
           static_cast<std::uint64_t>(meta->size) > cap;
  }

  // The file system's bytes present in the image: no directory holds more,
  // and no file mapped block by block.
  std::uint64_t bytes_present() const {
    const std::uint64_t blocks = std::min<std::uint64_t>(fs_->block_count, fs_->last_block_act + 1);
    return blocks * fs_->block_size;
  }

  // libtsk's search for orphan files reads every directory of the file system
  // again, unallocated directory inodes too, whatever size they claim: it is
  // skipped, and said so, when one of them is implausible.
  bool orphan_search_allowed(const std::string& path) {
    std::string why;
    if (!implausible_directory_.empty()) {
      why = "directory " + implausible_directory_ + " claims more bytes than the file system holds";
    } else {
      why = implausible_unallocated_inode();
    }
    if (why.empty()) {
      return true;
    }
    error(path, "orphan_search_skipped", "deleted files without a name not searched: " + why, true);
    return false;
  }

  // ext2/3/4 and UFS keep a directory's size in its inode, where the orphan
  // search trusts it. Their inode tables are a small part of the volume, so
  // reading the unallocated inodes once more is cheap; FAT's "inodes" are
  // directory entries all over the volume, and its sizes come from the FAT.
  std::string implausible_unallocated_inode() {
    if (!TSK_FS_TYPE_ISEXT(fs_->ftype) && !TSK_FS_TYPE_ISFFS(fs_->ftype)) {
      return {};
    }
    struct finding {
      std::uint64_t cap = 0;
      std::uint64_t inline_cap = 0;
      std::string what;
    } found{bytes_present(), fs_->block_size, {}};
    const auto check = [](TSK_FS_FILE* file, void* ptr) -> TSK_WALK_RET_ENUM {
      auto& f = *static_cast<finding*>(ptr);
      const TSK_FS_META* m = file->meta;
      if (m == nullptr || m->size <= 0) {
        return TSK_WALK_CONT;
      }
      const auto size = static_cast<std::uint64_t>(m->size);
      if (TSK_FS_IS_DIR_META(m->type) && size > f.cap) {
        f.what = "unallocated directory inode " + std::to_string(m->addr) + " claims " + std::to_string(size) +
                 " bytes, more than the file system holds (" + std::to_string(f.cap) + " bytes present)";
      } else if (m->content_type == TSK_FS_META_CONTENT_TYPE_EXT4_INLINE && size > f.inline_cap) {
        // libtsk allocates the claimed size for every such inode and holds it
        // until the file system is closed; inline data fits in the inode.
        f.what = "unallocated inode " + std::to_string(m->addr) + " claims " + std::to_string(size) +
                 " bytes of inline data, more than a block (" + std::to_string(f.inline_cap) + " bytes)";
      } else {
        return TSK_WALK_CONT;
      }
      return TSK_WALK_STOP;
    };
    tsk_error_reset();
    if (tsk_fs_meta_walk(fs_, fs_->first_inum, TSK_FS_ORPHANDIR_INUM(fs_) - 1, TSK_FS_META_FLAG_UNALLOC, check,
                         &found) != 0) {
      const std::string reason = tsk_reason();
      tsk_error_reset();
      return "the unallocated inodes cannot be read: " + reason;
    }
    return found.what;
  }

  bool count_entry(const std::string& path) {
    if (++entries_ > lim_.max_files) {
      sink_.limit({"max_files", std::to_string(lim_.max_files), path, volume_.entry.index});
      stopped_ = true;
      return false;
    }
    return true;
  }

  static dir_key key_of(TSK_FS_FILE* f) {
    dir_key key{f->meta != nullptr ? f->meta->addr : f->name->meta_addr, std::nullopt};
    const TSK_FS_ATTR* attr = tsk_fs_file_attr_get(f);
    if (attr != nullptr && (attr->flags & TSK_FS_ATTR_NONRES) && attr->nrd.run != nullptr &&
        !(attr->nrd.run->flags & (TSK_FS_ATTR_RUN_FLAG_SPARSE | TSK_FS_ATTR_RUN_FLAG_FILLER))) {
      key.first_block = attr->nrd.run->addr;
    }
    tsk_error_reset();
    return key;
  }

  void walk_dir(TSK_INUM_T addr, const std::string& path, std::vector<ancestor>& ancestors, bool quiet = false) {
    if (should_stop()) {
      return;
    }
    tsk_error_reset();
    const fs_dir_ptr dir(tsk_fs_dir_open_meta(fs_, addr));
    if (!dir) {
      if (!quiet) {
        const bool deleted_dir = ancestors.size() > 1 && deleted_stack_;
        error(path.empty() ? "/" : path, "directory_unreadable", "cannot list directory: " + tsk_reason(),
              !deleted_dir);
      }
      return;
    }
    const std::size_t count = tsk_fs_dir_getsize(dir.get());
    for (std::size_t i = 0; i < count && !should_stop(); ++i) {
      const fs_file_ptr f(tsk_fs_dir_get(dir.get(), i));
      if (!f) {
        error(path.empty() ? "/" : path, "entry_unreadable", "cannot read directory entry: " + tsk_reason(), true);
        continue;
      }
      // tsk_fs_dir_get drops the metadata of a deleted NTFS name whose MFT
      // sequence moved on; load it by address, as fls does, so deleted files
      // keep their size and content.
      TSK_FS_FILE* meta_file = f.get();
      fs_file_ptr loaded;
      if (f->meta == nullptr && f->name != nullptr &&
          (f->name->meta_addr != 0 || (f->name->flags & TSK_FS_NAME_FLAG_ALLOC))) {
        loaded.reset(tsk_fs_file_open_meta(fs_, nullptr, f->name->meta_addr));
        tsk_error_reset();
        meta_file = loaded.get();
      }
      visit(f->name, meta_file != nullptr && meta_file->meta != nullptr ? meta_file : nullptr, path, ancestors);
    }
  }

  // nm: the directory entry; f: the file with its metadata loaded, or null.
  void visit(const TSK_FS_NAME* nm, TSK_FS_FILE* f, const std::string& parent, std::vector<ancestor>& ancestors) {
    if (nm == nullptr || nm->name == nullptr) {
      return;
    }
    const std::string_view raw(nm->name);
    if (raw == "." || raw == "..") {
      return;
    }
    const TSK_FS_META* meta = f != nullptr ? f->meta : nullptr;
    const bool is_virtual =
        nm->type == TSK_FS_NAME_TYPE_VIRT || (meta != nullptr && meta->type == TSK_FS_META_TYPE_VIRT);
    if (take_label(nm, raw) || is_virtual) {
      return;  // is_virtual: TSK-made views of file-system areas ($MBR, $FAT1, ...)
    }
    const std::string path = parent + "/" + escape_name(raw);
    if (!count_entry(path)) {
      return;
    }
    const bool is_dir = meta != nullptr ? TSK_FS_IS_DIR_META(meta->type) : TSK_FS_IS_DIR_NAME(nm->type);
    if (meta != nullptr && meta->type == TSK_FS_META_TYPE_VIRT_DIR && raw == "$OrphanFiles") {
      saw_orphan_dir_ = true;
    }
    file_entry e = entry_of(nm, meta, path, is_dir);
    if (is_dir) {
      visit_dir(nm, f, std::move(e), ancestors);
      return;
    }
    if (meta == nullptr) {
      e.skipped = "name only: the entry points to no readable metadata (inode " + std::to_string(nm->meta_addr) + ")";
      if (!e.deleted) {
        error(path, "metadata_unreadable", "allocated name without readable metadata", true);
      }
      sink_.item({std::move(e), std::nullopt});
      return;
    }
    if (e.type != "regular" && e.type != "symlink") {
      sink_.item({std::move(e), std::nullopt});  // devices, sockets, fifos: nothing to read
      return;
    }
    if (block_pointers_past_the_volume(meta)) {
      const std::string why = "file claims " + std::to_string(meta->size) +
                              " bytes in block pointers, more than its file system holds (" +
                              std::to_string(bytes_present()) + " bytes present); content not read";
      error(path, "file_implausible", why, true);
      e.skipped = why;
      sink_.item({std::move(e), std::nullopt});
      return;
    }
    emit_streams(f, std::move(e));
  }

  // The FAT/exFAT volume label is a directory entry, not a file: it names the
  // volume. Returns whether `raw` was the label.
  bool take_label(const TSK_FS_NAME* nm, std::string_view raw) {
    constexpr std::string_view label_suffix = " (Volume Label Entry)";
    if (!raw.ends_with(label_suffix) || (nm->flags & TSK_FS_NAME_FLAG_UNALLOC)) {
      return false;
    }
    std::string_view label = raw.substr(0, raw.size() - label_suffix.size());
    while (!label.empty() && label.back() == ' ') {
      label.remove_suffix(1);
    }
    if (!volume_.entry.label) {
      volume_.entry.label = escape_name(label);
    }
    return true;
  }

  // The report entry of a name and its metadata (null when unreadable).
  file_entry entry_of(const TSK_FS_NAME* nm, const TSK_FS_META* meta, const std::string& path, bool is_dir) const {
    file_entry e;
    e.path = path;
    e.volume = volume_.entry.index;
    e.inode = meta != nullptr ? meta->addr : nm->meta_addr;
    e.deleted = (nm->flags & TSK_FS_NAME_FLAG_UNALLOC) ||
                (meta != nullptr && (meta->flags & TSK_FS_META_FLAG_UNALLOC)) || deleted_stack_;
    if (meta != nullptr) {
      e.size = static_cast<std::uint64_t>(std::max<TSK_OFF_T>(meta->size, 0));
      e.times.mtime = known_time(meta->mtime);
      e.times.atime = known_time(meta->atime);
      e.times.ctime = known_time(meta->ctime);
      e.times.crtime = known_time(meta->crtime);
    }
    if (is_dir) {
      e.type = "directory";
    } else if ((meta != nullptr && meta->type == TSK_FS_META_TYPE_LNK) || nm->type == TSK_FS_NAME_TYPE_LNK) {
      e.type = "symlink";
    } else if ((meta != nullptr && meta->type == TSK_FS_META_TYPE_REG) || nm->type == TSK_FS_NAME_TYPE_REG ||
               (meta == nullptr && nm->type == TSK_FS_NAME_TYPE_UNDEF)) {
      e.type = "regular";
    } else {
      e.type = "other";
    }
    return e;
  }

  void visit_dir(const TSK_FS_NAME* nm, TSK_FS_FILE* f, file_entry&& e, std::vector<ancestor>& ancestors) {
    const TSK_FS_META* meta = f != nullptr ? f->meta : nullptr;
    const std::string path = e.path;
    const bool was_deleted = deleted_stack_;
    const bool deleted_here = e.deleted;
    sink_.item({std::move(e), std::nullopt});
    // A deleted name whose metadata now belongs to another directory would
    // list that directory's children under the wrong path: libtsk skips it too.
    const bool name_alloc = nm->flags & TSK_FS_NAME_FLAG_ALLOC;
    const bool meta_unalloc = meta != nullptr && (meta->flags & TSK_FS_META_FLAG_UNALLOC);
    if (meta != nullptr && (name_alloc || meta_unalloc)) {
      descend(f, path, deleted_here, ancestors);
    } else if (meta != nullptr) {
      sink_.warning("deleted directory " + path + " (volume " + std::to_string(volume_.entry.index) +
                    ") points to metadata now used by another directory; not descended");
    }
    deleted_stack_ = was_deleted;
  }

  // A file's data streams: the default one, and named ones with the suffix
  // that names them (":name" for NTFS, ":rsrc" for an HFS+ resource fork).
  struct file_streams {
    std::optional<std::uint16_t> default_id;
    std::vector<std::pair<std::string, const TSK_FS_ATTR*>> named;
  };

  static file_streams streams_of(TSK_FS_FILE* f) {
    file_streams out;
    tsk_error_reset();
    const int n = tsk_fs_file_attr_getsize(f);
    bool typed = false;
    for (int k = 0; k < n; ++k) {
      const TSK_FS_ATTR* attr = tsk_fs_file_attr_get_idx(f, k);
      if (attr == nullptr) {
        continue;
      }
      if (attr->type == TSK_FS_ATTR_TYPE_NTFS_DATA) {
        typed = true;
        const char* an = attr->name;
        if (an == nullptr || *an == '\0' || std::strcmp(an, "$Data") == 0) {
          out.default_id = attr->id;
        } else {
          out.named.emplace_back(":" + escape_name(an), attr);
        }
      } else if (attr->type == TSK_FS_ATTR_TYPE_HFS_DATA) {
        typed = true;
        out.default_id = attr->id;
      } else if (attr->type == TSK_FS_ATTR_TYPE_HFS_RSRC) {
        typed = true;
        out.named.emplace_back(":rsrc", attr);
      }
    }
    if (!typed) {
      if (const TSK_FS_ATTR* attr = tsk_fs_file_attr_get(f)) {
        out.default_id = attr->id;
      }
    }
    tsk_error_reset();
    return out;
  }

  // One item per data stream: the default one keeps the path, named streams
  // get their suffix.
  void emit_streams(TSK_FS_FILE* f, file_entry e) {
    const file_streams streams = streams_of(f);
    const std::uint64_t inode = e.inode.value_or(0);
    for (const auto& [suffix, attr] : streams.named) {
      file_entry s = e;
      s.path += suffix;
      s.size = static_cast<std::uint64_t>(std::max<TSK_OFF_T>(attr->size, 0));
      if (!count_entry(s.path)) {
        return;
      }
      if (TSK_FS_TYPE_ISNTFS(fs_->ftype) && inode == NTFS_BADCLUS_INODE && suffix == ":$Bad") {
        // A sparse stream as large as the volume that maps bad clusters: no content of its own.
        s.skipped = "NTFS bad-cluster map: sparse, volume-sized, no file content";
        sink_.item({std::move(s), std::nullopt});
        continue;
      }
      sink_.item({std::move(s), content_ref{content_ref::kind::file_stream, inode, attr->id, 0}});
    }
    sink_.item({std::move(e), content_ref{content_ref::kind::file_stream, inode, streams.default_id, 0}});
  }

  // A loop means a corrupt or crafted file system: everything reachable is
  // listed, but the tree is not what a sound volume would hold, so the scan
  // is not reported as clean.
  void report_loop(const std::string& path, const std::string& target) {
    const std::string msg = "directory loop: " + path + " leads back to " + target + "; not descended again";
    sink_.warning("volume " + std::to_string(volume_.entry.index) + ": " + msg);
    error(path, "directory_loop", msg, true);
  }

  void descend(TSK_FS_FILE* f, const std::string& path, bool deleted, std::vector<ancestor>& ancestors) {
    if (!plausible_directory(f->meta, path)) {
      return;
    }
    if (f->meta->addr == TSK_FS_ORPHANDIR_INUM(fs_) && !orphan_search_allowed(path)) {
      return;
    }
    const dir_key key = key_of(f);
    for (const auto& a : ancestors) {
      const bool same_inode = a.key.inode == key.inode;
      const bool same_block = a.key.first_block && key.first_block && *a.key.first_block == *key.first_block;
      if (same_inode || same_block) {
        report_loop(path, a.path);
        return;
      }
    }
    if (ancestors.size() > lim_.max_directory_depth) {
      sink_.limit({"max_directory_depth", std::to_string(lim_.max_directory_depth), path, volume_.entry.index});
      return;
    }
    if (ancestors.size() == 1 && ancestors.front().key.first_block == std::nullopt) {
      // Learn the root's first block lazily, so entries pointing at it are caught.
      if (const fs_file_ptr root(tsk_fs_file_open_meta(fs_, nullptr, fs_->root_inum)); root) {
        ancestors.front().key = key_of(root.get());
      }
      tsk_error_reset();
      for (const auto& a : ancestors) {
        if (a.key.first_block && key.first_block && *a.key.first_block == *key.first_block) {
          report_loop(path, "/");
          return;
        }
      }
    }
    deleted_stack_ = deleted;
    ancestors.push_back({key, path});
    walk_dir(key.inode, path, ancestors);
    ancestors.pop_back();
  }

  TSK_FS_INFO* fs_;
  volume_plan& volume_;
  const limits& lim_;
  walk_sink& sink_;
  std::uint64_t entries_ = 0;
  bool stopped_ = false;
  bool saw_orphan_dir_ = false;
  std::string implausible_directory_;  // the first directory bigger than its file system
  bool deleted_stack_ = false;         // inside a deleted directory: everything below is deleted too
};

std::string scheme_name(const TSK_VS_INFO& vs) {
  const char* n = tsk_vs_type_toname(vs.vstype);
  const std::string scheme = n != nullptr ? n : "unknown";
  return scheme == "dos" ? "mbr" : scheme;
}

// One allocated partition of a volume system, before its file system is opened.
volume_plan partition_plan(const TSK_VS_INFO& vs, const TSK_VS_PART_INFO& part, std::uint32_t index,
                           const std::string& scheme, std::uint64_t image_size, walk_sink& sink) {
  volume_plan plan;
  plan.entry.index = index;
  plan.entry.scheme = scheme;
  plan.entry.description = escape_name(part.desc != nullptr ? part.desc : "");
  const std::uint64_t bs = vs.block_size;
  // Table values are untrusted: saturate at what JSON readers take as a signed 64-bit number.
  constexpr std::uint64_t max_bytes = INT64_MAX;
  plan.entry.offset = part.start > max_bytes / bs ? max_bytes : part.start * bs;
  plan.entry.length = part.len > max_bytes / bs ? max_bytes : part.len * bs;
  if (plan.entry.offset < image_size && plan.entry.length > image_size - plan.entry.offset) {
    const std::uint64_t missing = plan.entry.length - (image_size - plan.entry.offset);
    plan.entry.notes.push_back("partition extends " + std::to_string(missing) + " bytes past the end of the image");
    sink.warning("volume " + std::to_string(plan.entry.index) + ": partition extends past the end of the image");
  }
  return plan;
}

// Whether the `length` bytes at `offset` read as zeros (a read failure ends the look).
bool all_zero(TSK_IMG_INFO& img, std::uint64_t offset, std::uint64_t length) {
  std::vector<char> buf(static_cast<std::size_t>(std::min<std::uint64_t>(length, 1 << 20)));
  bool zero = true;
  for (std::uint64_t off = 0; off < length && zero;) {
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), length - off));
    const ssize_t n = tsk_img_read(&img, static_cast<TSK_OFF_T>(offset + off), buf.data(), want);
    if (n <= 0) {
      break;
    }
    zero = std::all_of(buf.begin(), buf.begin() + n, [](char c) { return c == 0; });
    off += static_cast<std::uint64_t>(n);
  }
  tsk_error_reset();
  return zero;
}

}  // namespace

struct tsk_image::handles {
  img_ptr img;
  std::map<std::uint64_t, pool_ptr> apfs;        // APFS containers by offset
  std::map<std::uint32_t, img_ptr> apfs_images;  // per APFS volume: libtsk reads it through its pool
  std::map<std::uint32_t, fs_ptr> fs;            // closed first

  const TSK_POOL_INFO* apfs_at(std::uint64_t offset) {
    auto& pool = apfs[offset];
    if (!pool) {
      tsk_error_reset();
      pool.reset(tsk_pool_open_img_sing(img.get(), static_cast<TSK_OFF_T>(offset), TSK_POOL_TYPE_APFS));
    }
    return pool.get();
  }

  // The file system of the APFS volume whose superblock is at `block` (as fls -P apfs -B does).
  fs_ptr open_apfs(std::uint32_t index, std::uint64_t offset, std::uint64_t block) {
    const TSK_POOL_INFO* pool = apfs_at(offset);
    if (pool == nullptr) {
      return nullptr;
    }
    tsk_error_reset();
    img_ptr& volume_img = apfs_images[index];
    if (!volume_img) {
      volume_img.reset(pool->get_img_info(pool, block));
    }
    return volume_img ? fs_ptr(tsk_fs_open_img(volume_img.get(), static_cast<TSK_OFF_T>(offset), TSK_FS_TYPE_APFS))
                      : nullptr;
  }
};

tsk_image::tsk_image(const std::vector<std::filesystem::path>& segments) : handles_(std::make_unique<handles>()) {
  std::vector<std::string> names;
  for (const auto& s : segments) {
    names.push_back(s.string());
  }
  std::vector<const char*> ptrs;
  for (const auto& n : names) {
    ptrs.push_back(n.c_str());
  }
  tsk_error_reset();
  handles_->img.reset(tsk_img_open_utf8(static_cast<int>(ptrs.size()), ptrs.data(), TSK_IMG_TYPE_DETECT, 0));
  if (!handles_->img) {
    throw scan_error(scan_errc::image_open_failed, "libtsk cannot open the image: " + tsk_reason());
  }
  if (handles_->img->size <= 0) {
    throw scan_error(scan_errc::image_empty, "image is empty (no partition table, no file system)");
  }
}

// libtsk's external image: TSK_IMG_INFO must be the first member.
struct tsk_image::external {
  TSK_IMG_INFO info;
  content_source* source;

  static ssize_t on_read(TSK_IMG_INFO* img, TSK_OFF_T offset, char* buf, size_t len) {
    auto* self = reinterpret_cast<external*>(img);
    try {
      std::size_t done = 0;
      while (done < len) {
        const std::size_t n = self->source->read_at(static_cast<std::uint64_t>(offset) + done,
                                                    std::span(reinterpret_cast<std::byte*>(buf) + done, len - done));
        if (n == 0) {
          break;
        }
        done += n;
      }
      return static_cast<ssize_t>(done);
    } catch (const std::exception& e) {
      // Never unwind through libtsk: report as a read error.
      tsk_error_reset();
      tsk_error_set_errno(TSK_ERR_IMG_READ);
      tsk_error_set_errstr("%s", e.what());
      return -1;
    }
  }
  static void on_close(TSK_IMG_INFO*) {}  // the C++ side owns this memory
  static void on_imgstat(TSK_IMG_INFO*, FILE*) {}
};

tsk_image::tsk_image(content_source& source)
    : external_(std::make_unique<external>()), handles_(std::make_unique<handles>()) {
  std::memset(&external_->info, 0, sizeof external_->info);
  external_->info.tag = TSK_IMG_INFO_TAG;
  external_->source = &source;
  tsk_error_reset();
  handles_->img.reset(tsk_img_open_external(external_.get(), static_cast<TSK_OFF_T>(source.size()), 512,
                                            &external::on_read, &external::on_close, &external::on_imgstat));
  if (!handles_->img) {
    throw scan_error(scan_errc::image_open_failed, "libtsk cannot open the embedded image: " + tsk_reason());
  }
}

tsk_image::tsk_image(std::unique_ptr<content_source> source) : tsk_image(*source) {
  owned_source_ = std::move(source);
}

tsk_image::~tsk_image() = default;

std::size_t tsk_image::read(std::uint64_t offset, std::span<std::byte> out) {
  if (offset >= size() || out.empty()) {
    return 0;
  }
  tsk_error_reset();
  const ssize_t n =
      tsk_img_read(handles_->img.get(), static_cast<TSK_OFF_T>(offset), reinterpret_cast<char*>(out.data()),
                   std::min<std::uint64_t>(out.size(), size() - offset));
  if (n < 0) {
    throw scan_error(scan_errc::read_failed,
                     "image read failed at offset " + std::to_string(offset) + ": " + tsk_reason());
  }
  return static_cast<std::size_t>(n);
}

std::uint64_t tsk_image::size() const {
  return static_cast<std::uint64_t>(handles_->img->size);
}

std::vector<std::filesystem::path> tsk_image::segments() const {
  std::vector<std::filesystem::path> out;
  const TSK_IMG_INFO* img = handles_->img.get();
  for (int i = 0; external_ == nullptr && i < img->num_img; ++i) {
    out.emplace_back(img->images[i]);
  }
  return out;
}

std::string tsk_image::format() const {
  const char* n = tsk_img_type_toname(handles_->img->itype);
  return n != nullptr ? n : "unknown";
}

std::vector<volume_plan> tsk_image::discover_volumes(walk_sink& sink) {
  std::vector<volume_plan> out;
  const std::uint64_t image_size = size();
  tsk_error_reset();
  if (const vs_ptr vs(tsk_vs_open(handles_->img.get(), 0, TSK_VS_TYPE_DETECT)); vs) {
    const std::string scheme = scheme_name(*vs);
    for (TSK_PNUM_T i = 0; i < vs->part_count; ++i) {
      const TSK_VS_PART_INFO* part = tsk_vs_part_get(vs.get(), i);
      if (part == nullptr || !(part->flags & TSK_VS_PART_FLAG_ALLOC)) {
        continue;
      }
      volume_plan plan = partition_plan(*vs, *part, static_cast<std::uint32_t>(out.size()), scheme, image_size, sink);
      open_filesystem(plan);
      if (plan.entry.filesystem || !add_apfs_volumes(plan, out)) {
        out.push_back(std::move(plan));
      }
    }
    if (!out.empty()) {
      gaps_ = check_layout(*vs, out, image_size, sink);
      return out;
    }
    sink.warning("partition table lists no allocated partition; scanning the whole image as one volume");
  }
  tsk_error_reset();
  volume_plan whole;
  whole.entry.index = 0;
  whole.entry.scheme = "none";
  whole.entry.offset = 0;
  whole.entry.length = image_size;
  whole.entry.description = "whole image";
  open_filesystem(whole);
  if (!whole.entry.filesystem && add_apfs_volumes(whole, out)) {
    return out;
  }
  if (!whole.entry.filesystem) {
    whole.entry.error = "no partition table and " + *whole.entry.error;
  }
  out.push_back(std::move(whole));
  return out;
}

// An APFS container is a pool of volumes sharing its space: each volume is a
// volume of the report (scheme "apfs", the container's offset and length),
// its file system opened through libtsk's pool API. An encrypted one is not
// opened; the walk then names it as encrypted (see list_raw_head).
bool tsk_image::add_apfs_volumes(const volume_plan& container, std::vector<volume_plan>& out) {
  const TSK_POOL_INFO* pool = handles_->apfs_at(container.entry.offset);
  if (pool == nullptr || pool->vol_list == nullptr) {  // a container without volumes stays listed as itself
    handles_->apfs.erase(container.entry.offset);
    tsk_error_reset();
    return false;
  }
  for (const TSK_POOL_VOLUME_INFO* vol = pool->vol_list; vol != nullptr; vol = vol->next) {
    volume_plan plan;
    plan.entry.index = static_cast<std::uint32_t>(out.size());
    plan.entry.scheme = "apfs";
    plan.entry.offset = container.entry.offset;
    plan.entry.length = container.entry.length;
    const std::string name = escape_name(vol->desc != nullptr ? vol->desc : "");
    plan.entry.description = "APFS volume " + name;
    plan.entry.notes.push_back("volume " + std::to_string(vol->index + 1) + " of " + std::to_string(pool->num_vols) +
                               " in the APFS container of " + container.entry.description + " (" +
                               std::to_string(pool->block_size) + "-byte blocks)");
    plan.apfs_block = vol->block;
    if (vol->flags & TSK_POOL_VOLUME_FLAG_ENCRYPTED) {
      volume_encryption enc;
      enc.type = "apfs";
      enc.detected_by = "apfs-volume-flag";
      enc.identifiers["name"] = name;
      if (vol->password_hint != nullptr && *vol->password_hint != '\0') {
        enc.identifiers["password_hint"] = escape_name(vol->password_hint);
      }
      plan.entry.encryption = std::move(enc);
      plan.entry.error = "encrypted APFS volume: not opened without a key";
    } else {
      if (fs_ptr fs = handles_->open_apfs(plan.entry.index, container.entry.offset, vol->block); fs) {
        plan.fs_type = fs->ftype;
        plan.entry.filesystem = filesystem_name(fs->ftype);
        handles_->fs[plan.entry.index] = std::move(fs);
      } else {
        plan.entry.error = "APFS volume cannot be opened: " + tsk_reason();
      }
    }
    out.push_back(std::move(plan));
  }
  return true;
}

void tsk_image::open_filesystem(volume_plan& plan) {
  if (plan.entry.offset >= size()) {
    plan.entry.error = "partition starts beyond the end of the image";
    return;
  }
  TSK_IMG_INFO* img = handles_->img.get();
  const auto offset = static_cast<TSK_OFF_T>(plan.entry.offset);
  tsk_error_reset();
  fs_ptr fs(tsk_fs_open_img(img, offset, TSK_FS_TYPE_DETECT));
  if (!fs) {
    const std::string why = tsk_reason();
    // libtsk classifies FAT by cluster count and rejects undersized FAT32;
    // the boot sector still says what it is, so try the FAT types by name.
    for (TSK_FS_TYPE_ENUM t : {TSK_FS_TYPE_FAT32, TSK_FS_TYPE_FAT16, TSK_FS_TYPE_FAT12}) {
      tsk_error_reset();
      fs.reset(tsk_fs_open_img(img, offset, t));
      if (fs) {
        plan.entry.notes.push_back("file system auto-detection failed (" + why + "); opened with explicit type " +
                                   filesystem_name(t));
        break;
      }
    }
    if (!fs) {
      plan.entry.error = "no recognised file system: " + why;
      tsk_error_reset();
      return;
    }
  }
  plan.fs_type = fs->ftype;
  plan.entry.filesystem = filesystem_name(fs->ftype);
  handles_->fs[plan.entry.index] = std::move(fs);
}

void tsk_image::walk(volume_plan& volume, const limits& lim, walk_sink& sink) {
  if (volume.fs_type == 0) {
    list_raw_head(volume, lim, sink);
    return;
  }
  TSK_FS_INFO* fs = fs_for(volume);
  if (fs->last_block_act < fs->last_block) {
    const std::string msg = "image ends before the file system does: " + std::to_string(fs->last_block_act + 1) +
                            " of " + std::to_string(fs->last_block + 1) + " blocks present";
    volume.entry.notes.push_back(msg);
    sink.warning("volume " + std::to_string(volume.entry.index) + ": " + msg);
  }
  fs_walker walker(fs, volume, lim, sink);
  walker.run();
}

// No file system: look at the head, where encrypted containers and unknown
// formats keep their headers; one that is all zeros is only noted.
void tsk_image::list_raw_head(volume_plan& volume, const limits& lim, walk_sink& sink) {
  if (volume.entry.offset >= size() || volume.entry.length == 0) {
    return;
  }
  const std::uint64_t available = std::min(volume.entry.length, size() - volume.entry.offset);
  const std::uint64_t head = std::min<std::uint64_t>(available, lim.raw_volume_head_bytes);
  if (!volume.entry.encryption) {  // an encrypted APFS volume is known already
    volume_head_source whole(handles_->img.get(), volume.entry.offset, available);
    volume.entry.encryption = detect_volume_encryption(whole);
  }
  if (all_zero(*handles_->img, volume.entry.offset, head)) {
    volume.entry.notes.push_back("no file system; the first " + std::to_string(head) + " bytes are zero");
    return;
  }
  error_entry err;
  err.volume = volume.entry.index;
  err.stage = "volume";
  err.code = "no_filesystem";
  err.message = *volume.entry.error + "; the volume holds data that could not be examined as files";
  sink.error(std::move(err));
  file_entry e;
  e.path = "$volume-head";
  e.volume = volume.entry.index;
  e.size = head;
  e.type = "raw";
  if (volume.entry.encryption) {
    e.findings.push_back(encrypted_volume_finding(*volume.entry.encryption, volume.entry.index, e.path));
  }
  sink.item({std::move(e), content_ref{content_ref::kind::volume_head, 0, std::nullopt, head}});
}

TSK_FS_INFO* tsk_image::fs_for(const volume_plan& volume) {
  if (auto it = handles_->fs.find(volume.entry.index); it != handles_->fs.end()) {
    return it->second.get();
  }
  tsk_error_reset();
  fs_ptr fs = volume.apfs_block
                  ? handles_->open_apfs(volume.entry.index, volume.entry.offset, *volume.apfs_block)
                  : fs_ptr(tsk_fs_open_img(handles_->img.get(), static_cast<TSK_OFF_T>(volume.entry.offset),
                                           static_cast<TSK_FS_TYPE_ENUM>(volume.fs_type)));
  if (!fs) {
    throw scan_error(scan_errc::read_failed, "cannot reopen the file system of volume " +
                                                 std::to_string(volume.entry.index) + ": " + tsk_reason());
  }
  return (handles_->fs[volume.entry.index] = std::move(fs)).get();
}

std::size_t tsk_image::read_raw(std::uint64_t offset, std::span<std::byte> out) {
  return volume_head_source(handles_->img.get(), 0, size()).read_at(offset, out);
}

std::unique_ptr<content_source> tsk_image::open(const volume_plan& volume, const content_ref& ref) {
  if (ref.what == content_ref::kind::volume_head) {
    return std::make_unique<volume_head_source>(handles_->img.get(), volume.entry.offset, ref.length);
  }
  TSK_FS_INFO* fs = fs_for(volume);
  tsk_error_reset();
  fs_file_ptr file(tsk_fs_file_open_meta(fs, nullptr, ref.inode));
  if (!file) {
    throw scan_error(scan_errc::read_failed, "cannot open inode " + std::to_string(ref.inode) + ": " + tsk_reason());
  }
  const TSK_FS_ATTR* attr =
      ref.attr_id ? tsk_fs_file_attr_get_id(file.get(), *ref.attr_id) : tsk_fs_file_attr_get(file.get());
  const bool empty = file->meta == nullptr || file->meta->size == 0;
  if (attr == nullptr && !empty) {
    throw scan_error(scan_errc::read_failed,
                     "no data attribute for inode " + std::to_string(ref.inode) + ": " + tsk_reason());
  }
  tsk_error_reset();
  return std::make_unique<fs_stream_source>(std::move(file), attr);
}

}  // namespace borderscan::scanner::detail
