// The mount table of this process (/proc/self/mountinfo), parsed: one entry per mount with its
// device, its root inside that file system and where it is mounted (octal escapes undone).
// Re-read on every call, so it is never stale. Thread-safe. Errors: the errno of reading it.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace vdisk {

struct MountInfoEntry {
  std::string devnum;      // "major:minor"
  std::string root;        // path inside the file system
  std::string mountpoint;  // where it is mounted
};

StatusOr<std::vector<MountInfoEntry>> ReadMountInfo();

// Undoes mountinfo's \ooo escapes (space, tab, newline, backslash). Exposed for tests.
std::string UnescapeMountInfoField(const std::string& field);

}  // namespace vdisk
