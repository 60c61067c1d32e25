#pragma once
#include <sys/prctl.h>

#include <cerrno>
#include <string>
#include <system_error>

namespace borderscan::sandbox::detail {

[[noreturn]] inline void fail(int err, const std::string& what) {
  throw std::system_error(err, std::generic_category(), what);
}

// Both Landlock and seccomp (without CAP_SYS_ADMIN) need it; setting it twice is harmless.
inline void set_no_new_privs() {
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    fail(errno, "prctl(PR_SET_NO_NEW_PRIVS)");
  }
}

}  // namespace borderscan::sandbox::detail
