// Landlock for the worker: read-only on what a scan reads, read-write beneath
// its work folder, nothing else. Raw system calls: glibc 2.36 has no wrappers.
#include <fcntl.h>
#include <linux/landlock.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "borderscan/sandbox/sandbox.hpp"
#include "fail.hpp"

namespace borderscan::sandbox {
namespace {

namespace fs = std::filesystem;

// Rights of later ABIs; Debian 12's linux-libc-dev (6.1) stops at ABI 2.
constexpr std::uint64_t fs_truncate = 1ULL << 14;   // ABI 3 (Linux 6.2)
constexpr std::uint64_t fs_ioctl_dev = 1ULL << 15;  // ABI 5 (Linux 6.10)
constexpr std::uint64_t net_bind_tcp = 1ULL << 0;   // ABI 4 (Linux 6.7)
constexpr std::uint64_t net_connect_tcp = 1ULL << 1;
constexpr std::uint64_t scope_abstract_unix_socket = 1ULL << 0;  // ABI 6 (Linux 6.12)
constexpr std::uint64_t scope_signal = 1ULL << 1;

// struct landlock_ruleset_attr as of ABI 6; older kernels get only the fields they know.
struct ruleset_attr {
  std::uint64_t handled_access_fs = 0;
  std::uint64_t handled_access_net = 0;
  std::uint64_t scoped = 0;
};

constexpr std::uint64_t read_file_rights = LANDLOCK_ACCESS_FS_READ_FILE;
constexpr std::uint64_t read_dir_rights = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR;
constexpr std::uint64_t work_dir_rights = read_dir_rights | LANDLOCK_ACCESS_FS_WRITE_FILE |
                                          LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_REG | fs_truncate;

struct fd_closer {
  int fd;
  ~fd_closer() {
    if (fd >= 0) {
      ::close(fd);
    }
  }
};

std::uint64_t handled_fs_rights(int abi) {
  std::uint64_t rights = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1;  // ABI 1: EXECUTE .. MAKE_SYM
  if (abi >= 2) {
    rights |= LANDLOCK_ACCESS_FS_REFER;
  }
  if (abi >= 3) {
    rights |= fs_truncate;
  }
  if (abi >= 5) {
    rights |= fs_ioctl_dev;
  }
  return rights;
}

// Grants `rights` (file rights only, for a file) on `path`; a path that does not exist is skipped.
void add_path_rule(int ruleset, const fs::path& path, std::uint64_t dir_rights, std::uint64_t handled) {
  const int fd = ::open(path.c_str(), O_PATH | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) {
      return;
    }
    detail::fail(errno, "landlock: " + path.string());
  }
  const fd_closer closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    detail::fail(errno, "landlock: " + path.string());
  }
  // Folder-only rights (listing, creating, removing) are refused on a file.
  const std::uint64_t rights =
      S_ISDIR(st.st_mode) ? dir_rights : dir_rights & (read_file_rights | LANDLOCK_ACCESS_FS_WRITE_FILE | fs_truncate);
  landlock_path_beneath_attr rule{};
  rule.allowed_access = rights & handled;
  rule.parent_fd = fd;
  if (::syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &rule, 0) != 0) {
    detail::fail(errno, "landlock_add_rule " + path.string());
  }
}

}  // namespace

int landlock_abi() {
  const long abi = ::syscall(SYS_landlock_create_ruleset, nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
  return abi > 0 ? static_cast<int>(abi) : 0;
}

std::vector<fs::path> system_read_only_paths() {
  return {"/usr",
          "/lib",
          "/lib64",
          "/lib32",
          "/libx32",
          "/etc/ld.so.cache",
          "/etc/ld.so.preload",
          "/etc/localtime",
          "/etc/magic",
          "/proc/self",
          "/sys/devices/system/cpu"};
}

landlock_status restrict_file_access(const file_access& access) {
  landlock_status status;
  status.abi = landlock_abi();
  if (status.abi == 0) {
    status.reason = errno == EOPNOTSUPP ? "Landlock is disabled in this kernel"
                                        : std::string("this kernel has no Landlock (") + std::strerror(errno) + ")";
    return status;
  }
  ruleset_attr attr;
  attr.handled_access_fs = handled_fs_rights(status.abi);
  std::size_t attr_size = sizeof attr.handled_access_fs;
  if (status.abi >= 4) {
    attr.handled_access_net = net_bind_tcp | net_connect_tcp;
    attr_size += sizeof attr.handled_access_net;
  }
  if (status.abi >= 6) {
    attr.scoped = scope_abstract_unix_socket | scope_signal;  // no signals to processes outside the fence
    attr_size += sizeof attr.scoped;
  }
  const int ruleset = static_cast<int>(::syscall(SYS_landlock_create_ruleset, &attr, attr_size, 0));
  if (ruleset < 0) {
    detail::fail(errno, "landlock_create_ruleset");
  }
  const fd_closer closer{ruleset};
  for (const auto& p : access.read_only) {
    add_path_rule(ruleset, p, read_dir_rights, attr.handled_access_fs);
  }
  if (!access.read_write.empty()) {
    add_path_rule(ruleset, access.read_write, work_dir_rights, attr.handled_access_fs);
  }
  detail::set_no_new_privs();
  if (::syscall(SYS_landlock_restrict_self, ruleset, 0) != 0) {
    detail::fail(errno, "landlock_restrict_self");
  }
  status.enforced = true;
  return status;
}

}  // namespace borderscan::sandbox
