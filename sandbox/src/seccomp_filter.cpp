// The worker's allowlist seccomp filter (see sandbox.hpp for what it allows and why).
#include <fcntl.h>
#include <linux/sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <ucontext.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string_view>

#include "borderscan/sandbox/sandbox.hpp"
#include "fail.hpp"

namespace borderscan::sandbox {
namespace {

struct filter_deleter {
  void operator()(void* ctx) const noexcept { seccomp_release(ctx); }
};
using filter_ptr = std::unique_ptr<void, filter_deleter>;

// Calls a scan makes whatever their arguments: I/O on descriptors it holds,
// reading file metadata, memory, threads' bookkeeping, time, own signals.
constexpr std::array always_allowed = {
    // descriptors already open (pipe, report, evidence pack, spill, images, scratch files)
    SCMP_SYS(read),
    SCMP_SYS(write),
    SCMP_SYS(readv),
    SCMP_SYS(writev),
    SCMP_SYS(pread64),
    SCMP_SYS(pwrite64),
    SCMP_SYS(preadv),
    SCMP_SYS(pwritev),
    SCMP_SYS(preadv2),
    SCMP_SYS(pwritev2),
    SCMP_SYS(lseek),
    SCMP_SYS(close),
    SCMP_SYS(dup),
    SCMP_SYS(dup2),
    SCMP_SYS(dup3),
    SCMP_SYS(fsync),
    SCMP_SYS(fdatasync),
    SCMP_SYS(ftruncate),
    SCMP_SYS(fallocate),
    SCMP_SYS(fadvise64),
    SCMP_SYS(readahead),
    // metadata and folder listings (Landlock, where present, bounds which files open)
    SCMP_SYS(fstat),
    SCMP_SYS(stat),
    SCMP_SYS(lstat),
    SCMP_SYS(newfstatat),
    SCMP_SYS(statx),
    SCMP_SYS(fstatfs),
    SCMP_SYS(statfs),
    SCMP_SYS(access),
    SCMP_SYS(faccessat),
    SCMP_SYS(faccessat2),
    SCMP_SYS(getdents64),
    SCMP_SYS(getdents),
    SCMP_SYS(readlink),
    SCMP_SYS(readlinkat),
    SCMP_SYS(getcwd),
    // memory
    SCMP_SYS(brk),
    SCMP_SYS(mmap),
    SCMP_SYS(munmap),
    SCMP_SYS(mprotect),
    SCMP_SYS(mremap),
    SCMP_SYS(madvise),
    // threads (clone itself is checked below) and their synchronisation
    SCMP_SYS(futex),
    SCMP_SYS(set_robust_list),
    SCMP_SYS(rseq),
    SCMP_SYS(set_tid_address),
    SCMP_SYS(sched_yield),
    SCMP_SYS(sched_getaffinity),
    SCMP_SYS(getcpu),
    SCMP_SYS(exit),
    SCMP_SYS(exit_group),
    SCMP_SYS(restart_syscall),
    // who and when
    SCMP_SYS(getpid),
    SCMP_SYS(gettid),
    SCMP_SYS(getppid),
    SCMP_SYS(getuid),
    SCMP_SYS(geteuid),
    SCMP_SYS(getgid),
    SCMP_SYS(getegid),
    SCMP_SYS(clock_gettime),
    SCMP_SYS(clock_getres),
    SCMP_SYS(gettimeofday),
    SCMP_SYS(time),
    SCMP_SYS(nanosleep),
    SCMP_SYS(clock_nanosleep),
    SCMP_SYS(getrandom),
    SCMP_SYS(uname),
    SCMP_SYS(sysinfo),
    SCMP_SYS(getrlimit),
    SCMP_SYS(getrusage),
    // signal handling within the process (sending is checked below)
    SCMP_SYS(rt_sigaction),
    SCMP_SYS(rt_sigprocmask),
    SCMP_SYS(rt_sigreturn),
    SCMP_SYS(sigaltstack),
};

// Flags that make open/openat write, create or truncate.
constexpr scmp_datum_t write_open_flags = O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND | (O_TMPFILE & ~O_DIRECTORY);
constexpr scmp_datum_t create_new = O_CREAT | O_EXCL;
constexpr scmp_datum_t tmpfile_bit = O_TMPFILE & ~O_DIRECTORY;
constexpr scmp_datum_t namespace_flags =
    CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET;
constexpr std::array allowed_fcntl = {F_DUPFD,     F_GETFD,      F_SETFD,     F_GETFL,         F_SETFL,
                                      F_GETLK,     F_SETLK,      F_SETLKW,    F_DUPFD_CLOEXEC, F_OFD_GETLK,
                                      F_OFD_SETLK, F_OFD_SETLKW, F_GETPIPE_SZ};

void add(scmp_filter_ctx ctx, std::uint32_t action, int syscall, std::initializer_list<scmp_arg_cmp> args = {}) {
  // A call this architecture does not have needs no rule.
  if (syscall < 0) {
    return;
  }
  const int rc = seccomp_rule_add_array(ctx, action, syscall, static_cast<unsigned>(args.size()), std::data(args));
  if (rc != 0) {
    detail::fail(-rc, "seccomp_rule_add");
  }
}

void allow(scmp_filter_ctx ctx, int syscall, std::initializer_list<scmp_arg_cmp> args = {}) {
  add(ctx, SCMP_ACT_ALLOW, syscall, args);
}

void add_allowlist(scmp_filter_ctx ctx, const filter_options& options) {
  for (const int sc : always_allowed) {
    allow(ctx, sc);
  }
  // Reading any file (libtsk reopens the image per thread, libyal reopens scratch files by path).
  allow(ctx, SCMP_SYS(open), {SCMP_A1(SCMP_CMP_MASKED_EQ, write_open_flags, 0)});
  allow(ctx, SCMP_SYS(openat), {SCMP_A2(SCMP_CMP_MASKED_EQ, write_open_flags, 0)});
  if (options.scratch_dir_fd >= 0) {
    const auto fd = static_cast<scmp_datum_t>(options.scratch_dir_fd);
    // New files only: O_EXCL never opens an existing file (nor follows a symlink) for writing.
    allow(ctx, SCMP_SYS(openat), {SCMP_A0(SCMP_CMP_EQ, fd), SCMP_A2(SCMP_CMP_MASKED_EQ, create_new, create_new)});
    allow(ctx, SCMP_SYS(openat), {SCMP_A0(SCMP_CMP_EQ, fd), SCMP_A2(SCMP_CMP_MASKED_EQ, tmpfile_bit, tmpfile_bit)});
    allow(ctx, SCMP_SYS(unlinkat), {SCMP_A0(SCMP_CMP_EQ, fd), SCMP_A2(SCMP_CMP_EQ, 0)});
  }
  // Threads only: a thread shares everything, a namespace bit would leave the fence.
  allow(ctx, SCMP_SYS(clone),
        {SCMP_A0(SCMP_CMP_MASKED_EQ, namespace_flags | CLONE_THREAD, static_cast<scmp_datum_t>(CLONE_THREAD))});
  // Its struct is out of the filter's reach: ENOSYS makes glibc use clone, checked above.
  add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3));
  // Signals to itself only (abort, pthread_kill of its own threads).
  const auto self = static_cast<scmp_datum_t>(::getpid());
  allow(ctx, SCMP_SYS(kill), {SCMP_A0(SCMP_CMP_EQ, self)});
  allow(ctx, SCMP_SYS(tgkill), {SCMP_A0(SCMP_CMP_EQ, self)});
  for (const int cmd : allowed_fcntl) {
    allow(ctx, SCMP_SYS(fcntl), {SCMP_A1(SCMP_CMP_EQ, static_cast<scmp_datum_t>(cmd))});
  }
  allow(ctx, SCMP_SYS(ioctl), {SCMP_A1(SCMP_CMP_EQ, TCGETS)});  // isatty()
  allow(ctx, SCMP_SYS(prctl), {SCMP_A0(SCMP_CMP_EQ, PR_SET_NAME)});
  allow(ctx, SCMP_SYS(prctl), {SCMP_A0(SCMP_CMP_EQ, PR_GET_NAME)});
  allow(ctx, SCMP_SYS(prlimit64), {SCMP_A0(SCMP_CMP_EQ, 0)});  // getrlimit/setrlimit of itself
#if defined(__SANITIZE_ADDRESS__)
  // AddressSanitizer's runtime (test builds only): its reports read /proc/self/maps and
  // ask whether the process is dumpable.
  allow(ctx, SCMP_SYS(prctl), {SCMP_A0(SCMP_CMP_EQ, PR_GET_DUMPABLE)});
  // UBSan's vptr check probes whether memory is readable through a pipe; refused, it
  // takes a live object for a bad one (seen with std::thread under the filter).
  allow(ctx, SCMP_SYS(pipe2));
#endif
}

