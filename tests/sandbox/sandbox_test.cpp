// The worker's fence (borderscan/sandbox): each test forks, fences the child
// with the real filter (and Landlock), lets it try what a hostile image
// would, and checks the effect from the unfenced parent.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <functional>
#include <sstream>

#include <gtest/gtest.h>

#include "borderscan/sandbox/sandbox.hpp"
#include "borderscan/sandbox/work_folder.hpp"
#include "support/test_support.hpp"

namespace fs = std::filesystem;
namespace sb = borderscan::sandbox;

namespace {

// Runs `body` in a child process; its return value (an errno, 0 for success) is the exit code.
int in_child(const std::function<int()>& body) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    int rc = 99;
    try {
      rc = body();
    } catch (...) {
      rc = 98;
    }
    ::_exit(rc);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 200 + WTERMSIG(status);
}

// errno of a call that should fail, 0 when it succeeded.
int error_of(long rc) {
  return rc < 0 ? errno : 0;
}

std::string read_whole(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

class Fence : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directory(work_);
    fs::create_directory(outside_);
    std::ofstream(outside_ / "kept.txt") << "original";
  }
  int open_dir(const fs::path& p) { return ::open(p.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC); }
  // Landlock as the worker sets it: read-only system folders, read-write the work folder.
  sb::landlock_status restrict() {
    return sb::restrict_file_access({.read_only = sb::system_read_only_paths(), .read_write = work_});
  }
  bool outside_untouched() {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator(outside_)) {
      ++n;
    }
    return n == 1 && read_whole(outside_ / "kept.txt") == "original";
  }

  borderscan::test::scratch_dir tmp_;
  fs::path work_ = tmp_ / "work";
  fs::path outside_ = tmp_ / "outside";
};

}  // namespace

TEST_F(Fence, WritingOutsideTheWorkFolderThroughAnotherDirfdFails) {
  const int rc = in_child([&] {
    const int scratch = open_dir(work_);
    const int other = open_dir(outside_);
    sb::install_filter({.scratch_dir_fd = scratch});
    for (const int err :
         {error_of(::openat(other, "new", O_CREAT | O_EXCL | O_RDWR, 0600)),
          error_of(::openat(other, "kept.txt", O_WRONLY | O_TRUNC)),
          error_of(::openat(other, ".", O_TMPFILE | O_RDWR, 0600)), error_of(::unlinkat(other, "kept.txt", 0))}) {
      if (err != EPERM) {
        return err == 0 ? 1 : err;
      }
    }
    return 0;
  });
  EXPECT_EQ(rc, 0) << "an openat/unlinkat through another dirfd was not refused with EPERM";
  EXPECT_TRUE(outside_untouched());
}

TEST_F(Fence, WritingByAbsolutePathFailsEvenInsideTheWorkFolder) {
  std::ofstream(work_ / "scratch") << "scratch";
  const int rc = in_child([&] {
    sb::install_filter({.scratch_dir_fd = open_dir(work_)});
    for (const int err :
         {error_of(::open((outside_ / "new").c_str(), O_CREAT | O_WRONLY, 0600)),
          error_of(::open((outside_ / "kept.txt").c_str(), O_WRONLY | O_APPEND)),
          error_of(::open((work_ / "new").c_str(), O_CREAT | O_EXCL | O_RDWR, 0600)),
          error_of(::open((work_ / "scratch").c_str(), O_RDWR)), error_of(::unlink((outside_ / "kept.txt").c_str()))}) {
      if (err != EPERM) {
        return err == 0 ? 1 : err;
      }
    }
    return 0;
  });
  EXPECT_EQ(rc, 0) << "an open for writing by absolute path was not refused with EPERM";
  EXPECT_TRUE(outside_untouched());
  EXPECT_FALSE(fs::exists(work_ / "new"));
  EXPECT_EQ(read_whole(work_ / "scratch"), "scratch");
}

TEST_F(Fence, KillingASiblingProcessFails) {
  const pid_t sibling = ::fork();
  if (sibling == 0) {
    for (;;) {
      ::pause();
    }
  }
  const int rc = in_child([&] {
    sb::install_filter();
    const int by_kill = error_of(::kill(sibling, SIGKILL));
    const int by_tgkill = error_of(::syscall(SYS_tgkill, sibling, sibling, SIGKILL));
    // Signal 0 only asks: should the filter fail, the test runner (same group) lives on.
    const int by_group = error_of(::kill(0, 0));
    return by_kill == EPERM && by_tgkill == EPERM && by_group == EPERM ? 0 : 1;
  });
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(::waitpid(sibling, nullptr, WNOHANG), 0) << "the sibling must still run";
  ::kill(sibling, SIGKILL);
  ::waitpid(sibling, nullptr, 0);
}

