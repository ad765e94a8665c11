#include "blockdev/local/mounts.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/fs.h"

namespace vdisk::blockdev::local {

namespace {
struct MountEntry {
  std::string devnum;      // "major:minor"
  std::string root;        // path inside the file system
  std::string mountpoint;  // where it is mounted
};

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      int v = 0;
      bool ok = true;
      for (int k = 1; k <= 3; ++k) {
        char c = s[i + k];
        if (c < '0' || c > '7') ok = false;
        v = v * 8 + (c - '0');
      }
      if (ok) {
        out += static_cast<char>(v);
        i += 3;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

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

  ASSIGN_OR_RETURN(std::string text, fs::ReadFile("/proc/self/mountinfo"));
  std::vector<MountEntry> mounts;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::vector<std::string> f = absl::StrSplit(line, ' ');
    if (f.size() < 5) continue;
    MountEntry m{std::string(f[2]), Unescape(f[3]), Unescape(f[4])};
    if (m.devnum == devnum) mounts.push_back(std::move(m));
  }
  // The mount through which we see `dir`: the longest mountpoint that is a prefix of it.
  const MountEntry* ours = nullptr;
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
