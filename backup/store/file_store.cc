#include "backup/store/file_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <random>

#include "absl/strings/str_cat.h"
#include "common/fs.h"

namespace vdisk::backup {

namespace {

namespace stdfs = std::filesystem;

bool IsTempName(const std::string& name) { return name.find(".tmp.") != std::string::npos; }

std::string ParentDir(const std::string& path) {
  auto pos = path.find_last_of('/');
  return pos == std::string::npos ? "." : path.substr(0, pos);
}

Status WriteAll(int fd, std::string_view data, const std::string& what) {
  const char* p = data.data();
  size_t left = data.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return LastErrnoStatus(absl::StrCat("write ", what));
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  return Status();
}

class FileWriter : public ObjectWriter {
 public:
  FileWriter(int fd, std::string tmp, std::string final_path)
      : fd_(fd), tmp_(std::move(tmp)), final_(std::move(final_path)) {}
  ~FileWriter() override { Abort(); }

  Status Append(std::string_view data) override {
    if (fd_ < 0) return absl::FailedPreconditionError("writer already finished");
    RETURN_IF_ERROR(WriteAll(fd_, data, tmp_));
    size_ += data.size();
    return Status();
  }

  Status Commit() override {
    if (fd_ < 0) return absl::FailedPreconditionError("writer already finished");
    if (::fsync(fd_) != 0) {
      Status s = LastErrnoStatus(absl::StrCat("fsync ", tmp_));
      Abort();
      return s;
    }
    ::close(fd_);
    fd_ = -1;
    if (::rename(tmp_.c_str(), final_.c_str()) != 0) {
      Status s = LastErrnoStatus(absl::StrCat("rename ", tmp_));
      ::unlink(tmp_.c_str());
      return s;
    }
    return fs::SyncDir(ParentDir(final_));
  }

  void Abort() override {
    if (fd_ >= 0) {
      ::close(fd_);
      fd_ = -1;
      ::unlink(tmp_.c_str());
    }
  }

  uint64_t size() const override { return size_; }

 private:
  int fd_;
  std::string tmp_, final_;
  uint64_t size_ = 0;
};

class FileStore : public ObjectStore {
 public:
  explicit FileStore(std::string root) : root_(std::move(root)) {}

  std::string describe() const override { return "file://" + root_; }

  Status Check() override {
    struct stat st;
    if (::stat(root_.c_str(), &st) != 0) {
      if (errno == ENOENT)
        return absl::NotFoundError(absl::StrCat("repository directory ", root_, " does not exist"));
      return LastErrnoStatus(absl::StrCat("stat ", root_));
    }
    if (!S_ISDIR(st.st_mode))
      return absl::FailedPreconditionError(absl::StrCat(root_, " is not a directory"));
    return Status();
  }

  Status CreateRoot() override { return fs::MakeDirs(root_, 0700); }

  Status Put(const std::string& key, std::string_view data) override {
    ASSIGN_OR_RETURN(std::string path, Path(key));
    RETURN_IF_ERROR(fs::MakeDirs(ParentDir(path), 0700));
    return fs::WriteFileAtomic(path, data, 0600);
  }

  StatusOr<std::string> Get(const std::string& key) override {
    ASSIGN_OR_RETURN(std::string path, Path(key));
    auto data = fs::ReadFile(path);
    if (!data.ok() && data.status().code() == absl::StatusCode::kNotFound)
      return absl::NotFoundError(absl::StrCat("object '", key, "' not found in ", describe()));
    return data;
  }

  StatusOr<std::string> GetRange(const std::string& key, uint64_t offset,
                                 uint64_t length) override {
    ASSIGN_OR_RETURN(std::string path, Path(key));
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT)
        return absl::NotFoundError(absl::StrCat("object '", key, "' not found in ", describe()));
      return LastErrnoStatus(absl::StrCat("open ", path));
    }
    std::string out(length, '\0');
    uint64_t done = 0;
    while (done < length) {
      ssize_t n = ::pread(fd, out.data() + done, length - done, static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        Status s = LastErrnoStatus(absl::StrCat("read ", path));
        ::close(fd);
        return s;
      }
      if (n == 0) break;
      done += static_cast<uint64_t>(n);
    }
    ::close(fd);
    if (done != length)
      return absl::OutOfRangeError(absl::StrCat("object '", key, "': range ", offset, "+", length,
                                                " past its end (read ", done, ")"));
    return out;
  }