TEST_F(Fence, ScratchFilesCanBeCreatedWrittenReopenedAndRemovedAfterTheFilter) {
  const int rc = in_child([&] {
    const int scratch = open_dir(work_);
    sb::install_filter({.scratch_dir_fd = scratch});
    const int fd = ::openat(scratch, "copy.E01", O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0 || ::write(fd, "EVF", 3) != 3 || ::pwrite(fd, "!", 1, 9) != 1 || ::ftruncate(fd, 4096) != 0 ||
        ::fallocate(fd, 0, 0, 8192) != 0) {
      return 10;
    }
    const int tmp = ::openat(scratch, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (tmp < 0 || ::write(tmp, "x", 1) != 1) {
      return 11;
    }
    // libyal reopens a scratch file by its full path, read-only.
    const int again = ::open((work_ / "copy.E01").c_str(), O_RDONLY | O_CLOEXEC);
    char head[3] = {};
    if (again < 0 || ::read(again, head, 3) != 3 || std::string_view(head, 3) != "EVF") {
      return 12;
    }
    // No second open of an existing name for writing, not even in the work folder.
    if (error_of(::openat(scratch, "copy.E01", O_RDWR)) != EPERM) {
      return 13;
    }
    return ::unlinkat(scratch, "copy.E01", 0) == 0 ? 0 : 14;
  });
  EXPECT_EQ(rc, 0);
  EXPECT_TRUE(fs::is_empty(work_));
}

TEST_F(Fence, WithoutAWorkFolderNothingCanBeCreated) {
  const int rc = in_child([&] {
    const int dir = open_dir(work_);
    sb::install_filter();
    return error_of(::openat(dir, "new", O_CREAT | O_EXCL | O_RDWR, 0600)) == EPERM &&
                   error_of(::openat(dir, ".", O_TMPFILE | O_RDWR, 0600)) == EPERM
               ? 0
               : 1;
  });
  EXPECT_EQ(rc, 0);
  EXPECT_TRUE(fs::is_empty(work_));
}

TEST_F(Fence, LandlockConfinesTheScratchDirfdToTheWorkFolder) {
  if (sb::landlock_abi() == 0) {
    GTEST_SKIP() << "this kernel has no Landlock: the worker runs on seccomp only";
  }
  const int rc = in_child([&] {
    const int scratch = open_dir(work_);
    if (!restrict().enforced) {
      return 20;
    }
    sb::install_filter({.scratch_dir_fd = scratch});
    // seccomp lets these through (the dirfd is the work folder's); Landlock must not.
    const int create = error_of(::openat(scratch, "../outside/new", O_CREAT | O_EXCL | O_RDWR, 0600));
    const int unlink = error_of(::unlinkat(scratch, "../outside/kept.txt", 0));
    const int read = error_of(::open((outside_ / "kept.txt").c_str(), O_RDONLY));
    const int inside = error_of(::openat(scratch, "fine", O_CREAT | O_EXCL | O_RDWR, 0600));
    return create == EACCES && unlink == EACCES && read == EACCES && inside == 0 ? 0 : 1;
  });
  EXPECT_EQ(rc, 0);
  EXPECT_TRUE(outside_untouched());
  EXPECT_TRUE(fs::exists(work_ / "fine"));
}

TEST(WorkFolder, IsPrivateReplacesALeftoverAndIsRemovedWithItsContent) {
  borderscan::test::scratch_dir tmp;
  const fs::path where = tmp / "spool" / "work" / "scan-1";
  fs::create_directories(where);
  std::ofstream(where / "leftover") << "x";
  {
    const sb::work_folder work(where);
    EXPECT_FALSE(fs::exists(where / "leftover"));
    EXPECT_EQ(fs::status(where).permissions() & fs::perms::all, fs::perms::owner_all);
    std::ofstream(where / "scratch") << "x";
  }
  EXPECT_FALSE(fs::exists(where));
  {
    const auto temporary = sb::work_folder::temporary(tmp.path());
    EXPECT_EQ(temporary.path().parent_path(), tmp.path());
    EXPECT_EQ(fs::status(temporary.path()).permissions() & fs::perms::all, fs::perms::owner_all);
  }
  EXPECT_TRUE(fs::is_empty(tmp / "spool" / "work"));
}

TEST(WorkFolder, LeftoversOfACrashAreSwept) {
  borderscan::test::scratch_dir tmp;
  fs::create_directories(tmp / "a" / "deep");
  fs::create_directories(tmp / "b");
  std::ofstream(tmp / "a" / "deep" / "file") << "x";
  EXPECT_EQ(sb::remove_leftover_work_folders(tmp.path()), 2U);
  EXPECT_TRUE(fs::is_empty(tmp.path()));
  EXPECT_EQ(sb::remove_leftover_work_folders(tmp / "missing"), 0U);
}
