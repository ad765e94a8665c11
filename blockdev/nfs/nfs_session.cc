#include "blockdev/nfs/nfs_session.h"

// libnfs.h first: the raw headers use its EXTERN.
#include <nfsc/libnfs.h>

#include <nfsc/libnfs-raw.h>
#include <nfsc/libnfs-raw-mount.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "blockdev/nfs/nfs_handle.h"

namespace vdisk::blockdev::nfs {

namespace {

std::string ContextError(nfs_context* ctx) {
  const char* e = nfs_get_error(ctx);
  return e && *e ? std::string(e) : std::string("no detail");
}

// Exports the server's MOUNT service lists (MOUNTPROC3_EXPORT), for telling "no such export"
// from "not allowed" (servers answer MNT3ERR_ACCES for both).
StatusOr<std::vector<std::string>> ListExports(const NfsTarget& t, int timeout_ms) {
  struct State {
    bool connected = false, done = false;
    std::string error;
    std::vector<std::string> exports;
  } st;
  rpc_context* rpc = rpc_init_context();
  if (!rpc) return absl::ResourceExhaustedError("rpc_init_context failed");
  auto on_export = [](rpc_context*, int status, void* data, void* priv) {
    auto* s = static_cast<State*>(priv);
    s->done = true;
    if (status != RPC_STATUS_SUCCESS) {
      s->error = status == RPC_STATUS_ERROR && data ? static_cast<const char*>(data) : "failed";
      return;
    }
    for (exportnode* e = *static_cast<exports*>(data); e; e = e->ex_next)
      if (e->ex_dir) s->exports.emplace_back(e->ex_dir);
  };
  auto on_connect = [](rpc_context*, int status, void* data, void* priv) {
    auto* s = static_cast<State*>(priv);
    if (status != RPC_STATUS_SUCCESS) {
      s->done = true;
      s->error = data ? static_cast<const char*>(data) : "connect failed";
      return;
    }
    s->connected = true;
  };
  int rc = t.mount_port
               ? rpc_connect_port_async(rpc, t.server.c_str(), t.mount_port, MOUNT_PROGRAM,
                                        MOUNT_V3, on_connect, &st)
               : rpc_connect_program_async(rpc, t.server.c_str(), MOUNT_PROGRAM, MOUNT_V3,
                                           on_connect, &st);
  bool sent = false;
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(std::max(timeout_ms, 1000));
  while (rc == 0 && !st.done) {
    if (st.connected && !sent) {
      if (rpc_mount3_export_async(rpc, on_export, &st) != 0) break;
      sent = true;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      st.error = "timed out";
      break;
    }
    struct pollfd pfd = {rpc_get_fd(rpc), static_cast<short>(rpc_which_events(rpc)), 0};
    if (::poll(&pfd, 1, 100) < 0 && errno != EINTR) break;
    if (rpc_service(rpc, pfd.revents) < 0) {
      st.error = rpc_get_error(rpc) ? rpc_get_error(rpc) : "rpc_service failed";
      break;
    }
  }
  rpc_destroy_context(rpc);
  if (rc != 0 || !st.done || !st.error.empty())
    return absl::UnavailableError(absl::StrCat("listing the exports of ", t.server, ": ",
                                               st.error.empty() ? "failed" : st.error));
  return st.exports;
}

Status MountError(const NfsTarget& t, int rc, const std::string& detail, int timeout_ms) {
  const std::string where = absl::StrCat("mounting ", t.Describe());
  if (detail.find("MNT3ERR_NOENT") != std::string::npos)
    return absl::NotFoundError(absl::StrCat(where, ": the server has no such export (", detail,
                                            ")"));
  if (detail.find("MNT3ERR_ACCES") != std::string::npos || rc == -EACCES ||
      detail.find("MNT3ERR_PERM") != std::string::npos) {
    // Servers answer ACCES both for an unknown export and for a host not in its client list;
    // ganesha also hides exports a host may not mount from the export list. Listed: this host
    // is refused. Not listed (and no listed export contains it): unknown to this host.
    auto exports = ListExports(t, timeout_ms);
    bool listed = false;
    if (exports.ok())
      for (const auto& e : *exports)
        if (e == t.export_path || e == "/" || t.export_path.starts_with(e + "/")) listed = true;
    if (exports.ok() && !listed)
      return absl::NotFoundError(absl::StrCat(
          where, ": the server does not export ", t.export_path,
          " to this host (no such export, or this host is not in its client list; it exports: ",
          exports->empty() ? std::string("nothing") : absl::StrJoin(*exports, ", "), ")"));
    return absl::PermissionDeniedError(absl::StrCat(
        where, ": the server refuses this host (", detail,
        "); check the export's client list and access type"));
  }
  if (detail.find("MNT3ERR_") != std::string::npos)
    return absl::FailedPreconditionError(absl::StrCat(where, ": ", detail));
  return absl::UnavailableError(absl::StrCat(where, ": the server does not answer (", detail,
                                             ")"));
}

}  // namespace

bool FileAttr::is_dir() const { return S_ISDIR(mode); }
bool FileAttr::is_regular() const { return S_ISREG(mode); }

StatusOr<nfs_context*> MountContext(const NfsTarget& target, int timeout_ms) {
  RETURN_IF_ERROR(ValidateTarget(target));
  nfs_context* ctx = nfs_init_context();
  if (!ctx) return absl::ResourceExhaustedError("nfs_init_context failed");
  const std::string url = target.LibnfsUrl();
  nfs_url* parsed = nfs_parse_url_dir(ctx, url.c_str());
  if (!parsed) {
    Status s = absl::InvalidArgumentError(
        absl::StrCat("libnfs rejects ", url, ": ", ContextError(ctx)));
    nfs_destroy_context(ctx);
    return s;
  }
  if (timeout_ms > 0) nfs_set_timeout(ctx, (timeout_ms + 999) / 1000 * 1000);
  // Every context starts its RPC ids at the same value within a second; a server's duplicate
  // request cache (keyed by id and client address) could then take a new connection's first
  // calls for replays of another's. Start each one somewhere random.
  rpc_set_next_xid(nfs_get_rpc_context(ctx), static_cast<uint32_t>(std::random_device{}()));
  // Give up on an unreachable host after ~7 s of SYN retries instead of the kernel's ~2 min.
  nfs_set_tcp_syncnt(ctx, 3);
  nfs_set_dircache(ctx, 0);  // other processes change directories (controller, nodes)
  // libnfs' own tracing on stderr, for operators chasing a server problem.
  if (const char* debug = std::getenv("VDISK_LIBNFS_DEBUG"); debug && *debug)
    nfs_set_debug(ctx, std::atoi(debug));
  int rc = nfs_mount(ctx, parsed->server, parsed->path);
  nfs_destroy_url(parsed);
  if (rc != 0) {
    Status s = MountError(target, rc, ContextError(ctx), timeout_ms);
    nfs_destroy_context(ctx);
    return s;
  }
  // libnfs 4.0 reconnects by itself but keeps half-read reply state across the new connection
  // (fixed upstream later: sahlberg/libnfs#424, #497), which can loop forever after a server
  // restart. Users of a context reconnect themselves: a Session makes a new one, a queue too.
  nfs_set_autoreconnect(ctx, 0);
  return ctx;
}

StatusOr<std::unique_ptr<Session>> Session::Connect(const NfsTarget& target, int timeout_ms) {
  ASSIGN_OR_RETURN(nfs_context * ctx, MountContext(target, timeout_ms));
  return std::unique_ptr<Session>(new Session(target, ctx, timeout_ms));
}

Session::~Session() {
  if (ctx_) nfs_destroy_context(ctx_);
}

Status Session::EnsureConnected() {
  if (ctx_) {
    // A server restart closes the connection; notice it before sending on a dead socket.
    struct pollfd p = {nfs_get_fd(ctx_), POLLRDHUP, 0};
    if (p.fd < 0 || (::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)))) {
      nfs_destroy_context(ctx_);
      ctx_ = nullptr;
    }
  }
  if (!ctx_) {
    ASSIGN_OR_RETURN(ctx_, MountContext(target_, timeout_ms_));
  }
  return Status();
}

