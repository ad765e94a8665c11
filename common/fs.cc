#include "common/fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace vdisk::fs {

namespace {
std::string DirName(const std::string& path) {
  auto pos = path.find_last_of('/');
  if (pos == std::string::npos) return ".";
  if (pos == 0) return "/";
  return path.substr(0, pos);
}

std::string Normalize(const std::string& path) {
  std::vector<std::string> parts;
  for (auto piece : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    if (piece == ".") continue;
    if (piece == "..") {
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    parts.emplace_back(piece);
  }
  std::string out = path.starts_with('/') ? "/" : "";
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out += '/';
    out += parts[i];
  }
  return out.empty() ? "." : out;
}
}  // namespace

Status SyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return LastErrnoStatus(absl::StrCat("open dir ", dir));
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return ErrnoStatus(err, absl::StrCat("fsync dir ", dir));
  return Status();
}

Status WriteFileAtomic(const std::string& path, std::string_view data, int mode) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string tmp = absl::StrCat(path, ".tmp.", ::getpid(), ".", rng() % 1000000);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return LastErrnoStatus(absl::StrCat("create ", tmp));
  const char* p = data.data();
  size_t left = data.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return ErrnoStatus(err, absl::StrCat("write ", tmp));
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return ErrnoStatus(err, absl::StrCat("fsync ", tmp));
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return ErrnoStatus(err, absl::StrCat("rename ", tmp, " -> ", path));
  }
  return SyncDir(DirName(path));
}

StatusOr<std::string> ReadFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return LastErrnoStatus(absl::StrCat("open ", path));
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return ErrnoStatus(err, absl::StrCat("read ", path));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

Status MakeDirs(const std::string& path, int mode) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return ErrnoStatus(ec.value(), absl::StrCat("mkdir ", path));
  ::chmod(path.c_str(), mode);
  return Status();
}

StatusOr<std::string> JoinUnder(const std::string& root, std::string_view name) {
  if (name.empty()) return absl::InvalidArgumentError("empty path component");
  if (name.find('\0') != std::string_view::npos)
    return absl::InvalidArgumentError("path contains NUL");
  if (name.front() == '/') return absl::InvalidArgumentError(absl::StrCat("absolute path not allowed: ", std::string(name)));
  for (auto piece : absl::StrSplit(std::string(name), '/')) {
    if (piece.empty() || piece == "." || piece == "..")
      return absl::InvalidArgumentError(absl::StrCat("path escapes its root: ", std::string(name)));
  }
  std::string r = root;
  while (r.size() > 1 && r.back() == '/') r.pop_back();
  return absl::StrCat(r, "/", std::string(name));
}

bool IsUnder(const std::string& root, const std::string& path) {
  std::string r = Normalize(root);
  std::string p = Normalize(path);
  if (r == "/") return p.starts_with('/');
  return p == r || (p.size() > r.size() && p.starts_with(r) && p[r.size()] == '/');
}

Status RemoveAll(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec && ec.value() != ENOENT) return ErrnoStatus(ec.value(), absl::StrCat("remove ", path));
  return Status();
}

}  // namespace vdisk::fs
