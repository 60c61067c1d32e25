#include "virtual_disk.hpp"

// libbfio first: libvmdk then uses its handle types instead of declaring its own.
#include <libbfio.h>
#include <libewf.h>
#include <libqcow.h>
#include <libvhdi.h>
#include <libvmdk.h>

#include <array>
#include <cstring>
#include <fstream>

#include "borderscan/scanner/error.hpp"

namespace borderscan::scanner::detail {
namespace {

// Each libyal library has its own error type with the same calls.
template <class Error, auto Sprint, auto Free>
class yal_error {
 public:
  yal_error() = default;
  yal_error(const yal_error&) = delete;
  yal_error& operator=(const yal_error&) = delete;
  ~yal_error() {
    if (error_ != nullptr) {
      Free(&error_);
    }
  }
  Error** out() noexcept { return &error_; }
  std::string text() const {
    if (error_ == nullptr) {
      return "unknown error";
    }
    std::array<char, 512> buf{};
    Sprint(error_, buf.data(), buf.size());
    // libyal messages run from the outer call to the inner one: the last line says why.
    std::string all(buf.data());
    while (!all.empty() && (all.back() == '\n' || all.back() == '.')) {
      all.pop_back();
    }
    const auto nl = all.rfind('\n');
    return nl == std::string::npos ? all : all.substr(nl + 1);
  }

 private:
  Error* error_ = nullptr;
};

using ewf_error = yal_error<libewf_error_t, &libewf_error_sprint, &libewf_error_free>;
using qcow_error = yal_error<libqcow_error_t, &libqcow_error_sprint, &libqcow_error_free>;
using vhdi_error = yal_error<libvhdi_error_t, &libvhdi_error_sprint, &libvhdi_error_free>;
using vmdk_error = yal_error<libvmdk_error_t, &libvmdk_error_sprint, &libvmdk_error_free>;
using bfio_error = yal_error<libbfio_error_t, &libbfio_error_sprint, &libbfio_error_free>;

[[noreturn]] void cannot_open(disk_container c, const std::string& why) {
  throw scan_error(scan_errc::image_open_failed, "cannot open " + std::string(container_description(c)) + ": " + why);
}

std::string hex(const std::uint8_t* bytes, std::size_t n) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    out += digits[bytes[i] >> 4];
    out += digits[bytes[i] & 0xf];
  }
  return out;
}

bool starts_with(std::span<const std::byte> head, std::string_view sig) {
  return head.size() >= sig.size() && std::memcmp(head.data(), sig.data(), sig.size()) == 0;
}

// Signatures from each format's specification (libyal's format documents,
// Microsoft's VHD and VHDX specifications, QEMU's qcow2 and VMware's VMDK).
std::optional<disk_container> sniff(std::span<const std::byte> head, std::span<const std::byte> tail) {
  using namespace std::string_view_literals;
  if (starts_with(head, "EVF\x09\x0d\x0a\xff\x00"sv) || starts_with(head, "EVF2\x0d\x0a\x81\x00"sv)) {
    return disk_container::ewf;
  }
  if (starts_with(head, "QFI\xfb"sv)) {
    return disk_container::qcow;
  }
  if (starts_with(head, "vhdxfile"sv)) {
    return disk_container::vhdx;
  }
  if (starts_with(head, "KDMV"sv)) {
    return disk_container::vmdk;
  }
  // A dynamic VHD copies its footer to the front; a fixed one is raw bytes
  // with only the footer at the end, which libtsk reads as raw already.
  if (starts_with(head, "conectix"sv)) {
    return disk_container::vhd;
  }
  if (head.size() >= 0x44) {
    const std::byte vdi_signature[] = {std::byte{0x7f}, std::byte{0x10}, std::byte{0xda}, std::byte{0xbe}};
    if (std::memcmp(head.data() + 0x40, vdi_signature, 4) == 0) {
      return disk_container::vdi;
    }
  }
  (void)tail;
  return std::nullopt;
}

}  // namespace