// BORDERSCAN_SECCOMP_LOG=1: names of denied calls, looked up before the filter
// (the handler may not allocate).
constexpr int max_syscall = 512;
std::array<const char*, max_syscall> syscall_names{};

void write_all(std::string_view text) {
  while (!text.empty()) {
    const ssize_t n = ::write(STDERR_FILENO, text.data(), text.size());
    if (n <= 0) {
      return;
    }
    text.remove_prefix(static_cast<std::size_t>(n));
  }
}

void on_denied_call(int, siginfo_t* info, void* context) {
  const int saved_errno = errno;
  const int nr = info->si_syscall;
  char digits[16];
  std::size_t at = sizeof digits;
  unsigned value = nr < 0 ? 0U : static_cast<unsigned>(nr);
  do {
    digits[--at] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0 && at > 0);
  write_all("borderscan sandbox: denied system call ");
  write_all(nr >= 0 && nr < max_syscall && syscall_names[static_cast<std::size_t>(nr)] != nullptr
                ? syscall_names[static_cast<std::size_t>(nr)]
                : "?");
  write_all(" (");
  write_all(std::string_view(digits + at, sizeof digits - at));
  write_all(")\n");
  // The call fails as it would without the log: EPERM.
  auto* uc = static_cast<ucontext_t*>(context);
  uc->uc_mcontext.gregs[REG_RAX] = -EPERM;
  errno = saved_errno;
}