Status Session::Error(int rc, const std::string& what) {
  std::string detail = ContextError(ctx_);
  int err = rc < 0 ? -rc : EIO;
  // libnfs reports a lost connection / timeout as EFAULT / EINTR / EIO with RPC text: the
  // connection is dropped, and the next call makes a new one.
  if (err == EFAULT || err == EINTR || detail.find("timed out") != std::string::npos ||
      detail.find("Command was cancelled") != std::string::npos ||
      detail.find("nfs_service failed") != std::string::npos) {
    nfs_destroy_context(ctx_);
    ctx_ = nullptr;
    return absl::UnavailableError(
        absl::StrCat(target_.Describe(), ": ", what, ": no answer from the server (", detail, ")"));
  }
  Status s = ErrnoStatus(err, absl::StrCat(target_.Describe(), ": ", what));
  return Status(s.code(), absl::StrCat(s.message(), " [", detail, "]"));
}

StatusOr<FileAttr> Session::Stat(const std::string& path) {
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(EnsureConnected());
  struct nfs_stat_64 st {};
  int rc = nfs_stat64(ctx_, path.c_str(), &st);
  if (rc != 0) return Error(rc, absl::StrCat("stat ", path));
  FileAttr a;
  a.size = st.nfs_size;
  a.used = st.nfs_used;
  a.mode = static_cast<uint32_t>(st.nfs_mode);
  a.inode = st.nfs_ino;
  a.mtime_ns = static_cast<int64_t>(st.nfs_mtime) * 1000000000 +
               static_cast<int64_t>(st.nfs_mtime_nsec);
  return a;
}

