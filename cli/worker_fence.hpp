#pragma once
// The fence every scan worker runs under, in one place for the scan and for
// `borderscan worker --check-sandbox`: rlimits, then Landlock (where the
// kernel has it) on exactly the files the scan reads plus its work folder,
// then the allowlist seccomp filter (borderscan/sandbox/sandbox.hpp).

#include "borderscan/protocol/worker_protocol.hpp"
#include "borderscan/sandbox/sandbox.hpp"

namespace borderscan::cli {

// What the scan reads after the fence: system folders, the image (and the
// files that may be its further segments), rule sources, hash sets, compiled rules.
sandbox::file_access scan_file_access(const protocol::worker_invocation& args);

// Installs the whole fence; `scratch_dir_fd` is the work folder opened with
// O_PATH (-1: none). Call before any thread starts. Throws std::system_error.
sandbox::landlock_status install_fence(const protocol::worker_invocation& args, int scratch_dir_fd);

// `borderscan worker --check-sandbox` (sandbox_check.cpp).
int check_sandbox(const protocol::worker_invocation& args);

}  // namespace borderscan::cli
