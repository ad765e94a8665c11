// vdisk-csi with an NFS pool, spoken to as the Kubernetes sidecars and kubelet do, on the ganesha
// of the `nfs` fixture: the lifecycle (create, idempotent repeats, snapshot with size and
// ready_to_use, restore, clone, expand, capacity, list, delete) with and without server-side
// reflinks, bytes checked through libnfs' nfs-cat; exact codes for pools on an unreachable
// server, an export that refuses writes, and a full export (an unknown export stops the driver
// at start-up with NOT_FOUND, as any broken pool configuration does); SnapshotMetadata's
// allocation and delta streams. The node side is in
// nfs_node_test.cc.
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "blockdev/registry.h"
#include "blockdev/sync_io.h"
#include "tests/csi/csi_fixture.h"
#include "tests/csi/metadata_util.h"
#include "tests/nfs/nfs_env.h"
#include "tests/pool/pool_test_util.h"

namespace vdisk::csi::testing {
namespace {

class NfsCsiTest : public CsiDriverTest, public ::testing::WithParamInterface<bool> {
 protected:
  void SetUp() override {
    auto env = vdisk::testing::LoadNfsEnv();
    ASSERT_TRUE(env.ok()) << env.status();
    env_ = *env;
    static int counter = 0;
    dir_ = absl::StrCat("/csi-", ::getpid(), "-", counter++);
    CsiDriverTest::SetUp();
  }
  void TearDown() override {
    CsiDriverTest::TearDown();
    std::error_code ec;
    std::filesystem::remove_all(env_.local_path + dir_, ec);
  }

  std::string PoolFlag(const std::string& name, const std::string& export_path,
                       const std::string& dir, const std::string& extra = "") const {
    return absl::StrCat("name=", name, ",kind=nfs,server=", env_.server, ",export=", export_path,
                        ",dir=", dir, ",nfsport=", env_.nfs_port, ",mountport=", env_.mount_port,
                        extra);
  }

  std::vector<std::string> DriverArgs() override {
    auto args = CsiDriverTest::DriverArgs();
    // Replace the local pool with NFS pools: the one under test first (the default), then
    // deliberately broken ones for the error cases.
    for (size_t i = 0; i + 1 < args.size(); ++i)
      if (args[i] == "--pool") {
        args[i + 1] = PoolFlag("nas", env_.export_path, dir_,
                               GetParam() ? ",local_path=" + env_.local_path + ",reflink=on"
                                          : ",reflink=off");
        break;
      }
    for (const std::string& extra : {PoolFlag("small", env_.small_export, dir_)}) {
      args.push_back("--pool");
      args.push_back(extra);
    }
    return args;
  }

  v1::CreateVolumeRequest Req(const std::string& name, int64_t size, bool block,
                              const std::string& pool = "nas") {
    auto r = CreateReq(name, size, block, {Mode::MULTI_NODE_MULTI_WRITER});
    (*r.mutable_parameters())["pool"] = pool;
    return r;
  }

  // The volume's image through vdisk's own nfs: device (as the vhost export or a copy would).
  std::unique_ptr<blockdev::Device> Open(const v1::Volume& v) {
    blockdev::RegisterBuiltinBackends();
    const auto& ctx = v.volume_context();
    EXPECT_TRUE(ctx.contains("nfsPath")) << "volume_context lacks nfsPath";
    if (!ctx.contains("nfsPath")) return nullptr;
    auto dev = blockdev::OpenDeviceUri(
        absl::StrCat("nfs://", ctx.at("nfsServer"), ctx.at("nfsExport"), ctx.at("nfsPath"),
                     "?export=", ctx.at("nfsExport"), "&", env_.url_query),
        false);
    EXPECT_TRUE(dev.ok()) << dev.status();
    return dev.ok() ? std::move(*dev) : nullptr;
  }
  // SHA-256 of the first `bytes` of the image, read by libnfs' nfs-cat (an independent client).
  std::string NfsCatDigest(const v1::Volume& v, uint64_t bytes) {
    auto out = vdisk::testing::RunCommand(absl::StrCat(
        "nfs-cat '", env_.Url(v.volume_context().at("nfsPath")), "' | head -c ", bytes,
        " | sha256sum"));
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? out->substr(0, 64) : "";
  }

  vdisk::testing::NfsEnv env_;
  std::string dir_;
};

TEST_P(NfsCsiTest, LifecycleWithBytesCheckedByAnIndependentClient) {
  auto vol = MustCreate(Req("vm-nfs-disk", 32 * kMiB, /*block=*/false));
  ASSERT_FALSE(vol.volume_id().empty()) << driver_->Log();
  EXPECT_EQ(vol.capacity_bytes(), 32 * kMiB);
  EXPECT_EQ(vol.volume_context().at("nfsExport"), env_.export_path);
  auto again = c().CreateVolume(Req("vm-nfs-disk", 32 * kMiB, false));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->volume().volume_id(), vol.volume_id());
  EXPECT_EQ(Code(c().CreateVolume(Req("vm-nfs-disk", 64 * kMiB, false))),
            absl::StatusCode::kAlreadyExists);
  auto fsvol = MustCreate(Req("vm-nfs-fs", 16 * kMiB, /*block=*/false));
  const std::string fs_path = fsvol.volume_context().at("nfsPath");
  EXPECT_TRUE(fs_path.starts_with(dir_ + "/volumes/") && fs_path.ends_with("/disk.img")) << fs_path;

