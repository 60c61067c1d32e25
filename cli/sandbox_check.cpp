// `borderscan worker --check-sandbox`: installs the worker's fence in a child
// process and tries every class of call it must deny, then the scratch-file
// operations a scan needs. One line each:
//   denied <class>: EPERM            (or EACCES from Landlock)
//   allowed <operation>: ok
//   NOT denied <class>: <call> succeeded / FAILED <operation>: <why>
// The unfenced parent aims at a sibling process and a folder outside the work
// folder, and checks afterwards that both are untouched. Exit 0 only when
// every line is as it should be.
#include <fcntl.h>
#include <linux/io_uring.h>
#include <linux/keyctl.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <string>
#include <thread>

#include "borderscan/sandbox/work_folder.hpp"
#include "worker_fence.hpp"

namespace borderscan::cli {
namespace {

namespace fs = std::filesystem;

constexpr const char* scratch_name = "probe";
constexpr const char* outside_name = "outside.txt";
constexpr const char* outside_text = "must stay as it is\n";

// One call's outcome, errno taken at once.
struct attempt {
  const char* call;
  long rc;
  int err;
};

attempt try_call(const char* call, long rc) {
  return {call, rc, rc < 0 ? errno : 0};
}

std::string errno_text(int err) {
  const char* name = strerrorname_np(err);
  return name != nullptr ? name : std::to_string(err);
}

class probe_log {
 public:
  // Every attempt must fail with `expected`.
  void denied(std::string_view what, std::initializer_list<attempt> attempts, int expected = EPERM) {
    for (const attempt& a : attempts) {
      if (a.rc >= 0) {
        line("NOT denied", what, std::string(a.call) + " succeeded");
        return;
      }
      if (a.err != expected) {
        line("NOT denied", what,
             std::string(a.call) + " failed with " + errno_text(a.err) + ", not " + errno_text(expected));
        return;
      }
    }
    line("denied", what, errno_text(expected));
  }
  // Every attempt must succeed.
  void allowed(std::string_view what, std::initializer_list<attempt> attempts) {
    for (const attempt& a : attempts) {
      if (a.rc < 0) {
        line("FAILED", what, std::string(a.call) + ": " + errno_text(a.err));
        return;
      }
    }
    line("allowed", what, "ok");
  }
  void result(bool good, std::string_view what, const std::string& detail) {
    line(good ? "checked" : "FAILED", what, detail);
  }
  void skipped(std::string_view what, const std::string& why) {
    std::cout << "skipped " << what << ": " << why << "\n";
  }
  bool ok() const { return ok_; }

