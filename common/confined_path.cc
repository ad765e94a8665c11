#include "common/confined_path.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace vdisk::fs {

namespace {

// Set once openat2 turned out to be missing (ENOSYS) or refused (a seccomp profile: EPERM).
std::atomic<bool> g_no_openat2{false};

StatusOr<std::vector<std::string>> Components(const std::string& path, const std::string& what) {
  if (path.empty() || path.front() != '/')
    return absl::InvalidArgumentError(absl::StrCat(what, " '", path, "' is not an absolute path"));
  if (path.find('\0') != std::string::npos)
    return absl::InvalidArgumentError(absl::StrCat(what, " contains NUL"));
  std::vector<std::string> out;
  for (absl::string_view c : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    if (c == "." || c == "..")
      return absl::InvalidArgumentError(absl::StrCat(what, " '", path, "' has a '", std::string(c),
                                                     "' component"));
    out.emplace_back(c);
  }
  return out;
}

Status SymlinkError(const std::string& what, const std::string& root) {
  return absl::InvalidArgumentError(absl::StrCat(
      what, " crosses a symbolic link below ", root,
      ": staging and target paths are never resolved through symlinks"));
}

// Maps the errno of resolving `what` (below `root`).
Status ResolveError(int err, const std::string& what, const std::string& root) {
  switch (err) {
    case ELOOP:
      return SymlinkError(what, root);
    case EXDEV:
      return absl::InvalidArgumentError(absl::StrCat(what, " leads outside ", root));
    case ENOENT:
      return absl::NotFoundError(absl::StrCat(what, " does not exist"));
    case ENOTDIR:
      return absl::FailedPreconditionError(
          absl::StrCat(what, ": a component of its path is not a directory"));
    default:
      return ErrnoStatus(err, absl::StrCat("resolving ", what));
  }
}

// One component `name` in directory `dir`, never following it if it is a symlink.
StatusOr<UniqueFd> OpenComponent(int dir, const std::string& name, bool must_be_dir,
                                 const std::string& what, const std::string& root) {
  UniqueFd fd(::openat(dir, name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return ResolveError(errno, what, root);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return LastErrnoStatus(absl::StrCat("fstat ", what));
  if (S_ISLNK(st.st_mode)) return SymlinkError(what, root);
  if (must_be_dir && !S_ISDIR(st.st_mode)) return ResolveError(ENOTDIR, what, root);
  return fd;
}

StatusOr<UniqueFd> Dup(int fd) {
  UniqueFd out(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
  if (!out.valid()) return LastErrnoStatus("dup");
  return out;
}

}  // namespace

std::string ProcPath(int fd) { return absl::StrCat("/proc/self/fd/", fd); }

StatusOr<ConfinedRoot> ConfinedRoot::Open(const std::string& root, Resolver resolver) {
  ASSIGN_OR_RETURN(std::vector<std::string> parts, Components(root, "confinement root"));
  std::string normal = "/" + absl::StrJoin(parts, "/");
  UniqueFd fd(::open(normal.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return LastErrnoStatus(absl::StrCat("opening confinement root ", normal));
  return ConfinedRoot(std::move(normal), std::move(fd), resolver);
}

bool ConfinedRoot::Contains(const std::string& path) const { return Relative(path).ok(); }

StatusOr<std::string> ConfinedRoot::Relative(const std::string& path) const {
  ASSIGN_OR_RETURN(std::vector<std::string> parts, Components(path, "path"));
  ASSIGN_OR_RETURN(std::vector<std::string> root, Components(path_, "root"));
  if (parts.size() < root.size() || !std::equal(root.begin(), root.end(), parts.begin()))
    return absl::InvalidArgumentError(absl::StrCat("path '", path, "' is not under ", path_));
  return absl::StrJoin(parts.begin() + root.size(), parts.end(), "/");
}

StatusOr<UniqueFd> ConfinedRoot::ResolveRelative(const std::string& rel,
                                                 const std::string& what) const {
  if (rel.empty()) return Dup(fd_->get());
  if (resolver_ == Resolver::kAuto && !g_no_openat2.load()) {
    struct open_how how = {};
    how.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    long r = ::syscall(SYS_openat2, fd_->get(), rel.c_str(), &how, sizeof how);
    if (r >= 0) {
      // RESOLVE_NO_SYMLINKS refuses symlinks on the way; with O_PATH | O_NOFOLLOW a trailing
      // one is returned as itself, which is refused here.
      UniqueFd fd(static_cast<int>(r));
      struct stat st;
      if (::fstat(fd.get(), &st) != 0) return LastErrnoStatus(absl::StrCat("fstat ", what));
      if (S_ISLNK(st.st_mode)) return SymlinkError(what, path_);
      return fd;
    }
    const int err = errno;
    if (err != ENOSYS && err != EPERM) return ResolveError(err, what, path_);
    g_no_openat2 = true;  // this kernel / sandbox: walk from now on
  }
  std::vector<std::string> parts = absl::StrSplit(rel, '/');
  ASSIGN_OR_RETURN(UniqueFd cur, Dup(fd_->get()));
  for (size_t i = 0; i < parts.size(); ++i) {
    ASSIGN_OR_RETURN(cur, OpenComponent(cur.get(), parts[i], i + 1 < parts.size(), what, path_));
  }
  return cur;
}

StatusOr<UniqueFd> ConfinedRoot::Resolve(const std::string& path) const {
  ASSIGN_OR_RETURN(std::string rel, Relative(path));
  return ResolveRelative(rel, path);
}

StatusOr<std::pair<UniqueFd, std::string>> ConfinedRoot::ResolveParent(const std::string& path) const {
  ASSIGN_OR_RETURN(std::string rel, Relative(path));
  if (rel.empty())
    return absl::InvalidArgumentError(absl::StrCat("path '", path, "' is the root ", path_));
  const auto slash = rel.find_last_of('/');
  const std::string parent = slash == std::string::npos ? "" : rel.substr(0, slash);
  std::string name = slash == std::string::npos ? rel : rel.substr(slash + 1);
  ASSIGN_OR_RETURN(UniqueFd dir, ResolveRelative(parent, absl::StrCat("the directory of ", path)));
  struct stat st;
  if (::fstat(dir.get(), &st) != 0) return LastErrnoStatus(absl::StrCat("fstat parent of ", path));
  if (!S_ISDIR(st.st_mode)) return ResolveError(ENOTDIR, path, path_);
  return std::make_pair(std::move(dir), std::move(name));
}

StatusOr<UniqueFd> ConfinedRoot::MakeDirs(const std::string& path, mode_t mode) const {
  ASSIGN_OR_RETURN(std::string rel, Relative(path));
  ASSIGN_OR_RETURN(UniqueFd cur, Dup(fd_->get()));
  if (rel.empty()) return cur;
  for (absl::string_view c : absl::StrSplit(rel, '/')) {
    const std::string name(c);
    if (::mkdirat(cur.get(), name.c_str(), mode) != 0 && errno != EEXIST)
      return LastErrnoStatus(absl::StrCat("mkdir ", name, " (for ", path, ")"));
    auto next = OpenComponent(cur.get(), name, /*must_be_dir=*/true, path, path_);
    if (!next.ok()) {
      if (absl::IsFailedPrecondition(next.status()))
        return absl::FailedPreconditionError(
            absl::StrCat(path, ": '", name, "' exists and is not a directory"));
      return next.status();
    }
    cur = std::move(*next);
  }
  return cur;
}

StatusOr<UniqueFd> ConfinedRoot::MakeDir(const std::string& path, mode_t mode) const {
  ASSIGN_OR_RETURN(auto parent, ResolveParent(path));
  auto& [dir, name] = parent;
  if (::mkdirat(dir.get(), name.c_str(), mode) != 0 && errno != EEXIST)
    return LastErrnoStatus(absl::StrCat("mkdir ", path));
  auto fd = OpenComponent(dir.get(), name, /*must_be_dir=*/true, path, path_);
  if (absl::IsFailedPrecondition(fd.status()))
    return absl::FailedPreconditionError(absl::StrCat(path, " exists and is not a directory"));
  return fd;
}

StatusOr<UniqueFd> ConfinedRoot::CreateFile(const std::string& path, mode_t mode) const {
  ASSIGN_OR_RETURN(std::string rel, Relative(path));
  if (rel.empty()) return absl::FailedPreconditionError(absl::StrCat(path, " is a directory"));
  const auto slash = path.find_last_of('/');
  ASSIGN_OR_RETURN(UniqueFd dir, MakeDirs(slash == 0 ? "/" : path.substr(0, slash), 0750));
  const std::string name = path.substr(slash + 1);
  for (int attempt = 0; attempt < 3; ++attempt) {
    UniqueFd fd(::openat(dir.get(), name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (fd.valid()) {
      struct stat st;
      if (::fstat(fd.get(), &st) != 0) return LastErrnoStatus(absl::StrCat("fstat ", path));
      if (S_ISLNK(st.st_mode)) return SymlinkError(path, path_);
      if (S_ISDIR(st.st_mode))
        return absl::FailedPreconditionError(absl::StrCat(path, " exists and is a directory"));
      return fd;  // an existing file (or a device node bind-mounted there): used as it is
    }
    if (errno != ENOENT) return ResolveError(errno, path, path_);
    UniqueFd created(::openat(dir.get(), name.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, mode));
    if (!created.valid() && errno != EEXIST) return LastErrnoStatus(absl::StrCat("create ", path));
    // Created (or raced with another creator): open it as above.
  }
  return absl::AbortedError(absl::StrCat(path, " keeps changing; retry"));
}

Status ConfinedRoot::Remove(const std::string& path) const {
  auto parent = ResolveParent(path);
  if (!parent.ok()) return absl::IsNotFound(parent.status()) ? Status() : parent.status();
  auto& [dir, name] = *parent;
  struct stat st;
  if (::fstatat(dir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
    return errno == ENOENT ? Status() : LastErrnoStatus(absl::StrCat("stat ", path));
  if (::unlinkat(dir.get(), name.c_str(), S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) != 0) {
    if (errno == ENOENT) return Status();
    if (errno == ENOTEMPTY || errno == EEXIST)
      return absl::FailedPreconditionError(absl::StrCat(path, " is a directory that is not empty"));
    if (errno == EBUSY) return absl::FailedPreconditionError(absl::StrCat(path, " is in use (a mount point)"));
    return LastErrnoStatus(absl::StrCat("remove ", path));
  }
  return Status();
}

}  // namespace vdisk::fs
