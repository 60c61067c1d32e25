#include "borderscan/sandbox/sandbox.hpp"

#include <sys/resource.h>

#include <cerrno>
#include <system_error>

#include "fail.hpp"

namespace borderscan::sandbox {
namespace {

void set_limit(int resource, rlim_t value, const char* name) {
  rlimit lim{value, value};
  rlimit current{};
  if (getrlimit(resource, &current) == 0 && current.rlim_max != RLIM_INFINITY && current.rlim_max < value) {
    lim.rlim_cur = lim.rlim_max = current.rlim_max;  // can only go down
  }
  if (setrlimit(resource, &lim) != 0) {
    detail::fail(errno, std::string("setrlimit ") + name);
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
      detail::fail(errno, "setrlimit RLIMIT_CPU");
    }
  }
  if (limits.open_files != 0) {
    set_limit(RLIMIT_NOFILE, limits.open_files, "RLIMIT_NOFILE");
  }
}

}  // namespace borderscan::sandbox
