// Small POSIX filesystem utilities with errors as values. Thread-safe (no shared state).
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace vdisk::fs {

// Writes `data` to `path` atomically: temp file in the same directory, fsync, rename, fsync of
// the directory. A crash leaves either the old content or the new, never a torn file.
Status WriteFileAtomic(const std::string& path, std::string_view data, int mode = 0644);

// Reads a whole file. NOT_FOUND if it does not exist.
StatusOr<std::string> ReadFile(const std::string& path);

// mkdir -p; OK if it already exists as a directory.
Status MakeDirs(const std::string& path, int mode = 0755);

// fsync of a directory (makes a rename / create / unlink inside it durable).
Status SyncDir(const std::string& dir);

// Joins `root` and a relative `name`, refusing anything that would resolve outside `root`
// (absolute names, "..", empty components, NUL). INVALID_ARGUMENT on refusal. Pure string check.
StatusOr<std::string> JoinUnder(const std::string& root, std::string_view name);

// True if `path` lexically lies under `root` (after normalising "." and "..", no symlink resolution).
bool IsUnder(const std::string& root, const std::string& path);

// Removes a file or an entire directory tree; OK if it does not exist.
Status RemoveAll(const std::string& path);

}  // namespace vdisk::fs
