#include "tests/pool/xfs_env.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdlib>
#include <mutex>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/fs.h"

namespace vdisk::pooltest {

namespace {
std::mutex mu;
std::string mounted;  // mount point once up
std::string base;     // /tmp/vdisk-xfs-<pid>

std::string Script() {
  const char* src = std::getenv("VDISK_SOURCE_DIR");
  return absl::StrCat(src ? src : VDISK_SOURCE_DIR_DEFAULT, "/tests/env/xfs.sh");
}

void Unmount() {
  std::lock_guard lock(mu);
  if (mounted.empty()) return;
  std::string cmd = absl::StrCat(Script(), " down ", mounted, " >/dev/null");
  if (std::system(cmd.c_str()) != 0) fprintf(stderr, "xfs_env: '%s' failed\n", cmd.c_str());
  fs::RemoveAll(base).IgnoreError();
  mounted.clear();
}

class XfsEnvironment : public ::testing::Environment {
 public:
  void TearDown() override { Unmount(); }
};

[[maybe_unused]] ::testing::Environment* const kEnv =
    ::testing::AddGlobalTestEnvironment(new XfsEnvironment);

// Test binaries killed by a signal cannot unmount: clean up after dead ones (by pid).
void ReapStale() {
  DIR* d = ::opendir("/tmp");
  if (!d) return;
  std::vector<std::string> stale;
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (!n.starts_with("vdisk-xfs-")) continue;
    int pid = std::atoi(n.c_str() + 10);
    if (pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH) stale.push_back("/tmp/" + n);
  }
  ::closedir(d);
  for (const auto& dir : stale) {
    std::string cmd = absl::StrCat(Script(), " down ", dir, "/mnt >/dev/null 2>&1");
    if (std::system(cmd.c_str()) == 0) fs::RemoveAll(dir).IgnoreError();
  }
}
}  // namespace

StatusOr<std::string> SharedXfsMount() {
  std::lock_guard lock(mu);
  if (!mounted.empty()) return mounted;
  ReapStale();
  base = absl::StrCat("/tmp/vdisk-xfs-", ::getpid());
  std::string mnt = base + "/mnt";
  std::string cmd = absl::StrCat(Script(), " up ", base, "/xfs.img ", mnt, " 4G 2>&1");
  int rc = std::system(cmd.c_str());
  if (rc != 0)
    return absl::FailedPreconditionError(
        absl::StrCat("'", cmd, "' failed (rc ", rc, "): a reflink XFS could not be mounted"));
  mounted = mnt;
  std::atexit([] { Unmount(); });
  return mounted;
}

std::string RootFsTempParent() {
  const char* bin = std::getenv("VDISK_BINARY_DIR");
  return bin && *bin ? absl::StrCat(bin, "/test-tmp") : std::string("/tmp");
}

StatusOr<std::string> MakeTempDir(const std::string& parent, const std::string& prefix) {
  RETURN_IF_ERROR(fs::MakeDirs(parent));
  std::string tmpl = absl::StrCat(parent, "/", prefix, "XXXXXX");
  if (!::mkdtemp(tmpl.data())) return LastErrnoStatus(absl::StrCat("mkdtemp ", tmpl));
  return tmpl;
}

}  // namespace vdisk::pooltest
