#include "blockdev/local/mounts.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "common/mountinfo.h"

namespace vdisk::blockdev::local {

namespace {
bool Below(const std::string& path, const std::string& base) {
  if (base == "/") return path.starts_with("/");
  return path == base || (path.size() > base.size() && path.starts_with(base) && path[base.size()] == '/');
}
}  // namespace

StatusOr<bool> IsMountedElsewhere(const std::string& dir_in) {
  char* real = ::realpath(dir_in.c_str(), nullptr);
  if (!real) {
    if (errno == ENOENT) return false;
    return LastErrnoStatus(absl::StrCat("realpath ", dir_in));
  }
  std::string dir = real;
  ::free(real);
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) return LastErrnoStatus(absl::StrCat("stat ", dir));
  std::string devnum = absl::StrCat(major(st.st_dev), ":", minor(st.st_dev));

  ASSIGN_OR_RETURN(std::vector<MountInfoEntry> all, ReadMountInfo());
  std::vector<MountInfoEntry> mounts;
  for (auto& m : all)
    if (m.devnum == devnum) mounts.push_back(std::move(m));
  // The mount through which we see `dir`: the longest mountpoint that is a prefix of it.
  const MountInfoEntry* ours = nullptr;
  for (const auto& m : mounts)
    if (Below(dir, m.mountpoint) && (!ours || m.mountpoint.size() > ours->mountpoint.size()))
      ours = &m;
  if (!ours) return false;
  std::string rel = dir.substr(ours->mountpoint == "/" ? 0 : ours->mountpoint.size());
  std::string inside = ours->root == "/" ? rel : ours->root + rel;
  if (inside.empty()) inside.push_back('/');
  for (const auto& m : mounts) {
    if (&m == ours) continue;
    if (Below(m.root, inside)) return true;
  }
  return false;
}

}  // namespace vdisk::blockdev::local