 private:
  void line(std::string_view verdict, std::string_view what, const std::string& detail) {
    ok_ = ok_ && (verdict == "denied" || verdict == "allowed" || verdict == "checked");
    std::cout << verdict << " " << what << ": " << detail << "\n" << std::flush;
  }
  bool ok_ = true;
};

// A raw clone that must be refused; should it succeed, the child leaves at once.
long try_clone(unsigned long flags) {
  const long rc = ::syscall(SYS_clone, flags | SIGCHLD, nullptr, nullptr, nullptr, nullptr);
  if (rc == 0) {
    ::_exit(0);
  }
  if (rc > 0) {
    ::waitpid(static_cast<pid_t>(rc), nullptr, 0);
  }
  return rc;
}

long close_if_open(long fd) {
  if (fd >= 0) {
    ::close(static_cast<int>(fd));
  }
  return fd;
}

struct targets {
  fs::path work;     // the work folder
  fs::path outside;  // a folder beside it, with outside_name in it
  pid_t sibling;     // a process of the same user
};

void probe_scratch_files(probe_log& log, int scratch, const targets& t) {
  const int fd = ::openat(scratch, scratch_name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
  log.allowed("scratch file create and write",
              {try_call("openat(O_CREAT|O_EXCL)", fd), try_call("write", ::write(fd, "hello", 5)),
               try_call("pwrite", ::pwrite(fd, "x", 1, 100)), try_call("ftruncate", ::ftruncate(fd, 4096)),
               try_call("fallocate", ::fallocate(fd, 0, 0, 8192))});
  const int tmp = ::openat(scratch, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  log.allowed("scratch O_TMPFILE", {try_call("openat(O_TMPFILE)", tmp), try_call("write", ::write(tmp, "x", 1))});
  close_if_open(tmp);
  // libyal and libtsk reopen files by their full path, read-only.
  const int again = ::open((t.work / scratch_name).c_str(), O_RDONLY | O_CLOEXEC);
  char head[5] = {};
  log.allowed("scratch reopen read-only by absolute path",
              {try_call("open(O_RDONLY)", again), try_call("read", ::read(again, head, sizeof head))});
  close_if_open(again);
  log.result(std::string_view(head, sizeof head) == "hello", "scratch content read back", "hello");
  close_if_open(fd);
}

void probe_denied(probe_log& log, int scratch, int outside_dir, const targets& t) {
  const pid_t p = t.sibling;
  const std::string scratch_file = (t.work / scratch_name).string();
  const int fd = ::openat(scratch, scratch_name, O_RDONLY | O_CLOEXEC);

  io_uring_params params{};
  log.denied("io_uring", {try_call("io_uring_setup", close_if_open(::syscall(SYS_io_uring_setup, 1, &params))),
                          try_call("io_uring_enter", ::syscall(SYS_io_uring_enter, -1, 0, 0, 0, nullptr, 0)),
                          try_call("io_uring_register", ::syscall(SYS_io_uring_register, -1, 0, nullptr, 0))});
  // Aimed at its own memory, which no other check would refuse.
  char source[8] = "secret", target[8] = {};
  iovec local{target, sizeof target}, remote{source, sizeof source};
  log.denied("process_vm", {try_call("process_vm_readv", ::process_vm_readv(::getpid(), &local, 1, &remote, 1, 0)),
                            try_call("process_vm_writev", ::process_vm_writev(::getpid(), &remote, 1, &local, 1, 0))});
  siginfo_t info{};
  info.si_code = SI_QUEUE;
  log.denied("signals to other processes",
             {try_call("kill", ::kill(p, SIGKILL)), try_call("tgkill", ::syscall(SYS_tgkill, p, p, SIGKILL)),
              try_call("tkill", ::syscall(SYS_tkill, p, SIGKILL)), try_call("kill(0)", ::kill(0, 0)),
              try_call("kill(-1)", ::kill(-1, 0)),
              try_call("rt_sigqueueinfo", ::syscall(SYS_rt_sigqueueinfo, p, SIGKILL, &info)),
              try_call("pidfd_open", close_if_open(::syscall(SYS_pidfd_open, p, 0))),
              try_call("pidfd_send_signal", ::syscall(SYS_pidfd_send_signal, -1, SIGKILL, nullptr, 0))});
  struct {
    file_handle h;
    unsigned char bytes[MAX_HANDLE_SZ];
  } handle{};
  handle.h.handle_bytes = MAX_HANDLE_SZ;
  int mount_id = 0;
  log.denied(
      "open_by_handle_at",
      {try_call("name_to_handle_at", ::name_to_handle_at(AT_FDCWD, scratch_file.c_str(), &handle.h, &mount_id, 0)),
       try_call("open_by_handle_at", close_if_open(::open_by_handle_at(scratch, &handle.h, O_RDWR)))});
  log.denied("namespaces",
             {try_call("unshare(CLONE_NEWUSER)", ::unshare(CLONE_NEWUSER)),
              try_call("unshare(CLONE_NEWNS)", ::unshare(CLONE_NEWNS)), try_call("setns", ::setns(scratch, 0)),
              try_call("clone(CLONE_NEWUSER)", try_clone(CLONE_NEWUSER)),
              try_call("clone(CLONE_NEWNET)", try_clone(CLONE_NEWNET))});
  log.denied("child processes", {try_call("fork", try_clone(0)), try_call("SYS_fork", [] {
                                   const long rc = ::syscall(SYS_fork);
                                   if (rc == 0) {
                                     ::_exit(0);
                                   }
                                   return rc;
                                 }())});
  log.denied("clone3", {try_call("clone3", ::syscall(SYS_clone3, nullptr, 0))}, ENOSYS);
  // At a path that does not exist: should the filter let them through, they fail with ENOENT
  // and change nothing on the host.
  const char* nowhere = "/nonexistent-borderscan-probe";
  log.denied("mount", {try_call("mount", ::mount("none", nowhere, "tmpfs", 0, nullptr)),
                       try_call("umount2", ::umount2(nowhere, MNT_DETACH)), try_call("chroot", ::chroot(nowhere)),
                       try_call("pivot_root", ::syscall(SYS_pivot_root, nowhere, nowhere))});
  log.denied("xattr writes", {try_call("setxattr", ::setxattr(scratch_file.c_str(), "user.borderscan", "x", 1, 0)),
                              try_call("lsetxattr", ::lsetxattr(scratch_file.c_str(), "user.borderscan", "x", 1, 0)),
                              try_call("fsetxattr", ::fsetxattr(fd, "user.borderscan", "x", 1, 0)),
                              try_call("removexattr", ::removexattr(scratch_file.c_str(), "user.borderscan")),
                              try_call("lremovexattr", ::lremovexattr(scratch_file.c_str(), "user.borderscan")),
                              try_call("fremovexattr", ::fremovexattr(fd, "user.borderscan"))});
  log.denied("ptrace", {try_call("ptrace(PTRACE_ATTACH)",
                                 [p] {
                                   const long rc = ::ptrace(PTRACE_ATTACH, p, nullptr, nullptr);
                                   if (rc == 0) {
                                     ::ptrace(PTRACE_DETACH, p, nullptr, nullptr);
                                   }
                                   return rc;
                                 }()),
                        try_call("ptrace(PTRACE_SEIZE)", ::ptrace(PTRACE_SEIZE, p, nullptr, nullptr))});
  log.denied("bpf", {try_call("bpf", ::syscall(SYS_bpf, 0, nullptr, 0))});
  log.denied("perf_event_open", {try_call("perf_event_open", ::syscall(SYS_perf_event_open, nullptr, 0, -1, -1, 0))});
  log.denied("keys",
             {try_call("add_key", ::syscall(SYS_add_key, "user", "borderscan-probe", "x", 1, KEY_SPEC_PROCESS_KEYRING)),
              try_call("keyctl", ::syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_PROCESS_KEYRING, 0))});
  log.denied("userfaultfd", {try_call("userfaultfd", close_if_open(::syscall(SYS_userfaultfd, O_CLOEXEC)))});
  int pair[2];
  log.denied("network", {try_call("socket(AF_INET)", close_if_open(::socket(AF_INET, SOCK_STREAM, 0))),
                         try_call("socket(AF_UNIX)", close_if_open(::socket(AF_UNIX, SOCK_STREAM, 0))),
                         try_call("socketpair", ::socketpair(AF_UNIX, SOCK_STREAM, 0, pair)),
                         try_call("connect", ::connect(fd, nullptr, 0)), try_call("bind", ::bind(fd, nullptr, 0))});
  // /bin/false: should exec get through, the check still fails.
  char* const argv[] = {const_cast<char*>("/bin/false"), nullptr};
  log.denied("exec", {try_call("execve", ::execve("/bin/false", argv, environ)),
                      try_call("execveat", ::syscall(SYS_execveat, AT_FDCWD, "/bin/false", argv, environ, 0))});
  log.denied(
      "chmod and chown",
      {try_call("chmod", ::chmod(scratch_file.c_str(), 0777)), try_call("fchmod", ::fchmod(fd, 0777)),
       try_call("fchmodat", ::fchmodat(scratch, scratch_name, 0777, 0)),
       try_call("chown", ::chown(scratch_file.c_str(), static_cast<uid_t>(-1), static_cast<gid_t>(-1))),
       try_call("fchown", ::fchown(fd, static_cast<uid_t>(-1), static_cast<gid_t>(-1))),
       try_call("lchown", ::lchown(scratch_file.c_str(), static_cast<uid_t>(-1), static_cast<gid_t>(-1))),
       try_call("fchownat", ::fchownat(scratch, scratch_name, static_cast<uid_t>(-1), static_cast<gid_t>(-1), 0))});
  log.denied("rename, link and symlink",
             {try_call("renameat", ::renameat(scratch, scratch_name, scratch, "renamed")),
              try_call("rename", ::rename(scratch_file.c_str(), (t.work / "renamed").c_str())),
              try_call("linkat", ::linkat(scratch, scratch_name, scratch, "linked", 0)),
              try_call("link", ::link(scratch_file.c_str(), (t.work / "linked").c_str())),
              try_call("symlinkat", ::symlinkat("/etc", scratch, "symlinked")),
              try_call("symlink", ::symlink("/etc", (t.work / "symlinked").c_str()))});
  log.denied("mknod and mkdir", {try_call("mknodat", ::mknodat(scratch, "fifo", S_IFIFO | 0600, 0)),
                                 try_call("mkdirat", ::mkdirat(scratch, "folder", 0700)),
                                 try_call("mkdir", ::mkdir((t.work / "folder").c_str(), 0700))});
  log.denied("personality", {try_call("personality", ::personality(0xffffffff))});
  log.denied(
      "write outside the work folder through another dirfd",
      {try_call("openat(O_CREAT|O_EXCL)", close_if_open(::openat(outside_dir, "new", O_CREAT | O_EXCL | O_RDWR, 0600))),
       try_call("openat(O_WRONLY)", close_if_open(::openat(outside_dir, outside_name, O_WRONLY))),
       try_call("openat(O_TMPFILE)", close_if_open(::openat(outside_dir, ".", O_TMPFILE | O_RDWR, 0600))),
       try_call("unlinkat", ::unlinkat(outside_dir, outside_name, 0))});
  log.denied(
      "write by absolute path",
      {try_call("open outside(O_CREAT)",
                close_if_open(::open((t.outside / "new").c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0600))),
       try_call("open outside(O_APPEND)",
                close_if_open(::open((t.outside / outside_name).c_str(), O_WRONLY | O_APPEND))),
       try_call("open work folder(O_CREAT|O_EXCL)",
                close_if_open(::open((t.work / "new").c_str(), O_CREAT | O_EXCL | O_RDWR, 0600))),
       try_call("open work folder(O_RDWR)", close_if_open(::open(scratch_file.c_str(), O_RDWR))),
       try_call("truncate", ::truncate(scratch_file.c_str(), 0)), try_call("unlink", ::unlink(scratch_file.c_str()))});
  log.denied("overwriting an existing scratch file",
             {try_call("openat(O_RDWR)", close_if_open(::openat(scratch, scratch_name, O_RDWR))),
              try_call("openat(O_WRONLY|O_TRUNC)", close_if_open(::openat(scratch, scratch_name, O_WRONLY | O_TRUNC))),
              try_call("openat(O_CREAT)", close_if_open(::openat(scratch, scratch_name, O_CREAT | O_RDWR, 0600)))});
  log.denied("ioctl other than TCGETS", {try_call("ioctl(FIONREAD)",
                                                  [fd] {
                                                    int n = 0;
                                                    return static_cast<long>(::ioctl(fd, FIONREAD, &n));
                                                  }()),
                                         try_call("ioctl(TIOCSTI)", ::ioctl(STDIN_FILENO, TIOCSTI, "x"))});
  log.denied("fcntl F_SETOWN and F_SETSIG", {try_call("fcntl(F_SETOWN)", ::fcntl(fd, F_SETOWN, p)),
                                             try_call("fcntl(F_SETSIG)", ::fcntl(fd, F_SETSIG, SIGKILL))});
  rlimit old{};
  log.denied("prlimit64 of another process", {try_call("prlimit64", ::prlimit(p, RLIMIT_NOFILE, nullptr, &old))});
  log.denied("anything else",
             {try_call("memfd_create", close_if_open(::syscall(SYS_memfd_create, "probe", 0))),
              try_call("setuid", ::syscall(SYS_setuid, ::getuid())),
              try_call("sched_setaffinity", ::syscall(SYS_sched_setaffinity, 0, 0, nullptr)),
              try_call("landlock_create_ruleset", ::syscall(SYS_landlock_create_ruleset, nullptr, 0, 1)),
              try_call("seccomp", ::syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, nullptr))});
  close_if_open(fd);
}

// Landlock refuses with EACCES what seccomp lets through: paths walked from the scratch dirfd.
void probe_landlock(probe_log& log, int scratch, const targets& t, const sandbox::landlock_status& landlock) {
  const std::string outside_file = (t.outside / outside_name).string();
  const fs::path up = fs::relative(t.outside, t.work);  // "../borderscan-work-..."
  if (!landlock.enforced) {
    log.skipped("Landlock probes", "no Landlock (" + landlock.reason + "): seccomp only");
    return;
  }
  log.denied("read outside the allowed paths",
             {try_call("open(O_RDONLY)", close_if_open(::open(outside_file.c_str(), O_RDONLY)))}, EACCES);
  log.denied("create outside through ../ from the scratch dirfd",
             {try_call("openat(O_CREAT|O_EXCL)",
                       close_if_open(::openat(scratch, (up / "new").c_str(), O_CREAT | O_EXCL | O_RDWR, 0600)))},
             EACCES);
  log.denied("unlink outside through ../ from the scratch dirfd",
             {try_call("unlinkat", ::unlinkat(scratch, (up / outside_name).c_str(), 0))}, EACCES);
}

void probe_allowed(probe_log& log, int scratch) {
  // A thread: glibc tries clone3 (ENOSYS), then clone.
  bool ran = false;
  std::thread([&ran] { ran = true; }).join();
  log.result(ran, "threads", "std::thread ran");
  log.allowed("signals to itself", {try_call("kill(self)", ::kill(::getpid(), 0)),
                                    try_call("tgkill(self)", ::syscall(SYS_tgkill, ::getpid(), ::gettid(), 0))});
  const int status = ::open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  char buf[64];
  log.allowed("reading /proc/self", {try_call("open", status), try_call("read", ::read(status, buf, sizeof buf))});
  close_if_open(status);
  errno = 0;
  const int tty = ::isatty(STDOUT_FILENO);
  log.result(tty == 1 || errno == ENOTTY, "isatty", tty == 1 ? "a terminal" : errno_text(errno));
  log.allowed("scratch unlink", {try_call("unlinkat", ::unlinkat(scratch, scratch_name, 0))});
}

// The fenced side; its exit code says whether every line was as it should be.
[[noreturn]] void run_probes(const protocol::worker_invocation& args, const targets& t) {
  probe_log log;
  const int scratch = ::open(t.work.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  const int outside_dir = ::open(t.outside.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (scratch < 0 || outside_dir < 0) {
    std::cout << "FAILED setup: " << std::strerror(errno) << "\n" << std::flush;
    ::_exit(1);
  }
  protocol::worker_invocation fenced = args;
  fenced.work_dir = t.work.string();
  sandbox::landlock_status landlock;
  try {
    landlock = install_fence(fenced, scratch);
  } catch (const std::exception& e) {
    std::cout << "FAILED fence: " << e.what() << "\n" << std::flush;
    ::_exit(1);
  }
  if (landlock.enforced) {
    std::cout << "landlock: enforced (ABI " << landlock.abi << ")\n";
  } else {
    std::cout << "landlock: not enforced (" << landlock.reason << "): seccomp only\n";
  }
  probe_scratch_files(log, scratch, t);
  probe_denied(log, scratch, outside_dir, t);
  probe_landlock(log, scratch, t, landlock);
  probe_allowed(log, scratch);
  std::cout << std::flush;
  ::_exit(log.ok() ? 0 : 1);
}

pid_t start_sibling() {
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    for (;;) {
      ::pause();
    }
  }
  return pid;
}

}  // namespace

int check_sandbox(const protocol::worker_invocation& args) {
  try {
    std::optional<sandbox::work_folder> own_work;
    fs::path work = args.work_dir;
    if (work.empty()) {
      own_work.emplace(sandbox::work_folder::temporary());
      work = own_work->path();
    }
    work = fs::absolute(work);
    const sandbox::work_folder outside = sandbox::work_folder::temporary(work.parent_path());
    std::ofstream(outside.path() / outside_name) << outside_text;

    std::cout << std::flush;
    const targets t{work, outside.path(), start_sibling()};
    if (t.sibling < 0) {
      std::cout << "FAILED setup: fork: " << std::strerror(errno) << "\n";
      return 1;
    }
    const pid_t prober = ::fork();
    if (prober == 0) {
      run_probes(args, t);
    }
    int status = 0;
    while (prober > 0 && ::waitpid(prober, &status, 0) < 0 && errno == EINTR) {
    }
    // The fenced side's word is not taken alone: the sibling and the outside folder must be untouched.
    const bool sibling_alive = ::waitpid(t.sibling, nullptr, WNOHANG) == 0;
    ::kill(t.sibling, SIGKILL);
    ::waitpid(t.sibling, nullptr, 0);
    std::size_t outside_files = 0;
    for ([[maybe_unused]] const auto& entry : fs::directory_iterator(outside.path())) {
      ++outside_files;
    }
    std::ifstream kept_file(outside.path() / outside_name, std::ios::binary);
    const std::string kept((std::istreambuf_iterator<char>(kept_file)), std::istreambuf_iterator<char>());
    const bool outside_untouched = outside_files == 1 && kept == outside_text;
    std::cout << (sibling_alive ? "checked" : "FAILED")
              << " sibling process still alive: " << (sibling_alive ? "yes" : "no") << "\n";
    std::cout << (outside_untouched ? "checked" : "FAILED")
              << " folder outside the work folder untouched: " << (outside_untouched ? "yes" : "no") << "\n"
              << std::flush;
    const bool probes_ok = prober > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!probes_ok && WIFSIGNALED(status)) {
      std::cout << "FAILED probes: killed by signal " << WTERMSIG(status) << "\n" << std::flush;
    }
    return probes_ok && sibling_alive && outside_untouched ? 0 : 1;
  } catch (const std::exception& e) {
    std::cout << "FAILED setup: " << e.what() << "\n" << std::flush;
    return 1;
  }
}

}  // namespace borderscan::cli