StatusOr<std::optional<FileAttr>> Session::StatIfExists(const std::string& path) {
  auto a = Stat(path);
  if (a.ok()) return std::optional<FileAttr>(*a);
  if (absl::IsNotFound(a.status())) return std::optional<FileAttr>();
  return a.status();
}

StatusOr<FsSpace> Session::StatFs(const std::string& path) {
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(EnsureConnected());
  struct nfs_statvfs_64 sv {};
  int rc = nfs_statvfs64(ctx_, path.c_str(), &sv);
  if (rc != 0) return Error(rc, absl::StrCat("fsstat ", path));
  FsSpace s;
  const uint64_t unit = sv.f_frsize ? sv.f_frsize : sv.f_bsize;
  s.total_bytes = sv.f_blocks * unit;
  s.free_bytes = sv.f_bfree * unit;
  s.available_bytes = sv.f_bavail * unit;
  return s;
}

Status Session::Mkdir(const std::string& path, int mode) {
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(EnsureConnected());
  int rc = nfs_mkdir2(ctx_, path.c_str(), mode);
  if (rc != 0) return Error(rc, absl::StrCat("mkdir ", path));
  return Status();
}

Status Session::MkdirAll(const std::string& path, int mode) {
  if (path.empty() || path == "/") return Status();
  auto st = StatIfExists(path);
  if (!st.ok()) return st.status();
  if (*st) {
    if ((*st)->is_dir()) return Status();
    return absl::FailedPreconditionError(
        absl::StrCat(target_.Describe(), ": ", path, " exists and is not a directory"));
  }
  auto slash = path.rfind('/');
  if (slash > 0) RETURN_IF_ERROR(MkdirAll(path.substr(0, slash), mode));
  Status s = Mkdir(path, mode);
  if (absl::IsAlreadyExists(s)) return Status();  // a concurrent creator
  return s;
}

Status Session::CreateExclusive(const std::string& path, int mode) {
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(EnsureConnected());
  struct nfsfh* fh = nullptr;
  int rc = nfs_create(ctx_, path.c_str(), O_RDWR | O_CREAT | O_EXCL, mode, &fh);
  if (rc != 0) return Error(rc, absl::StrCat("create ", path));
  nfs_close(ctx_, fh);
  return Status();
}

Status Session::Truncate(const std::string& path, uint64_t size) {
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(EnsureConnected());
  int rc = nfs_truncate(ctx_, path.c_str(), size);
  if (rc != 0) return Error(rc, absl::StrCat("truncate ", path, " to ", size));
  return Status();
}

Status Session::Chmod(const std::string& path, int mode) {
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(EnsureConnected());
  int rc = nfs_chmod(ctx_, path.c_str(), mode);
  if (rc != 0) return Error(rc, absl::StrCat("chmod ", path));
  return Status();
}

Status Session::Rename(const std::string& from, const std::string& to) {
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(EnsureConnected());
  int rc = nfs_rename(ctx_, from.c_str(), to.c_str());
  if (rc != 0) return Error(rc, absl::StrCat("rename ", from, " to ", to));
  return Status();
}

Status Session::Link(const std::string& from, const std::string& to) {
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(EnsureConnected());
  int rc = nfs_link(ctx_, from.c_str(), to.c_str());
  if (rc != 0) return Error(rc, absl::StrCat("link ", from, " to ", to));
  return Status();
}

Status Session::Touch(const std::string& path) {
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(EnsureConnected());
  int rc = nfs_utimes(ctx_, path.c_str(), nullptr);  // NULL: the server's time
  if (rc != 0) return Error(rc, absl::StrCat("touch ", path));
  return Status();
}

Status Session::Unlink(const std::string& path) {
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(EnsureConnected());
  int rc = nfs_unlink(ctx_, path.c_str());
  if (rc != 0) return Error(rc, absl::StrCat("remove ", path));
  return Status();
}