bool log_denials() {
  const char* v = std::getenv("BORDERSCAN_SECCOMP_LOG");
  return v != nullptr && std::strcmp(v, "1") == 0;
}

// The default action: EPERM, or in log mode a SIGSYS trap that names the call.
std::uint32_t default_action() {
#if defined(__x86_64__)
  if (log_denials()) {
    for (int nr = 0; nr < max_syscall; ++nr) {
      // Kept for the life of the process: the handler reads them.
      syscall_names[static_cast<std::size_t>(nr)] = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
    }
    struct sigaction sa {};
    sa.sa_sigaction = on_denied_call;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSYS, &sa, nullptr) != 0) {
      detail::fail(errno, "sigaction(SIGSYS)");
    }
    return SCMP_ACT_TRAP;
  }
#endif
  return SCMP_ACT_ERRNO(EPERM);
}

}  // namespace

void install_filter(const filter_options& options) {
  detail::set_no_new_privs();
  filter_ptr ctx(seccomp_init(default_action()));
  if (!ctx) {
    detail::fail(ENOMEM, "seccomp_init");
  }
  // Applies to every thread of the process, including ones started later.
  if (const int rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_TSYNC, 1); rc != 0) {
    detail::fail(-rc, "seccomp_attr_set(TSYNC)");
  }
  add_allowlist(ctx.get(), options);
  if (const int rc = seccomp_load(ctx.get()); rc != 0) {
    detail::fail(-rc, "seccomp_load");
  }
}

}  // namespace borderscan::sandbox