  std::string want;
  {
    auto dev = Open(vol);
    ASSERT_TRUE(dev);
    ASSERT_TRUE(vdisk::pooltest::WritePattern(*dev, 0, 4 * kMiB, 1).ok());
    ASSERT_TRUE(vdisk::pooltest::WritePattern(*dev, 28 * kMiB, 4 * kMiB, 2).ok());
    ASSERT_TRUE(blockdev::Flush(*dev).ok());
    auto d = vdisk::pooltest::Digest(*dev);
    ASSERT_TRUE(d.ok());
    want = *d;
  }
  EXPECT_EQ(NfsCatDigest(vol, 32 * kMiB), want);

  auto snap = MustSnapshot("vm-nfs-snap", vol.volume_id());
  EXPECT_TRUE(snap.ready_to_use());
  EXPECT_EQ(snap.size_bytes(), 32 * kMiB);
  EXPECT_EQ(MustSnapshot("vm-nfs-snap", vol.volume_id()).snapshot_id(), snap.snapshot_id());
  {  // the origin changes after the snapshot
    auto dev = Open(vol);
    ASSERT_TRUE(vdisk::pooltest::WritePattern(*dev, 0, kMiB, 3).ok());
    ASSERT_TRUE(blockdev::Flush(*dev).ok());
  }
  // SnapshotMetadata (what external-snapshot-metadata serves to backup tools): the first
  // snapshot's allocation, and its delta to a second one -- from the pool's block maps with
  // reflinks, else by reading both snapshots over NFS and comparing them.
  auto snap2 = MustSnapshot("vm-nfs-snap2", vol.volume_id());
  {
    auto a = Allocated(c(), snap.snapshot_id());
    ASSERT_TRUE(a.status.ok()) << a.status;
    EXPECT_EQ(a.capacity, 32 * kMiB);
    EXPECT_TRUE(a.Covers(0, 4 * kMiB) && a.Covers(28 * kMiB, 4 * kMiB)) << a.bytes();
    EXPECT_TRUE(a.Avoids(8 * kMiB, 16 * kMiB)) << a.bytes();
    auto d = Delta(c(), snap.snapshot_id(), snap2.snapshot_id());
    ASSERT_TRUE(d.status.ok()) << d.status;
    EXPECT_TRUE(d.Covers(0, kMiB)) << d.bytes();
    EXPECT_TRUE(d.Avoids(2 * kMiB, 30 * kMiB)) << d.bytes();
  }
  auto rreq = Req("vm-nfs-restored", 48 * kMiB, false);
  rreq.mutable_volume_content_source()->mutable_snapshot()->set_snapshot_id(snap.snapshot_id());
  auto restored = MustCreate(rreq);
  EXPECT_EQ(restored.capacity_bytes(), 48 * kMiB);
  EXPECT_TRUE(restored.content_source().has_snapshot());
  EXPECT_EQ(NfsCatDigest(restored, 32 * kMiB), want) << "restore differs from the snapshot";
  {
    auto dev = Open(restored);
    ASSERT_TRUE(dev);
    EXPECT_TRUE(vdisk::pooltest::CheckZeroes(*dev, 32 * kMiB, 16 * kMiB).ok());
  }

  auto creq = Req("vm-nfs-clone", 0, false);
  creq.mutable_volume_content_source()->mutable_volume()->set_volume_id(vol.volume_id());
  auto clone = MustCreate(creq);
  EXPECT_EQ(clone.capacity_bytes(), 32 * kMiB);
  {
    auto dev = Open(vol);
    auto d = vdisk::pooltest::Digest(*dev);
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(NfsCatDigest(clone, 32 * kMiB), *d);
  }

  v1::ControllerExpandVolumeRequest ereq;
  ereq.set_volume_id(vol.volume_id());
  ereq.mutable_capacity_range()->set_required_bytes(64 * kMiB);
  auto expanded = c().ControllerExpandVolume(ereq);
  ASSERT_TRUE(expanded.ok()) << expanded.status();
  EXPECT_EQ(expanded->capacity_bytes(), 64 * kMiB);
  EXPECT_EQ(std::filesystem::file_size(env_.local_path + vol.volume_context().at("nfsPath")),
            static_cast<uintmax_t>(64 * kMiB));

  v1::GetCapacityRequest cap;
  (*cap.mutable_parameters())["pool"] = "nas";
  auto capacity = c().GetCapacity(cap);
  ASSERT_TRUE(capacity.ok()) << capacity.status();
  EXPECT_GT(capacity->available_capacity(), 0);

  v1::ListVolumesRequest lv;
  auto listed = c().ListVolumes(lv);
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_EQ(listed->entries_size(), 4);

