#include "borderscan/sandbox/sandbox.hpp"

#include <fcntl.h>
#include <seccomp.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <cerrno>
#include <memory>
#include <system_error>

namespace borderscan::sandbox {
namespace {

[[noreturn]] void fail(int err, const std::string& what) {
  throw std::system_error(err, std::generic_category(), what);
}

void set_limit(int resource, rlim_t value, const char* name) {
  rlimit lim{value, value};
  rlimit current{};
  if (getrlimit(resource, &current) == 0 && current.rlim_max != RLIM_INFINITY && current.rlim_max < value) {
    lim.rlim_cur = lim.rlim_max = current.rlim_max;  // can only go down
  }
  if (setrlimit(resource, &lim) != 0) {
    fail(errno, std::string("setrlimit ") + name);
  }
}

struct filter_deleter {
  void operator()(void* ctx) const noexcept { seccomp_release(ctx); }
};

void deny(scmp_filter_ctx ctx, int syscall) {
  // Unknown syscalls on this architecture are skipped, not fatal.
  if (syscall < 0) {
    return;
  }
  if (const int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), syscall, 0); rc != 0) {
    fail(-rc, "seccomp_rule_add");
  }
}

// Denies the call when the flags argument (index arg) has any write/create bit.
void deny_write_flags(scmp_filter_ctx ctx, int syscall, unsigned arg) {
  for (const scmp_datum_t bit : {scmp_datum_t{O_WRONLY}, scmp_datum_t{O_RDWR}, scmp_datum_t{O_CREAT},
                                 scmp_datum_t{O_TRUNC}, scmp_datum_t{O_APPEND}}) {
    const int rc =
        seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), syscall, 1, SCMP_CMP(arg, SCMP_CMP_MASKED_EQ, bit, bit));
    if (rc != 0) {
      fail(-rc, "seccomp_rule_add (open flags)");
    }
  }
}

}  // namespace

void apply_limits(const resource_limits& limits) {
  if (limits.no_core_dumps) {
    set_limit(RLIMIT_CORE, 0, "RLIMIT_CORE");
  }
  if (limits.address_space_bytes != 0) {
    set_limit(RLIMIT_AS, limits.address_space_bytes, "RLIMIT_AS");
  }
  if (limits.cpu_seconds != 0) {
    // SIGXCPU at the soft limit names the cause; SIGKILL at the hard one is the backstop.
    rlimit cpu{limits.cpu_seconds, limits.cpu_seconds + 5};
    if (setrlimit(RLIMIT_CPU, &cpu) != 0) {
      fail(errno, "setrlimit RLIMIT_CPU");
    }
  }
  if (limits.open_files != 0) {
    set_limit(RLIMIT_NOFILE, limits.open_files, "RLIMIT_NOFILE");
  }
}

void install_filter() {
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    fail(errno, "prctl(PR_SET_NO_NEW_PRIVS)");
  }
  std::unique_ptr<void, filter_deleter> ctx(seccomp_init(SCMP_ACT_ALLOW));
  if (!ctx) {
    fail(ENOMEM, "seccomp_init");
  }
  // Applies to every thread of the process, including ones started later.
  seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_TSYNC, 1);

  for (const int sc : {SCMP_SYS(socket),
                       SCMP_SYS(socketpair),
                       SCMP_SYS(connect),
                       SCMP_SYS(bind),
                       SCMP_SYS(listen),
                       SCMP_SYS(accept),
                       SCMP_SYS(accept4),
                       SCMP_SYS(execve),
                       SCMP_SYS(execveat),
                       SCMP_SYS(ptrace),
                       SCMP_SYS(process_vm_writev),
                       SCMP_SYS(creat),
                       SCMP_SYS(unlink),
                       SCMP_SYS(unlinkat),
                       SCMP_SYS(rename),
                       SCMP_SYS(renameat),
                       SCMP_SYS(renameat2),
                       SCMP_SYS(mkdir),
                       SCMP_SYS(mkdirat),
                       SCMP_SYS(rmdir),
                       SCMP_SYS(link),
                       SCMP_SYS(linkat),
                       SCMP_SYS(symlink),
                       SCMP_SYS(symlinkat),
                       SCMP_SYS(chmod),
                       SCMP_SYS(fchmod),
                       SCMP_SYS(fchmodat),
                       SCMP_SYS(chown),
                       SCMP_SYS(fchown),
                       SCMP_SYS(lchown),
                       SCMP_SYS(fchownat),
                       SCMP_SYS(truncate),
                       SCMP_SYS(mknod),
                       SCMP_SYS(mknodat),
                       SCMP_SYS(mount),
                       SCMP_SYS(umount2),
                       SCMP_SYS(pivot_root),
                       SCMP_SYS(chroot),
                       SCMP_SYS(setuid),
                       SCMP_SYS(setgid),
                       SCMP_SYS(kexec_load),
                       SCMP_SYS(init_module),
                       SCMP_SYS(finit_module),
                       SCMP_SYS(openat2)}) {
    deny(ctx.get(), sc);
  }
  // openat2 carries its flags in a struct the filter cannot read: denied
  // outright above (glibc falls back to openat). open/openat: by flags.
  deny_write_flags(ctx.get(), SCMP_SYS(open), 1);
  deny_write_flags(ctx.get(), SCMP_SYS(openat), 2);

  if (const int rc = seccomp_load(ctx.get()); rc != 0) {
    fail(-rc, "seccomp_load");
  }
}

}  // namespace borderscan::sandbox