  StatusOr<uint64_t> Size(const std::string& key) override {
    ASSIGN_OR_RETURN(std::string path, Path(key));
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) {
      if (errno == ENOENT)
        return absl::NotFoundError(absl::StrCat("object '", key, "' not found in ", describe()));
      return LastErrnoStatus(absl::StrCat("stat ", path));
    }
    return static_cast<uint64_t>(st.st_size);
  }

  StatusOr<std::vector<StoredObject>> List(const std::string& prefix) override {
    std::string dir_key = prefix.substr(0, prefix.find_last_of('/') == std::string::npos
                                               ? 0
                                               : prefix.find_last_of('/'));
    std::string dir = root_;
    if (!dir_key.empty()) {
      ASSIGN_OR_RETURN(dir, Path(dir_key));
    }
    std::vector<StoredObject> out;
    std::error_code ec;
    if (!stdfs::exists(dir, ec)) return out;
    for (auto it = stdfs::recursive_directory_iterator(dir, ec);
         !ec && it != stdfs::recursive_directory_iterator(); it.increment(ec)) {
      if (!it->is_regular_file(ec)) continue;
      std::string path = it->path().string();
      if (IsTempName(path)) continue;
      std::string key = path.substr(root_.size() + 1);
      if (!key.starts_with(prefix)) continue;
      out.push_back({key, static_cast<uint64_t>(it->file_size(ec))});
    }
    if (ec) return ErrnoStatus(ec.value(), absl::StrCat("list ", dir));
    std::sort(out.begin(), out.end(),
              [](const StoredObject& a, const StoredObject& b) { return a.key < b.key; });
    return out;
  }

  Status Delete(const std::string& key) override {
    ASSIGN_OR_RETURN(std::string path, Path(key));
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
      return LastErrnoStatus(absl::StrCat("unlink ", path));
    return Status();
  }

  StatusOr<std::unique_ptr<ObjectWriter>> Create(const std::string& key,
                                                 uint64_t size_hint) override {
    ASSIGN_OR_RETURN(std::string path, Path(key));
    RETURN_IF_ERROR(fs::MakeDirs(ParentDir(path), 0700));
    thread_local std::mt19937_64 rng{std::random_device{}()};
    std::string tmp = absl::StrCat(path, ".tmp.", ::getpid(), ".", rng() % 100000000);
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return LastErrnoStatus(absl::StrCat("create ", tmp));
    return std::unique_ptr<ObjectWriter>(new FileWriter(fd, tmp, path));
  }

  StatusOr<int> AbortStaleUploads(const std::string& prefix, std::chrono::seconds age) override {
    int removed = 0;
    std::error_code ec;
    const auto now = stdfs::file_time_type::clock::now();
    std::string dir = root_;
    if (!prefix.empty()) {
      ASSIGN_OR_RETURN(dir, Path(prefix.ends_with('/') ? prefix.substr(0, prefix.size() - 1)
                                                         : prefix));
    }
    if (!stdfs::exists(dir, ec)) return 0;
    std::vector<std::string> stale;
    for (auto it = stdfs::recursive_directory_iterator(dir, ec);
         !ec && it != stdfs::recursive_directory_iterator(); it.increment(ec)) {
      if (!it->is_regular_file(ec) || !IsTempName(it->path().string())) continue;
      auto mtime = it->last_write_time(ec);
      if (!ec && now - mtime >= age) stale.push_back(it->path().string());
    }
    for (const auto& p : stale)
      if (::unlink(p.c_str()) == 0) ++removed;
    return removed;
  }

  unsigned parallelism() const override { return 4; }

 private:
  StatusOr<std::string> Path(const std::string& key) const { return fs::JoinUnder(root_, key); }

  std::string root_;
};

}  // namespace

StatusOr<std::unique_ptr<ObjectStore>> OpenFileStore(const std::string& root) {
  if (root.empty() || root[0] != '/')
    return absl::InvalidArgumentError(
        absl::StrCat("file repository path must be absolute: '", root, "'"));
  std::string r = root;
  while (r.size() > 1 && r.back() == '/') r.pop_back();
  return std::unique_ptr<ObjectStore>(new FileStore(r));
}

}  // namespace vdisk::backup