  // Deleting the snapshot keeps the volume restored from it; deletes are idempotent.
  v1::DeleteSnapshotRequest dreq;
  dreq.set_snapshot_id(snap.snapshot_id());
  ASSERT_TRUE(c().DeleteSnapshot(dreq).ok());
  ASSERT_TRUE(c().DeleteSnapshot(dreq).ok());
  dreq.set_snapshot_id(snap2.snapshot_id());
  ASSERT_TRUE(c().DeleteSnapshot(dreq).ok());
  EXPECT_EQ(NfsCatDigest(restored, 32 * kMiB), want);
  RestartDriver();
  for (const auto& v : {vol, fsvol, restored, clone}) {
    v1::DeleteVolumeRequest d;
    d.set_volume_id(v.volume_id());
    ASSERT_TRUE(c().DeleteVolume(d).ok()) << v.volume_id();
    ASSERT_TRUE(c().DeleteVolume(d).ok());
  }
  EXPECT_TRUE(std::filesystem::is_empty(env_.local_path + dir_ + "/volumes"));
}

TEST_P(NfsCsiTest, BadBackendsGetExactCodes) {
  auto code = [&](const std::string& pool, v1::CreateVolumeRequest r) {
    (*r.mutable_parameters())["pool"] = pool;
    auto res = c().CreateVolume(r);
    std::printf("  %s: %s\n", pool.c_str(), res.status().ToString().c_str());
    return res.status().code();
  };
  auto full = Req("pvc-d", 1024 * kMiB, false);
  (*full.mutable_parameters())["preallocation"] = "full";
  EXPECT_EQ(code("small", full), absl::StatusCode::kResourceExhausted);
  auto bad = Req("pvc-e", 8 * kMiB, false);
  (*bad.mutable_parameters())["preallocation"] = "sometimes";
  EXPECT_EQ(code("nas", bad), absl::StatusCode::kInvalidArgument);
  // The driver keeps serving the good pool.
  MustCreate(Req("pvc-fine", 8 * kMiB, false));
  std::error_code ec;
  std::filesystem::remove_all(env_.small_local_path + dir_, ec);

  // A server that goes away: the pool's calls fail with UNAVAILABLE (the sidecars retry), and
  // Probe reports the pool not ready.
  {
    auto g = vdisk::testing::PrivateGanesha::Start("csi-dead");
    ASSERT_TRUE(g.ok()) << g.status();
    const auto& penv = (*g)->env();
    ScratchDir node("vdisk-nfs-dead");
    ScratchDir sock("vdisk-nfs-dead-sock", "/tmp");
    DriverProcess d({"--endpoint", "unix://" + (sock / "csi.sock"), "--node-id", "n", "--pool",
                     absl::StrCat("name=priv,kind=nfs,server=", penv.server, ",export=",
                                  penv.export_path, ",nfsport=", penv.nfs_port, ",mountport=",
                                  penv.mount_port, ",timeout=3"),
                     "--state-dir", node / "state", "--allowed-target-root", node / "kubelet"},
                    node / "driver.log", "unix://" + (sock / "csi.sock"));
    std::string error;
    ASSERT_TRUE(d.Start(&error)) << error;
    auto ok = Req("pvc-before", 8 * kMiB, false, "priv");
    EXPECT_TRUE(d.client().CreateVolume(ok).ok());
    ASSERT_TRUE((*g)->Kill().ok());
    auto r = d.client().CreateVolume(Req("pvc-after", 8 * kMiB, false, "priv"));
    EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
    d.Stop();
  }

  // A pool whose export the server does not have is a configuration error: the driver refuses
  // to start and says why. A pool on an export that squashes everyone to nobody (no permission
  // to create the pool's directory) fails its calls with PERMISSION_DENIED.
  ScratchDir other("vdisk-nfs-bad");
  ScratchDir sock("vdisk-nfs-bad-sock", "/tmp");
  auto driver = [&](const std::string& pool) {
    return std::make_unique<DriverProcess>(
        std::vector<std::string>{"--endpoint", "unix://" + (sock / "csi.sock"), "--node-id", "n",
                                 "--pool", pool, "--state-dir", other / "state",
                                 "--allowed-target-root", other / "kubelet"},
        other / "driver.log", "unix://" + (sock / "csi.sock"));
  };
  std::string error;
  auto typo = driver(PoolFlag("typo", "/no-such-export", "/"));
  EXPECT_FALSE(typo->Start(&error));
  EXPECT_NE(error.find("NOT_FOUND"), std::string::npos) << error;
  EXPECT_NE(error.find("does not export /no-such-export"), std::string::npos) << error;
  typo.reset();
  auto squashed = driver(PoolFlag("squashed", env_.squashed_export, dir_));
  ASSERT_TRUE(squashed->Start(&error)) << error;
  auto denied = squashed->client().CreateVolume(Req("pvc-c", 8 * kMiB, false, "squashed"));
  EXPECT_EQ(denied.status().code(), absl::StatusCode::kPermissionDenied) << denied.status();
  squashed->Stop();
}

INSTANTIATE_TEST_SUITE_P(Nfs, NfsCsiTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& i) {
                           return std::string(i.param ? "Reflink" : "Copy");
                         });

}  // namespace
}  // namespace vdisk::csi::testing
