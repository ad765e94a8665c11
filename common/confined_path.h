// Paths resolved beneath a trusted root directory without following symbolic links, so that
// nothing below the root can redirect an operation outside it: a symlink planted in a kubelet
// staging or target path, a ".." component, a /proc magic link.
//
// The root itself is opened normally (it is configuration, e.g. /var/lib/kubelet, which may
// legitimately be reached through a symlink); every component below it is resolved with
// openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS) where the kernel has it
// (Linux 5.6+), else one component at a time with openat(O_PATH | O_NOFOLLOW) and a check that
// each one is a directory (older kernels; seccomp profiles that refuse openat2). Mount points
// below the root are crossed (kubelet's paths are mount points). Every operation works on the
// descriptors it resolved, so a component swapped for a symlink after a check cannot redirect
// it; callers that mount or create act through those descriptors too (ProcPath()).
//
// Errors: INVALID_ARGUMENT for a path that is not absolute or not lexically under the root, has
// "." / ".." / empty components, or crosses a symbolic link; NOT_FOUND for a missing component;
// FAILED_PRECONDITION when something of the other kind (file / directory) is in the way; others
// from errno. Thread-safe (immutable after Open; every call uses its own descriptors).
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <utility>

#include "common/status.h"
#include "common/unique_fd.h"

namespace vdisk::fs {

using vdisk::UniqueFd;

// "/proc/self/fd/<fd>": the path of what `fd` refers to, for system calls that take a path
// (mount(2), umount2(2)); the kernel resolves it to the descriptor's own file, not by name.
std::string ProcPath(int fd);

class ConfinedRoot {
 public:
  enum class Resolver {
    kAuto,  // openat2 where the kernel has it, else the O_NOFOLLOW walk
    kWalk,  // always the O_NOFOLLOW walk (tests of the fallback)
  };

  // Opens `root` (absolute; symlinks in the root path itself are followed).
  static StatusOr<ConfinedRoot> Open(const std::string& root, Resolver resolver = Resolver::kAuto);

  const std::string& path() const { return path_; }
  // True if `path` lexically names the root or something below it.
  bool Contains(const std::string& path) const;

  // An O_PATH descriptor of the existing `path` (the root itself for the root's path).
  StatusOr<UniqueFd> Resolve(const std::string& path) const;
  // The directory containing `path`, resolved, and the last component's name. INVALID_ARGUMENT
  // for the root itself.
  StatusOr<std::pair<UniqueFd, std::string>> ResolveParent(const std::string& path) const;
  // mkdir -p of `path` beneath the root (new directories get `mode`); returns its O_PATH fd.
  StatusOr<UniqueFd> MakeDirs(const std::string& path, mode_t mode) const;
  // mkdir of `path` alone (its parent must exist: NOT_FOUND otherwise); OK if it is already a
  // directory. Returns its O_PATH fd.
  StatusOr<UniqueFd> MakeDir(const std::string& path, mode_t mode) const;
  // The parent directories (mode 0750), then a regular file at `path` if none is there (never
  // through a symlink); returns its O_PATH fd.
  StatusOr<UniqueFd> CreateFile(const std::string& path, mode_t mode) const;
  // Removes the file, symlink or empty directory at `path` (not what a symlink points to). OK if
  // absent; FAILED_PRECONDITION for a non-empty directory.
  Status Remove(const std::string& path) const;

 private:
  ConfinedRoot(std::string path, UniqueFd fd, Resolver resolver)
      : path_(std::move(path)), fd_(std::make_shared<UniqueFd>(std::move(fd))), resolver_(resolver) {}
  // `path` relative to the root ("" for the root), after the lexical checks.
  StatusOr<std::string> Relative(const std::string& path) const;
  // Resolves `rel` (relative, checked) beneath the root; `what` names it in errors.
  StatusOr<UniqueFd> ResolveRelative(const std::string& rel, const std::string& what) const;

  std::string path_;
  std::shared_ptr<UniqueFd> fd_;  // shared: a ConfinedRoot is cheap to copy
  Resolver resolver_;
};

}  // namespace vdisk::fs