std::string_view container_name(disk_container c) {
  switch (c) {
    case disk_container::ewf:
      return "ewf";
    case disk_container::qcow:
      return "qcow";
    case disk_container::vhd:
      return "vhd";
    case disk_container::vhdx:
      return "vhdx";
    case disk_container::vmdk:
      return "vmdk";
    case disk_container::vdi:
      return "vdi";
  }
  return "unknown";
}

std::string_view container_description(disk_container c) {
  switch (c) {
    case disk_container::ewf:
      return "an E01 (EWF) forensic image";
    case disk_container::qcow:
      return "a QEMU qcow disk image";
    case disk_container::vhd:
      return "a VHD disk image";
    case disk_container::vhdx:
      return "a VHDX disk image";
    case disk_container::vmdk:
      return "a VMDK disk image";
    case disk_container::vdi:
      return "a VirtualBox VDI disk image";
  }
  return "a disk image";
}

bool can_open(disk_container c) {
  return c != disk_container::vdi;
}

std::optional<disk_container> sniff_container(content_source& source) {
  std::array<std::byte, 512> head{};
  const std::size_t n = source.read_at(0, head);
  return sniff(std::span(head).first(n), {});
}

std::optional<disk_container> sniff_container(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::array<char, 512> head{};
  in.read(head.data(), head.size());
  return sniff(std::as_bytes(std::span(head).first(static_cast<std::size_t>(in.gcount()))), {});
}

// One library's handle behind the same three calls.
struct virtual_disk::handle {
  virtual ~handle() = default;
  virtual std::uint64_t media_size() = 0;
  // Bytes read; throws scan_error(read_failed).
  virtual std::size_t read(std::uint64_t offset, std::span<std::byte> out) = 0;
  virtual stored_media_hashes hashes() { return {}; }
};

namespace {

[[noreturn]] void read_failed(const std::string& why) {
  throw scan_error(scan_errc::read_failed, "virtual disk read failed: " + why);
}

class ewf_handle final : public virtual_disk::handle {
 public:
  explicit ewf_handle(const std::vector<std::filesystem::path>& files) {
    ewf_error e;
    if (libewf_handle_initialize(&h_, e.out()) != 1) {
      cannot_open(disk_container::ewf, e.text());
    }
    std::vector<std::string> names;
    for (const auto& f : files) {
      names.push_back(f.string());
    }
    std::vector<char*> ptrs;
    for (auto& n : names) {
      ptrs.push_back(n.data());
    }
    if (libewf_handle_open(h_, ptrs.data(), static_cast<int>(ptrs.size()), libewf_get_access_flags_read(), e.out()) !=
        1) {
      cannot_open(disk_container::ewf, e.text());
    }
    open_ = true;
  }
  ~ewf_handle() override {
    if (open_) {
      libewf_handle_close(h_, nullptr);
    }
    libewf_handle_free(&h_, nullptr);
  }
  std::uint64_t media_size() override {
    size64_t n = 0;
    ewf_error e;
    if (libewf_handle_get_media_size(h_, &n, e.out()) != 1) {
      cannot_open(disk_container::ewf, e.text());
    }
    return n;
  }
  std::size_t read(std::uint64_t offset, std::span<std::byte> out) override {
    ewf_error e;
    const ssize_t n = libewf_handle_read_random(h_, out.data(), out.size(), static_cast<off64_t>(offset), e.out());
    if (n < 0) {
      read_failed(e.text());
    }
    return static_cast<std::size_t>(n);
  }
  stored_media_hashes hashes() override {
    stored_media_hashes out;
    std::array<std::uint8_t, 20> buf{};
    if (libewf_handle_get_md5_hash(h_, buf.data(), 16, nullptr) == 1) {
      out.md5 = hex(buf.data(), 16);
    }
    if (libewf_handle_get_sha1_hash(h_, buf.data(), 20, nullptr) == 1) {
      out.sha1 = hex(buf.data(), 20);
    }
    return out;
  }

