#pragma once
// Fences a process that parses untrusted images (the scan worker):
// resource limits, no new privileges, and a seccomp filter. Linux only.
//
// The seccomp filter allows everything a scan needs (reading, memory
// management, threads, writing to already-open descriptors such as the pipe
// to the daemon) and denies, with EPERM:
//   - opening or creating files for writing (open/openat/openat2 with
//     O_WRONLY, O_RDWR, O_CREAT or O_TRUNC; creat),
//   - changing the file system (unlink, rename, mkdir, rmdir, link, symlink,
//     chmod, chown, truncate, mknod, mount, ...),
//   - the network (socket, socketpair, connect, bind, listen, accept),
//   - running programs (execve, execveat) and tracing others (ptrace,
//     process_vm_writev).
// Reading files stays allowed: libtsk opens the image (and its segments) in
// each worker thread, after the filter is installed.

#include <cstdint>
#include <string>

namespace borderscan::sandbox {

struct resource_limits {
  std::uint64_t address_space_bytes = 0;  // RLIMIT_AS; 0 = leave as is
  std::uint64_t cpu_seconds = 0;          // RLIMIT_CPU; 0 = leave as is
  std::uint64_t open_files = 256;         // RLIMIT_NOFILE
  bool no_core_dumps = true;              // RLIMIT_CORE = 0
};

// Applies the limits to the calling process. Throws std::system_error.
void apply_limits(const resource_limits& limits);

// Sets PR_SET_NO_NEW_PRIVS and installs the seccomp filter for the whole
// process (all threads, present and future). Irreversible. Throws
// std::system_error when the kernel refuses.
void install_filter();

}  // namespace borderscan::sandbox
