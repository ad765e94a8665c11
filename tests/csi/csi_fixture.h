// Shared fixture for the CSI integration tests: a scratch directory with a local pool, a node
// state directory and a "kubelet" root; the real vdisk-csi binary serving them on a Unix socket;
// and request builders that mirror what the Kubernetes sidecars and kubelet send.
#pragma once

#include <fcntl.h>
#include <openssl/sha.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "common/fs.h"
#include "common/status.h"
#include "csi/client.h"
#include "tests/csi/driver_process.h"

namespace vdisk::csi::testing {

namespace v1 = ::csi::v1;
using Mode = v1::VolumeCapability::AccessMode;

inline constexpr int64_t kMiB = 1 << 20;
inline constexpr int64_t kGiB = 1ll << 30;

inline v1::VolumeCapability Cap(bool block, Mode::Mode mode = Mode::SINGLE_NODE_WRITER) {
  v1::VolumeCapability c;
  if (block) c.mutable_block();
  else c.mutable_mount();
  c.mutable_access_mode()->set_mode(mode);
  return c;
}

inline v1::CreateVolumeRequest CreateReq(const std::string& name, int64_t size, bool block,
                                         std::vector<Mode::Mode> modes = {Mode::SINGLE_NODE_WRITER}) {
  v1::CreateVolumeRequest r;
  r.set_name(name);
  if (size > 0) r.mutable_capacity_range()->set_required_bytes(size);
  for (auto m : modes) *r.add_volume_capabilities() = Cap(block, m);
  return r;
}

template <typename T>
absl::StatusCode Code(const StatusOr<T>& r) {
  return r.status().code();
}

// Writes `len` bytes of a pattern derived from `seed` at `offset` of `path` and makes them
// durable; returns the SHA-256 hex of what was written.
inline std::string WritePattern(const std::string& path, uint64_t offset, size_t len, uint32_t seed) {
  std::string buf(len, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < len; ++i) {
    x = x * 1664525u + 1013904223u;
    buf[i] = static_cast<char>(x >> 24);
  }
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  EXPECT_GE(fd, 0) << path << ": " << strerror(errno);
  if (fd < 0) return "";
  EXPECT_EQ(::pwrite(fd, buf.data(), len, static_cast<off_t>(offset)), static_cast<ssize_t>(len));
  EXPECT_EQ(::fsync(fd), 0);
  ::close(fd);
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(buf.data()), len, md);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(md), sizeof md));
}

inline std::string ReadHash(const std::string& path, uint64_t offset, size_t len) {
  std::string buf(len, '\0');
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  EXPECT_GE(fd, 0) << path << ": " << strerror(errno);
  if (fd < 0) return "";
  ssize_t n = ::pread(fd, buf.data(), len, static_cast<off_t>(offset));
  ::close(fd);
  EXPECT_EQ(n, static_cast<ssize_t>(len));
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(buf.data()), len, md);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(md), sizeof md));
}

// True if writing to `path` is refused (by open, or by the write itself: a read-only block
// device may be opened for writing but rejects every write with EPERM).
inline bool WriteRefused(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return true;
  std::string block(4096, 'x');
  ssize_t n = ::pwrite(fd, block.data(), block.size(), 0);
  bool refused = n < 0 || ::fsync(fd) != 0;
  ::close(fd);
  return refused;
}

inline bool Exists(const std::string& p) {
  struct stat st;
  return ::lstat(p.c_str(), &st) == 0;
}

class CsiDriverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root: the node service makes loop devices and bind mounts";
    scratch_ = std::make_unique<ScratchDir>("vdisk-csi-it");
    kubelet_ = *scratch_ / "kubelet";
    ASSERT_EQ(::mkdir(kubelet_.c_str(), 0750), 0);
    sockdir_ = std::make_unique<ScratchDir>("vdisk-csi-sock", "/tmp");  // short path for the socket
    endpoint_ = "unix://" + (*sockdir_ / "csi.sock");
    StartDriver();
  }

  void TearDown() override {
    if (driver_) driver_->Stop();
    driver_.reset();
    scratch_.reset();
    sockdir_.reset();
  }

  virtual std::vector<std::string> DriverArgs() {
    return {"--endpoint", endpoint_, "--node-id", "test-node", "--pool", "local:" + (*scratch_ / "pool"),
            "--state-dir", *scratch_ / "state", "--allowed-target-root", kubelet_,
            "--vhost-dir", *sockdir_ / "vhost", "-vv"};
  }

  void StartDriver() {
    driver_ = std::make_unique<DriverProcess>(DriverArgs(), *scratch_ / "driver.log", endpoint_);
    std::string error;
    ASSERT_TRUE(driver_->Start(&error)) << error;
  }

  void RestartDriver() {
    ASSERT_EQ(driver_->Stop(), 0) << driver_->Log();
    StartDriver();
  }

  // The node plugin dies (SIGKILL: an OOM kill, a node-plugin crash) and comes back.
  void KillAndRestartDriver() {
    driver_->Kill();
    StartDriver();
  }

  CsiClient& c() { return driver_->client(); }

  v1::Volume MustCreate(const v1::CreateVolumeRequest& req) {
    auto r = c().CreateVolume(req);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->volume() : v1::Volume();
  }

  v1::Snapshot MustSnapshot(const std::string& name, const std::string& volume_id) {
    v1::CreateSnapshotRequest req;
    req.set_name(name);
    req.set_source_volume_id(volume_id);
    auto r = c().CreateSnapshot(req);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->snapshot() : v1::Snapshot();
  }

  Status Stage(const std::string& id, const std::string& staging, bool block,
               Mode::Mode mode = Mode::SINGLE_NODE_WRITER) {
    v1::NodeStageVolumeRequest req;
    req.set_volume_id(id);
    req.set_staging_target_path(staging);
    *req.mutable_volume_capability() = Cap(block, mode);
    return c().NodeStageVolume(req).status();
  }

  Status Unstage(const std::string& id, const std::string& staging) {
    v1::NodeUnstageVolumeRequest req;
    req.set_volume_id(id);
    req.set_staging_target_path(staging);
    return c().NodeUnstageVolume(req).status();
  }

  Status Publish(const std::string& id, const std::string& staging, const std::string& target, bool block,
                 bool readonly = false, Mode::Mode mode = Mode::SINGLE_NODE_WRITER) {
    v1::NodePublishVolumeRequest req;
    req.set_volume_id(id);
    req.set_staging_target_path(staging);
    req.set_target_path(target);
    req.set_readonly(readonly);
    *req.mutable_volume_capability() = Cap(block, mode);
    return c().NodePublishVolume(req).status();
  }

  Status Unpublish(const std::string& id, const std::string& target) {
    v1::NodeUnpublishVolumeRequest req;
    req.set_volume_id(id);
    req.set_target_path(target);
    return c().NodeUnpublishVolume(req).status();
  }

  // NodeStage + NodePublish of `vol` on the plugin `client` at StagingDir(tag) / TargetPath(tag),
  // with the volume's context and `secrets`, as kubelet does (a second node plugin passes its own
  // client).
  Status StageAndPublish(CsiClient& client, const v1::Volume& vol, const std::string& tag,
                         const v1::VolumeCapability& cap,
                         const google::protobuf::Map<std::string, std::string>& secrets = {}) {
    v1::NodeStageVolumeRequest s;
    s.set_volume_id(vol.volume_id());
    s.set_staging_target_path(StagingDir(tag));
    *s.mutable_volume_capability() = cap;
    *s.mutable_volume_context() = vol.volume_context();
    *s.mutable_secrets() = secrets;
    RETURN_IF_ERROR(client.NodeStageVolume(s).status());
    v1::NodePublishVolumeRequest p;
    p.set_volume_id(vol.volume_id());
    p.set_staging_target_path(s.staging_target_path());
    p.set_target_path(TargetPath(tag));
    *p.mutable_volume_capability() = cap;
    *p.mutable_volume_context() = vol.volume_context();
    *p.mutable_secrets() = secrets;
    return client.NodePublishVolume(p).status();
  }
  // Undoes StageAndPublish (both calls must succeed).
  void UnpublishAndUnstage(CsiClient& client, const v1::Volume& vol, const std::string& tag) {
    v1::NodeUnpublishVolumeRequest u;
    u.set_volume_id(vol.volume_id());
    u.set_target_path(kubelet_ + "/pods/" + tag + "/vol");
    EXPECT_TRUE(client.NodeUnpublishVolume(u).ok());
    v1::NodeUnstageVolumeRequest us;
    us.set_volume_id(vol.volume_id());
    us.set_staging_target_path(kubelet_ + "/plugins/staging-" + tag);
    EXPECT_TRUE(client.NodeUnstageVolume(us).ok());
  }

  // Kubelet-style paths under the allowed root, created like kubelet does (staging dir exists,
  // target's parent exists, target itself does not).
  std::string StagingDir(const std::string& tag) {
    std::string p = kubelet_ + "/plugins/staging-" + tag;
    EXPECT_TRUE(fs::MakeDirs(p).ok());
    return p;
  }
  std::string TargetPath(const std::string& tag) {
    std::string parent = kubelet_ + "/pods/" + tag;
    EXPECT_TRUE(fs::MakeDirs(parent).ok());
    return parent + "/vol";
  }

  // The paths kubelet uses, under the fake kubelet root and as long as the real ones (a pod UID
  // and a pvc-<uuid> PV name): the Filesystem publish path .../pods/<uid>/volumes/
  // kubernetes.io~csi/<pv>/mount, whose parent kubelet creates (mode 0750) and whose last
  // component it leaves to the driver, and the staging path .../plugins/kubernetes.io/csi/
  // <driver>/<sha256 of the volume handle>/globalmount, which kubelet creates.
  static std::string FakeUuid(const std::string& tag) {
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(tag.data()), tag.size(), md);
    std::string h = absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(md), 16));
    return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) + "-" + h.substr(20, 12);
  }
  std::string KubeletFsTarget(const std::string& pod, const std::string& pv) {
    std::string parent = kubelet_ + "/pods/" + FakeUuid(pod) + "/volumes/kubernetes.io~csi/pvc-" + FakeUuid(pv);
    EXPECT_TRUE(fs::MakeDirs(parent, 0750).ok());
    return parent + "/mount";
  }
  std::string KubeletStaging(const std::string& volume_handle) {
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(volume_handle.data()), volume_handle.size(), md);
    std::string p = kubelet_ + "/plugins/kubernetes.io/csi/vdisk.csi.io/" +
                    absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(md), sizeof md)) + "/globalmount";
    EXPECT_TRUE(fs::MakeDirs(p, 0750).ok());
    return p;
  }

  // The path through which a published volume's bytes are read and written.
  static std::string DataPath(const std::string& target, bool block) { return block ? target : target + "/disk.img"; }

  std::unique_ptr<ScratchDir> scratch_, sockdir_;
  std::unique_ptr<DriverProcess> driver_;
  std::string kubelet_, endpoint_;
};

}  // namespace vdisk::csi::testing