 private:
  libewf_handle_t* h_ = nullptr;
  bool open_ = false;
};

// qcow, VHD/VHDX and VMDK handles share their calls' shapes: one class over
// each library's set of calls.
template <class Calls>
class yal_file : public virtual_disk::handle {
 public:
  yal_file(disk_container format, const std::filesystem::path& file) : format_(format) {
    typename Calls::error e;
    if (Calls::initialize(&h_, e.out()) != 1) {
      cannot_open(format_, e.text());
    }
    if (Calls::open(h_, file.c_str(), Calls::open_read, e.out()) != 1) {
      cannot_open(format_, e.text());
    }
    open_ = true;
  }
  ~yal_file() override { release(); }
  std::uint64_t media_size() override {
    size64_t n = 0;
    typename Calls::error e;
    if (Calls::media_size(h_, &n, e.out()) != 1) {
      cannot_open(format_, e.text());
    }
    return n;
  }
  std::size_t read(std::uint64_t offset, std::span<std::byte> out) override {
    typename Calls::error e;
    const ssize_t n = Calls::read(h_, out.data(), out.size(), static_cast<off64_t>(offset), e.out());
    if (n < 0) {
      read_failed(e.text());
    }
    return static_cast<std::size_t>(n);
  }

 protected:
  // Closes and frees the handle (once); for subclasses that free what it reads through afterwards.
  void release() {
    if (h_ == nullptr) {
      return;
    }
    if (open_) {
      Calls::close(h_, nullptr);
    }
    Calls::free(&h_, nullptr);
    h_ = nullptr;
  }

  typename Calls::handle_type* h_ = nullptr;
  disk_container format_;

 private:
  bool open_ = false;
};

struct qcow_calls {
  using handle_type = libqcow_file_t;
  using error = qcow_error;
  static constexpr auto initialize = &libqcow_file_initialize;
  static constexpr auto open = &libqcow_file_open;
  static constexpr auto close = &libqcow_file_close;
  static constexpr auto free = &libqcow_file_free;
  static constexpr auto media_size = &libqcow_file_get_media_size;
  static constexpr auto read = &libqcow_file_read_buffer_at_offset;
  static constexpr int open_read = LIBQCOW_OPEN_READ;
};

struct vhdi_calls {
  using handle_type = libvhdi_file_t;
  using error = vhdi_error;
  static constexpr auto initialize = &libvhdi_file_initialize;
  static constexpr auto open = &libvhdi_file_open;
  static constexpr auto close = &libvhdi_file_close;
  static constexpr auto free = &libvhdi_file_free;
  static constexpr auto media_size = &libvhdi_file_get_media_size;
  static constexpr auto read = &libvhdi_file_read_buffer_at_offset;
  static constexpr int open_read = LIBVHDI_OPEN_READ;
};

struct vmdk_calls {
  using handle_type = libvmdk_handle_t;
  using error = vmdk_error;
  static constexpr auto initialize = &libvmdk_handle_initialize;
  static constexpr auto open = &libvmdk_handle_open;
  static constexpr auto close = &libvmdk_handle_close;
  static constexpr auto free = &libvmdk_handle_free;
  static constexpr auto media_size = &libvmdk_handle_get_media_size;
  static constexpr auto read = &libvmdk_handle_read_buffer_at_offset;
  static constexpr int open_read = LIBVMDK_OPEN_READ;
};

class qcow_handle final : public yal_file<qcow_calls> {
 public:
  explicit qcow_handle(const std::filesystem::path& file) : yal_file(disk_container::qcow, file) {
    std::size_t backing = 0;
    if (libqcow_file_get_utf8_backing_filename_size(h_, &backing, nullptr) == 1 && backing > 1) {
      // Its blocks that were never written live in another image, not here.
      cannot_open(format_, "it is an overlay on a backing image that is not part of the upload");
    }
    std::uint32_t encryption = 0;
    if (libqcow_file_get_encryption_method(h_, &encryption, nullptr) == 1 && encryption != 0) {
      cannot_open(format_, "it is encrypted");
    }
  }
};

class vhdi_handle final : public yal_file<vhdi_calls> {
 public:
  vhdi_handle(disk_container format, const std::filesystem::path& file) : yal_file(format, file) {
    std::uint32_t type = 0;
    if (libvhdi_file_get_disk_type(h_, &type, nullptr) == 1 && type == LIBVHDI_DISK_TYPE_DIFFERENTIAL) {
      cannot_open(format_, "it is a differencing disk whose parent is not part of the upload");
    }
  }
};

// A sparse VMDK names its data (extent) file inside itself; a spooled copy
// has another name, so the extent is handed over as an open file, not a name.
class vmdk_handle final : public yal_file<vmdk_calls> {
 public:
  explicit vmdk_handle(const std::filesystem::path& file) : yal_file(disk_container::vmdk, file) {
    try {
      open_extent(file);
    } catch (...) {
      free_pool();  // no destructor runs for a constructor that throws
      throw;
    }
  }
  ~vmdk_handle() override { free_pool(); }