Status Session::Rmdir(const std::string& path) {
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(EnsureConnected());
  int rc = nfs_rmdir(ctx_, path.c_str());
  if (rc != 0) return Error(rc, absl::StrCat("rmdir ", path));
  return Status();
}

StatusOr<std::vector<std::string>> Session::List(const std::string& dir) {
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(EnsureConnected());
  struct nfsdir* d = nullptr;
  int rc = nfs_opendir(ctx_, dir.c_str(), &d);
  if (rc != 0) return Error(rc, absl::StrCat("list ", dir));
  std::vector<std::string> out;
  while (struct nfsdirent* e = nfs_readdir(ctx_, d)) {
    std::string n = e->name;
    if (n != "." && n != "..") out.push_back(std::move(n));
  }
  nfs_closedir(ctx_, d);
  std::sort(out.begin(), out.end());
  return out;
}

Status Session::RemoveAll(const std::string& path) {
  return RemoveTree(path, 0);
}

Status Session::RemoveTree(const std::string& path, int depth) {
  if (depth > 16)
    return absl::FailedPreconditionError(absl::StrCat("remove ", path, ": tree too deep"));
  if (path.empty() || path == "/")
    return absl::InvalidArgumentError("refusing to remove the export's root");
  ASSIGN_OR_RETURN(auto st, StatIfExists(path));
  if (!st) return Status();
  if (st->is_dir()) {
    ASSIGN_OR_RETURN(auto names, List(path));
    for (const auto& n : names) RETURN_IF_ERROR(RemoveTree(JoinPath(path, n), depth + 1));
    Status s = Rmdir(path);
    return absl::IsNotFound(s) ? Status() : s;
  }
  Status s = Unlink(path);
  return absl::IsNotFound(s) ? Status() : s;
}

StatusOr<std::string> Session::ReadFile(const std::string& path, size_t max_bytes) {
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(EnsureConnected());
  struct nfsfh* fh = nullptr;
  int rc = nfs_open(ctx_, path.c_str(), O_RDONLY, &fh);
  if (rc != 0) return Error(rc, absl::StrCat("open ", path));
  std::string out;
  Status status;
  std::vector<char> buf(64 * 1024);
  for (;;) {
    int n = nfs_pread(ctx_, fh, out.size(), buf.size(), buf.data());
    if (n < 0) {
      status = Error(n, absl::StrCat("read ", path));
      break;
    }
    if (n == 0) break;
    out.append(buf.data(), static_cast<size_t>(n));
    if (out.size() > max_bytes) {
      status = absl::OutOfRangeError(
          absl::StrCat(target_.Describe(), ": ", path, " is larger than ", max_bytes, " bytes"));
      break;
    }
  }
  nfs_close(ctx_, fh);
  if (!status.ok()) return status;
  return out;
}

Status Session::WriteFile(const std::string& path, const std::string& data, int mode) {
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(EnsureConnected());
  struct nfsfh* fh = nullptr;
  int rc = nfs_create(ctx_, path.c_str(), O_RDWR | O_CREAT | O_TRUNC, mode, &fh);
  if (rc != 0) return Error(rc, absl::StrCat("create ", path));
  Status status;
  size_t done = 0;
  while (done < data.size()) {
    int n = nfs_pwrite(ctx_, fh, done, data.size() - done, const_cast<char*>(data.data() + done));
    if (n <= 0) {
      status = Error(n == 0 ? -EIO : n, absl::StrCat("write ", path));
      break;
    }
    done += static_cast<size_t>(n);
  }
  if (status.ok()) {
    rc = nfs_fsync(ctx_, fh);  // COMMIT
    if (rc != 0) status = Error(rc, absl::StrCat("commit ", path));
  }
  rc = nfs_close(ctx_, fh);
  if (status.ok() && rc != 0) status = Error(rc, absl::StrCat("close ", path));
  return status;
}

StatusOr<std::string> Session::FileHandle(const std::string& path) {
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(EnsureConnected());
  struct nfsfh* fh = nullptr;
  int rc = nfs_open(ctx_, path.c_str(), O_RDONLY, &fh);
  if (rc != 0) return Error(rc, absl::StrCat("open ", path));
  auto bytes = HandleBytes(fh);
  nfs_close(ctx_, fh);
  if (!bytes.ok()) return Annotate(bytes.status(), absl::StrCat(target_.Describe(), ": ", path));
  return bytes;
}

}  // namespace vdisk::blockdev::nfs
