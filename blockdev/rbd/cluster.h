// A connection to one Ceph cluster (librados), and RAII handles for the librados / librbd
// objects the RBD backend uses.
//
// Cluster::Connect() reads the given ceph.conf (or none), applies the monitors and cephx
// credentials, and connects with a bounded wait. A Cluster is thread-safe and shared (via
// shared_ptr) by the pool and every Device opened from it; librados shuts down when the last
// owner goes. Connect() hands out the live connection for the same options if there is one
// (one rados client per cluster and user per process, as ceph-csi's connection pool): a
// client per pool or device would repeat the monitor handshake and multiply librados'
// threads, and librbd 16 has been seen to crash when many short-lived clients come and go
// in one process. Credentials are never logged and never appear in Status messages.
//
// Errors of Connect(): INVALID_ARGUMENT (no conf and no monitors, unreadable conf or keyring),
// PERMISSION_DENIED (cephx refused the user or key), UNAVAILABLE (no monitor answered in time).
#pragma once

#include <rados/librados.h>
#include <rbd/librbd.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "common/status.h"

namespace vdisk::blockdev::rbd {

struct ClusterOptions {
  std::string conf;      // path to a ceph.conf; empty: none (then mon_host is required)
  std::string mon_host;  // monitors ("127.0.0.1:6789", "[v2:..,v1:..]"); overrides the conf's
  std::string user;      // cephx id without "client." (empty: the conf's default, "admin")
  std::string key;       // cephx secret (base64). SECRET: never logged
  std::string keyring;   // path to a keyring file (used when `key` is empty)
  int connect_timeout_s = 10;
  // OSD operations (journal, snapshots, image I/O) fail with ETIMEDOUT after this long without
  // an answer instead of waiting for the OSD to come back; 0 waits for ever (rados_osd_op_timeout).
  int op_timeout_s = 120;
  // Further Ceph options ("rbd_cache" -> "false", ...), applied after the conf file.
  std::map<std::string, std::string> config;
};

// Maps a negative librados/librbd return value to a Status ("<what>: <strerror> (errno N)").
Status RadosError(int r, const std::string& what);

class Cluster {
 public:
  static StatusOr<std::shared_ptr<Cluster>> Connect(const ClusterOptions& options);
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  rados_t handle() const { return handle_; }
  const std::string& fsid() const { return fsid_; }
  const std::string& user() const { return user_; }
  // "ceph <fsid> as client.<user>" (no secrets).
  std::string describe() const;

  // Runs a monitor command (JSON) and returns its output.
  StatusOr<std::string> MonCommand(const std::string& json_cmd);

 private:
  Cluster() = default;
  static StatusOr<std::shared_ptr<Cluster>> ConnectNew(const ClusterOptions& options);
  rados_t handle_ = nullptr;
  std::string fsid_;
  std::string user_;
};

// An I/O context on one RADOS pool. Move-only; keeps its Cluster alive.
class IoCtx {
 public:
  IoCtx() = default;
  // INVALID_ARGUMENT if the pool does not exist (it names a StorageClass/config parameter).
  static StatusOr<IoCtx> Open(std::shared_ptr<Cluster> cluster, const std::string& pool);
  ~IoCtx() { reset(); }
  IoCtx(IoCtx&& o) noexcept
      : cluster_(std::move(o.cluster_)), io_(std::exchange(o.io_, nullptr)), pool_(std::move(o.pool_)) {}
  IoCtx& operator=(IoCtx&& o) noexcept {
    if (this != &o) {
      reset();
      cluster_ = std::move(o.cluster_);
      io_ = std::exchange(o.io_, nullptr);
      pool_ = std::move(o.pool_);
    }
    return *this;
  }

  rados_ioctx_t get() const { return io_; }
  const std::string& pool() const { return pool_; }
  const std::shared_ptr<Cluster>& cluster() const { return cluster_; }
  void reset() {
    if (io_) rados_ioctx_destroy(io_);
    io_ = nullptr;
  }

 private:
  std::shared_ptr<Cluster> cluster_;
  rados_ioctx_t io_ = nullptr;
  std::string pool_;
};

// An open RBD image (head or a snapshot). Move-only; closes on destruction.
class Image {
 public:
  Image() = default;
  // By image id (works for images in the RBD trash too). `snap` empty: the head. With a
  // snapshot the image is opened read-only at its head and then moved to the snapshot
  // (rbd_snap_set): opening at a snapshot directly trips librbd 16.2.15's use-after-free
  // (docs/rbd.md, Pitfalls). Errors: NOT_FOUND for a missing image or snapshot.
  static StatusOr<Image> OpenById(const IoCtx& io, const std::string& image_id,
                                  const std::string& snap, bool read_only);
  static StatusOr<Image> OpenByName(const IoCtx& io, const std::string& name,
                                    const std::string& snap, bool read_only);
  ~Image() { reset(); }
  Image(Image&& o) noexcept : image_(std::exchange(o.image_, nullptr)) {}
  Image& operator=(Image&& o) noexcept {
    if (this != &o) {
      reset();
      image_ = std::exchange(o.image_, nullptr);
    }
    return *this;
  }
  rbd_image_t get() const { return image_; }
  rbd_image_t release() { return std::exchange(image_, nullptr); }
  void reset() {
    if (image_) rbd_close(image_);
    image_ = nullptr;
  }

 private:
  rbd_image_t image_ = nullptr;
};

}  // namespace vdisk::blockdev::rbd
