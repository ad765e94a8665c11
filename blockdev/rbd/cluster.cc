#include "blockdev/rbd/cluster.h"

#include <cerrno>
#include <cstring>
#include <mutex>
#include <vector>

#include "absl/strings/str_cat.h"
#include "blockdev/credential_digest.h"
#include "spdlog/spdlog.h"

namespace vdisk::blockdev::rbd {

Status RadosError(int r, const std::string& what) { return ErrnoStatus(r < 0 ? -r : r, what); }

namespace {

Status SetConf(rados_t h, const std::string& key, const std::string& value, bool secret) {
  int r = rados_conf_set(h, key.c_str(), value.c_str());
  if (r < 0)
    return absl::InvalidArgumentError(
        absl::StrCat("ceph option ", key, "=", secret ? std::string("***") : value,
                     " rejected: ", std::strerror(-r)));
  return Status();
}

// The live connections, by everything that makes one differ (the cephx key only as a keyed
// digest: the map must not keep a secret after its connection is gone). Entries of closed
// connections are dropped at the next Connect().
struct Connections {
  std::mutex mu;  // held across a connect, so two callers never race to make the same client
  std::map<std::string, std::weak_ptr<Cluster>> live;
};
Connections& LiveConnections() {
  static auto* c = new Connections();  // never destroyed: Clusters may outlive static teardown
  return *c;
}

std::string ConnectionKey(const ClusterOptions& o) {
  std::string k;
  for (const std::string* part : {&o.conf, &o.mon_host, &o.user, &o.keyring})
    absl::StrAppend(&k, part->size(), ":", *part, ";");
  absl::StrAppend(&k, CredentialDigest({o.key}), ";");
  absl::StrAppend(&k, o.connect_timeout_s, ";", o.op_timeout_s, ";");
  for (const auto& [name, value] : o.config) absl::StrAppend(&k, name, "=", value, ";");
  return k;
}

}  // namespace

StatusOr<std::shared_ptr<Cluster>> Cluster::Connect(const ClusterOptions& o) {
  if (o.conf.empty() && o.mon_host.empty())
    return absl::InvalidArgumentError(
        "ceph cluster: set a config file (conf=) or monitors (mon_host=)");
  Connections& live = LiveConnections();
  const std::string key = ConnectionKey(o);
  std::lock_guard lock(live.mu);
  if (auto it = live.live.find(key); it != live.live.end()) {
    if (auto c = it->second.lock()) return c;
  }
  std::erase_if(live.live, [](const auto& entry) { return entry.second.expired(); });
  ASSIGN_OR_RETURN(std::shared_ptr<Cluster> c, ConnectNew(o));
  live.live[key] = c;
  return c;
}

StatusOr<std::shared_ptr<Cluster>> Cluster::ConnectNew(const ClusterOptions& o) {
  std::shared_ptr<Cluster> c(new Cluster());
  int r = rados_create(&c->handle_, o.user.empty() ? nullptr : o.user.c_str());
  if (r < 0) return RadosError(r, "rados_create");
  rados_t h = c->handle_;

  // Quiet, self-contained client: no admin socket, no log file, nothing on our stderr.
  for (const auto& [k, v] : std::map<std::string, std::string>{
           {"log_to_stderr", "false"}, {"err_to_stderr", "false"}, {"log_file", ""},
           {"admin_socket", ""}}) {
    RETURN_IF_ERROR(SetConf(h, k, v, false));
  }
  if (!o.conf.empty()) {
    r = rados_conf_read_file(h, o.conf.c_str());
    if (r < 0) return RadosError(r, absl::StrCat("reading ceph config ", o.conf));
    // The conf file may turn these back on; keep the client quiet and socket-free.
    RETURN_IF_ERROR(SetConf(h, "log_to_stderr", "false", false));
    RETURN_IF_ERROR(SetConf(h, "err_to_stderr", "false", false));
    RETURN_IF_ERROR(SetConf(h, "admin_socket", "", false));
    RETURN_IF_ERROR(SetConf(h, "log_to_file", "false", false));
  }
  if (!o.mon_host.empty()) RETURN_IF_ERROR(SetConf(h, "mon_host", o.mon_host, false));
  // Exactly the key given: a key or keyfile from the conf file's [client] sections must not
  // take precedence over it (cephx reads key, then keyfile, then keyring).
  if (!o.key.empty()) {
    RETURN_IF_ERROR(SetConf(h, "keyfile", "", false));
    RETURN_IF_ERROR(SetConf(h, "key", o.key, true));
  } else if (!o.keyring.empty()) {
    RETURN_IF_ERROR(SetConf(h, "key", "", true));
    RETURN_IF_ERROR(SetConf(h, "keyfile", "", false));
    RETURN_IF_ERROR(SetConf(h, "keyring", o.keyring, false));
  }
  RETURN_IF_ERROR(SetConf(h, "client_mount_timeout", std::to_string(o.connect_timeout_s), false));
  RETURN_IF_ERROR(SetConf(h, "rados_mon_op_timeout", std::to_string(o.connect_timeout_s * 3), false));
  RETURN_IF_ERROR(SetConf(h, "rados_osd_op_timeout", std::to_string(o.op_timeout_s), false));
  // Discards must zero exactly what they cover (blockdev::IoQueue::discard): librbd skips
  // partial-object discards by default.
  RETURN_IF_ERROR(SetConf(h, "rbd_skip_partial_discard", "false", false));
  // Writes from the caller's buffer without a copy: blockdev::IoQueue keeps a buffer valid until
  // its callback, and librbd completes a zero-copy write only once it no longer references the
  // buffer (and copies anyway while a writeback cache is on). The copy was ~18% of the CPU of a
  // 1 MiB write stream (perf, bench/RESULTS.md rbd 2026-12-06); rbd bench never copies.
  RETURN_IF_ERROR(SetConf(h, "rbd_disable_zero_copy_writes", "false", false));
  for (const auto& [k, v] : o.config) RETURN_IF_ERROR(SetConf(h, k, v, false));

  c->user_ = o.user.empty() ? "admin" : o.user;

  r = rados_connect(h);
  if (r < 0) {
    std::string who = absl::StrCat("ceph cluster (",
                                   o.mon_host.empty() ? absl::StrCat("conf ", o.conf)
                                                      : absl::StrCat("mon_host ", o.mon_host),
                                   ") as client.", c->user_);
    if (r == -EACCES || r == -EPERM)
      return absl::PermissionDeniedError(
          absl::StrCat(who, ": authentication refused (wrong user or key)"));
    if (r == -ETIMEDOUT || r == -ENOTCONN || r == -ECONNREFUSED)
      return absl::UnavailableError(absl::StrCat(who, ": no monitor answered within ",
                                                 o.connect_timeout_s, " s"));
    if (r == -ENOENT)
      return absl::InvalidArgumentError(
          absl::StrCat(who, ": no key for this user (no keyring / key given?)"));
    if (r == -EINVAL)
      return absl::InvalidArgumentError(
          absl::StrCat(who, ": bad monitor address or key format (", std::strerror(-r), ")"));
    return RadosError(r, absl::StrCat("connecting to ", who));
  }
  char fsid[64] = {};
  if (rados_cluster_fsid(h, fsid, sizeof fsid) >= 0) c->fsid_ = fsid;
  return c;
}

Cluster::~Cluster() {
  if (handle_) rados_shutdown(handle_);
}

std::string Cluster::describe() const { return absl::StrCat("ceph ", fsid_, " as client.", user_); }

StatusOr<std::string> Cluster::MonCommand(const std::string& json_cmd) {
  const char* cmd[] = {json_cmd.c_str()};
  char* out = nullptr;
  size_t out_len = 0;
  char* status = nullptr;
  size_t status_len = 0;
  int r = rados_mon_command(handle_, cmd, 1, "", 0, &out, &out_len, &status, &status_len);
  std::string result(out ? out : "", out ? out_len : 0);
  std::string status_text(status ? status : "", status ? status_len : 0);
  if (out) rados_buffer_free(out);
  if (status) rados_buffer_free(status);
  if (r < 0) return RadosError(r, absl::StrCat("mon command ", json_cmd, ": ", status_text));
  return result;
}

StatusOr<IoCtx> IoCtx::Open(std::shared_ptr<Cluster> cluster, const std::string& pool) {
  IoCtx io;
  int r = rados_ioctx_create(cluster->handle(), pool.c_str(), &io.io_);
  if (r == -ENOENT)
    return absl::InvalidArgumentError(
        absl::StrCat("rados pool '", pool, "' does not exist in ", cluster->describe()));
  if (r < 0) return RadosError(r, absl::StrCat("opening rados pool '", pool, "'"));
  io.cluster_ = std::move(cluster);
  io.pool_ = pool;
  return io;
}

namespace {
// Moves `img`, open at its head, to snapshot `snap` (nothing for an empty `snap`).
Status SetSnap(Image& img, const std::string& snap, const std::string& what) {
  if (snap.empty()) return absl::OkStatus();
  if (int r = rbd_snap_set(img.get(), snap.c_str()); r < 0)
    return RadosError(r, absl::StrCat("moving rbd image ", what, " to snapshot ", snap));
  return absl::OkStatus();
}
}  // namespace

StatusOr<Image> Image::OpenById(const IoCtx& io, const std::string& image_id,
                                const std::string& snap, bool read_only) {
  Image img;
  const std::string what = absl::StrCat("id ", io.pool(), "/", image_id);
  int r = read_only || !snap.empty()
              ? rbd_open_by_id_read_only(io.get(), image_id.c_str(), &img.image_, nullptr)
              : rbd_open_by_id(io.get(), image_id.c_str(), &img.image_, nullptr);
  if (r < 0) return RadosError(r, absl::StrCat("opening rbd image ", what));
  RETURN_IF_ERROR(SetSnap(img, snap, what));
  return img;
}

StatusOr<Image> Image::OpenByName(const IoCtx& io, const std::string& name,
                                  const std::string& snap, bool read_only) {
  Image img;
  const std::string what = absl::StrCat(io.pool(), "/", name);
  int r = read_only || !snap.empty()
              ? rbd_open_read_only(io.get(), name.c_str(), &img.image_, nullptr)
              : rbd_open(io.get(), name.c_str(), &img.image_, nullptr);
  if (r < 0) return RadosError(r, absl::StrCat("opening rbd image ", what));
  RETURN_IF_ERROR(SetSnap(img, snap, what));
  return img;
}

}  // namespace vdisk::blockdev::rbd
