#include "common/mountinfo.h"

#include "absl/strings/str_split.h"
#include "common/fs.h"

namespace vdisk {

std::string UnescapeMountInfoField(const std::string& s) {
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

StatusOr<std::vector<MountInfoEntry>> ReadMountInfo() {
  ASSIGN_OR_RETURN(std::string text, fs::ReadFile("/proc/self/mountinfo"));
  std::vector<MountInfoEntry> mounts;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::vector<std::string> f = absl::StrSplit(line, ' ');
    if (f.size() < 5) continue;
    mounts.push_back({f[2], UnescapeMountInfoField(f[3]), UnescapeMountInfoField(f[4])});
  }
  return mounts;
}

}  // namespace vdisk
