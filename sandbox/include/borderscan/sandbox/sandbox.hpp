#pragma once
// Fences a process that parses untrusted images (the scan worker): resource
// limits, no new privileges, Landlock where the kernel has it, and an
// allowlist seccomp filter. Linux only.
//
// The seccomp filter (install_filter) allows only the system calls a scan
// makes after start-up: reading files, memory management, threads, time,
// signals to the process itself, writing to descriptors it already holds
// (its pipe to the daemon, the report, the evidence pack, the report-entry
// spill file) and, when filter_options::scratch_dir_fd names the scan's work
// folder, creating files in it. Everything else fails with EPERM: nothing is
// killed, so a library probing an optional call degrades instead of crashing,
// and `borderscan worker --check-sandbox` can show each class denied. In
// particular:
//   - open/openat only read, from any folder; openat may create a new file
//     (O_CREAT|O_EXCL, or O_TMPFILE) only with scratch_dir_fd as its dirfd,
//     compared by number; absolute paths and other dirfds never write.
//     openat2 (flags in a struct the filter cannot read) is denied;
//   - unlinkat only with scratch_dir_fd and no flags; rename, link, symlink,
//     mkdir, mknod, chmod, chown, truncate by path, xattr writes are denied;
//   - clone only for threads (CLONE_THREAD set, no CLONE_NEW* bit): no child
//     processes, no namespaces; clone3 answers ENOSYS (the filter cannot read
//     its flags), so glibc falls back to clone; unshare, setns, mount denied;
//   - kill and tgkill only with the process's own pid (taken at install);
//     tkill, rt_sigqueueinfo, pidfd_* denied; fcntl only the descriptor and
//     lock commands (not F_SETOWN, which sends SIGIO elsewhere); ioctl only
//     TCGETS (isatty); prctl only PR_SET_NAME/PR_GET_NAME; prlimit64 only on
//     the process itself;
//   - io_uring, process_vm_readv/writev, ptrace, open_by_handle_at,
//     name_to_handle_at, bpf, perf_event_open, keyctl, add_key,
//     userfaultfd, sockets, execve/execveat, personality: not allowed.
// Without Landlock a process that breaks out of the parser could still walk
// "../" from scratch_dir_fd to create new files or unlink files the worker's
// user may remove (it cannot open an existing file for writing); Landlock
// (restrict_file_access) confines both to the work folder.
//
// Debugging: with BORDERSCAN_SECCOMP_LOG=1 in the environment, a call outside
// the allowlist also writes "borderscan sandbox: denied system call NAME (N)"
// to stderr (SIGSYS trap; the call still fails with EPERM), so a library that
// needs one more call is found in one run.
//
// Order: apply_limits, restrict_file_access, install_filter, all before the
// first thread starts (Landlock binds only the calling thread and its later
// children; the filter is synchronised to every thread).

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace borderscan::sandbox {

struct resource_limits {
  std::uint64_t address_space_bytes = 0;  // RLIMIT_AS; 0 = leave as is
  std::uint64_t cpu_seconds = 0;          // RLIMIT_CPU; 0 = leave as is
  std::uint64_t open_files = 256;         // RLIMIT_NOFILE
  bool no_core_dumps = true;              // RLIMIT_CORE = 0
};

// Applies the limits to the calling process. Throws std::system_error.
void apply_limits(const resource_limits& limits);

// What the filter lets the process create. No work folder: scratch_dir_fd = -1,
// and no file can be created after the filter.
struct filter_options {
  // The scan's work folder, open with O_PATH | O_DIRECTORY; -1: none.
  int scratch_dir_fd = -1;
};

// Sets PR_SET_NO_NEW_PRIVS and installs the seccomp filter for the whole
// process (all threads, present and future). Irreversible. Throws
// std::system_error when the kernel refuses.
void install_filter(const filter_options& options = {});

// Which files the process may still reach (Landlock). Paths that do not exist
// are left out; a file gets file rights, a folder rights on all beneath it.
struct file_access {
  std::vector<std::filesystem::path> read_only;
  std::filesystem::path read_write;  // the work folder: create, write, remove files beneath; empty: none
};

// The system folders a scan reads after start-up: shared libraries and
// gconv modules (/usr, /lib*), the loader cache, libmagic's database,
// /proc/self, the CPU list.
std::vector<std::filesystem::path> system_read_only_paths();

struct landlock_status {
  int abi = 0;  // the kernel's Landlock ABI version; 0: none
  bool enforced = false;
  std::string reason;  // why not enforced
};

// The kernel's Landlock ABI version, 0 when it has none (or it is disabled).
int landlock_abi();

// Restricts the calling thread (and threads and processes it starts later)
// to `access` with Landlock; also, from ABI 6, signals to processes outside
// its domain. Sets PR_SET_NO_NEW_PRIVS. Returns enforced = false (and why)
// when the kernel lacks Landlock; throws std::system_error when it has
// Landlock and refuses the rules.
landlock_status restrict_file_access(const file_access& access);

}  // namespace borderscan::sandbox