 private:
  void open_extent(const std::filesystem::path& file) {
    vmdk_error e;
    int extents = 0;
    if (libvmdk_handle_get_number_of_extents(h_, &extents, e.out()) != 1) {
      cannot_open(format_, e.text());
    }
    if (extents != 1) {
      cannot_open(format_, "its data is split over " + std::to_string(extents) +
                               " extent files; only a single-file VMDK opens on its own");
    }
    bfio_error be;
    libbfio_handle_t* extent = nullptr;
    if (libbfio_pool_initialize(&pool_, 0, 0, be.out()) != 1 || libbfio_file_initialize(&extent, be.out()) != 1 ||
        libbfio_file_set_name(extent, file.c_str(), file.string().size(), be.out()) != 1) {
      if (extent != nullptr) {
        libbfio_handle_free(&extent, nullptr);
      }
      cannot_open(format_, be.text());
    }
    int entry = 0;
    if (libbfio_pool_append_handle(pool_, &entry, extent, LIBBFIO_OPEN_READ, be.out()) != 1) {
      libbfio_handle_free(&extent, nullptr);
      cannot_open(format_, be.text());
    }
    if (libvmdk_handle_open_extent_data_files_file_io_pool(h_, pool_, e.out()) != 1) {
      cannot_open(format_, e.text());
    }
  }
  void free_pool() {
    release();  // the handle reads through the pool: it goes first
    if (pool_ != nullptr) {
      libbfio_pool_close_all(pool_, nullptr);
      libbfio_pool_free(&pool_, nullptr);
    }
  }

  libbfio_pool_t* pool_ = nullptr;  // not owned by the handle
};

std::unique_ptr<virtual_disk::handle> open_handle(disk_container format,
                                                  const std::vector<std::filesystem::path>& files) {
  if (files.empty()) {
    cannot_open(format, "no file given");
  }
  switch (format) {
    case disk_container::ewf:
      return std::make_unique<ewf_handle>(files);
    case disk_container::qcow:
      return std::make_unique<qcow_handle>(files.front());
    case disk_container::vhd:
    case disk_container::vhdx:
      return std::make_unique<vhdi_handle>(format, files.front());
    case disk_container::vmdk:
      return std::make_unique<vmdk_handle>(files.front());
    case disk_container::vdi:
      break;
  }
  cannot_open(format, "no library in this build reads the format");
}

}  // namespace

virtual_disk::virtual_disk(disk_container format, const std::vector<std::filesystem::path>& files)
    : format_(format), handle_(open_handle(format, files)), media_size_(handle_->media_size()) {}

virtual_disk::~virtual_disk() = default;

std::size_t virtual_disk::read_at(std::uint64_t offset, std::span<std::byte> out) {
  if (offset >= media_size_) {
    return 0;
  }
  if (out.size() > media_size_ - offset) {
    out = out.first(static_cast<std::size_t>(media_size_ - offset));
  }
  std::lock_guard lock(mutex_);
  return handle_->read(offset, out);
}

stored_media_hashes virtual_disk::stored_hashes() const {
  return handle_->hashes();
}

}  // namespace borderscan::scanner::detail
