// NFS-pool cases beyond the conformance suite, against real ganesha: exact codes for bad
// configurations (unreachable server, unknown export, no permission, export full), real
// capacity and preallocation, name claims of live and dead creators, bytes seen by an
// independent client (libnfs' nfs-cat), snapshots as sparse raw images, and a private ganesha
// restarted in the middle of a host copy, and a host copy cancelled then resumed.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/time.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "blockdev/aligned_buffer.h"
#include "blockdev/nfs/nfs_store.h"
#include "blockdev/registry.h"
#include "blockdev/sync_io.h"
#include "clone/clone.h"
#include "snapshot/snapshot_policy.h"
#include "tests/nfs/nfs_fixture.h"
#include "tests/pool/pool_test_util.h"

namespace vdisk::pooltest {
namespace {

using blockdev::Pool;
using blockdev::PoolConfig;
using blockdev::Volume;
using blockdev::VolumeMode;
using blockdev::VolumeRequest;
using blockdev::VolumeSource;
using StatusCode = absl::StatusCode;

constexpr uint64_t kMiB = 1 << 20;

#define ASSERT_OK(expr)                                  \
  do {                                                   \
    const Status _s = (expr);                            \
    ASSERT_TRUE(_s.ok()) << _s;                          \
  } while (0)

StatusOr<std::shared_ptr<Pool>> OpenConfig(const PoolConfig& c) {
  blockdev::RegisterBuiltinBackends();
  blockdev::PoolSet set;
  RETURN_IF_ERROR(set.Add(c));
  return set.Get(c.name);
}

uint64_t Allocated(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return UINT64_MAX;
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

class NfsPoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fixture_ = std::make_unique<NfsPoolFixture>(/*reflink=*/false);
    ASSERT_OK(fixture_->SetUp());
    env_ = fixture_->env();
  }
  void TearDown() override {
    pool_.reset();
    fixture_->TearDown();
  }
  void Open(blockdev::Params extra = {}) {
    PoolConfig c = fixture_->config();
    for (const auto& [k, v] : extra) c.options[k] = v;
    auto p = OpenConfig(c);
    ASSERT_TRUE(p.ok()) << p.status();
    pool_ = *p;
  }
  Volume Make(const std::string& name, uint64_t size, blockdev::Params params = {}) {
    VolumeRequest req;
    req.name = name;
    req.size_bytes = size;
    req.params = std::move(params);
    auto v = pool_->create_volume(req);
    EXPECT_TRUE(v.ok()) << v.status();
    return v.ok() ? *v : Volume{};
  }
  std::string Local(const std::string& rel) { return fixture_->local_root() + rel; }

  std::unique_ptr<NfsPoolFixture> fixture_;
  vdisk::testing::NfsEnv env_;
  std::shared_ptr<Pool> pool_;
};

TEST_F(NfsPoolTest, BadConfigurationsGetExactCodes) {
  PoolConfig base = fixture_->config();
  auto code = [&](blockdev::Params change) {
    PoolConfig c = base;
    for (const auto& [k, v] : change) {
      if (v.empty()) c.options.erase(k);
      else c.options[k] = v;
    }
    auto p = OpenConfig(c);
    if (p.ok()) return StatusCode::kOk;
    std::printf("  %s\n", p.status().ToString().c_str());
    return p.status().code();
  };
  // Nothing listens there.
  EXPECT_EQ(code({{"nfsport", "1"}, {"mountport", "1"}, {"timeout", "5"}}),
            StatusCode::kUnavailable);
  // No such export; an export that hides from this host looks the same.
  EXPECT_EQ(code({{"export", "/no-such-export"}}), StatusCode::kNotFound);
  EXPECT_EQ(code({{"export", env_.denied_export}}), StatusCode::kNotFound);
  // Mountable but not writable by this identity (all squashed), or read-only.
  EXPECT_EQ(code({{"export", env_.squashed_export}}), StatusCode::kPermissionDenied);
  EXPECT_EQ(code({{"export", env_.ro_export}, {"dir", "/pool"}}), StatusCode::kPermissionDenied);
  // Bad options.
  EXPECT_EQ(code({{"export", "relative"}}), StatusCode::kInvalidArgument);
  EXPECT_EQ(code({{"dir", "/a/../../b"}}), StatusCode::kInvalidArgument);
  EXPECT_EQ(code({{"preallocation", "full"}}), StatusCode::kInvalidArgument);
  // A directory that holds something else is not taken over.
  const std::string foreign = fixture_->local_root() + "-foreign";
  std::filesystem::create_directories(foreign);
  std::ofstream(foreign + "/somebodys-file") << "data";
  EXPECT_EQ(code({{"dir", fixture_->dir() + "-foreign"}}), StatusCode::kFailedPrecondition);
  std::filesystem::remove_all(foreign);
  // local_path that does not show the export.
  const std::string elsewhere = fixture_->local_root() + "-elsewhere";
  std::filesystem::create_directories(elsewhere);
  EXPECT_EQ(code({{"local_path", elsewhere}, {"reflink", "auto"}}),
            StatusCode::kFailedPrecondition);
  std::filesystem::remove_all(elsewhere);
  // And the good configuration opens.
  EXPECT_EQ(code({}), StatusCode::kOk);
}

TEST_F(NfsPoolTest, ExportFullIsResourceExhausted) {
  PoolConfig c = fixture_->config();
  c.options["export"] = env_.small_export;
  auto p = OpenConfig(c);
  ASSERT_TRUE(p.ok()) << p.status();
  pool_ = *p;
  auto cap = pool_->capacity({});
  ASSERT_TRUE(cap.ok()) << cap.status();
  EXPECT_LT(cap->total_bytes, 400 * kMiB);  // the 320 MiB file system, as FSSTAT says
  EXPECT_GT(cap->available_bytes, 100 * kMiB);

  // Reserving more than there is fails at once and leaves nothing.
  VolumeRequest big;
  big.name = "pvc-too-big";
  big.size_bytes = 1024 * kMiB;
  big.params = {{"preallocation", "full"}};
  EXPECT_EQ(pool_->create_volume(big).status().code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(pool_->list_volumes()->empty());
  EXPECT_FALSE(pool_->find_volume_by_name("pvc-too-big")->has_value());

  // Thin is allowed, with a warning; writing past the space is RESOURCE_EXHAUSTED.
  Volume thin = Make("pvc-thin", 1024 * kMiB);
  EXPECT_TRUE(thin.condition.starts_with("thin:")) << thin.condition;
  auto dev = pool_->open_volume(thin.id, false);
  ASSERT_TRUE(dev.ok()) << dev.status();
  auto q = (*dev)->open_queue(8);
  ASSERT_TRUE(q.ok());
  blockdev::AlignedBuffer buf(4 * kMiB);
  std::memset(buf.data(), 0x5a, buf.size());
  Status first_error;
  for (uint64_t off = 0; off < 512 * kMiB; off += buf.size()) {
    (*q)->write(off, std::span<const std::byte>(buf.data(), buf.size()), [&](Status s) {
      if (!s.ok() && first_error.ok()) first_error = s;
    });
    if ((*q)->in_flight() >= 8) {
      ASSERT_TRUE((*q)->poll(1, -1).ok());
    }
  }
  Status flushed;
  (*q)->flush([&](Status s) { flushed = s; });
  ASSERT_TRUE((*q)->drain().ok());
  Status err = first_error.ok() ? flushed : first_error;
  EXPECT_EQ(err.code(), StatusCode::kResourceExhausted) << err;
  q->reset();
  dev->reset();
  ASSERT_OK(pool_->delete_volume(thin.id));
}

TEST_F(NfsPoolTest, PreallocationReservesTheImage) {
  Open();
  Volume v = Make("pvc-full", 32 * kMiB, {{"preallocation", "full"}});
  EXPECT_GE(Allocated(Local("/volumes/" + v.id + "/disk.img")), 32 * kMiB);
  EXPECT_TRUE(v.condition.empty()) << v.condition;
  auto dev = pool_->open_volume(v.id, true);
  ASSERT_TRUE(dev.ok());
  ASSERT_OK(CheckZeroes(**dev, 0, 32 * kMiB));
  // Through local_path: fallocate on the server's file system.
  pool_.reset();
  Open({{"local_path", env_.local_path}, {"reflink", "on"}});
  Volume w = Make("pvc-full-local", 32 * kMiB, {{"preallocation", "full"}});
  EXPECT_GE(Allocated(Local("/volumes/" + w.id + "/disk.img")), 32 * kMiB);
  auto st = std::filesystem::file_size(Local("/volumes/" + w.id + "/disk.img"));
  EXPECT_EQ(st, 32 * kMiB);
}

TEST_F(NfsPoolTest, LiveCreatorsAreAbortedDeadOnesAreTakenOver) {
  Open();
  auto write_claim = [&](const std::string& name, const std::string& id, int64_t age_s) {
    const std::string claim = Local("/names/" + blockdev::nfs::ClaimKey('v', name));
    {
      std::ofstream out(claim);
      out << R"({"format":1,"id":")" << id << R"(","name":")" << name
          << R"(","owner":"other-controller:1:1"})";
    }
    std::filesystem::create_directories(Local("/staging/v-" + id));
    if (age_s == 0) return;
    // Aged before the server ever looks at it (ganesha caches attributes it has seen; in
    // production heartbeats come through NFS, so its cache follows them).
    struct timeval tv[2];
    ::gettimeofday(&tv[0], nullptr);
    tv[0].tv_sec -= age_s;
    tv[1] = tv[0];
    ASSERT_EQ(::utimes(claim.c_str(), tv), 0);
  };
  // Another controller is creating "pvc-busy" right now: its claim is fresh.
  write_claim("pvc-busy", "pvc-busy-0000000000aa", 0);
  VolumeRequest req;
  req.name = "pvc-busy";
  req.size_bytes = 4 * kMiB;
  EXPECT_EQ(pool_->create_volume(req).status().code(), StatusCode::kAborted);
  EXPECT_FALSE(pool_->find_volume_by_name("pvc-busy")->has_value());
  // A restart must not sweep a live build away.
  pool_.reset();
  Open();
  EXPECT_TRUE(std::filesystem::exists(Local("/staging/v-pvc-busy-0000000000aa")));
  // The creator of "pvc-dead" went silent an hour ago: the next create of the name cleans up
  // after it and succeeds.
  write_claim("pvc-dead", "pvc-dead-0000000000bb", 3600);
  req.name = "pvc-dead";
  auto v = pool_->create_volume(req);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_FALSE(std::filesystem::exists(Local("/staging/v-pvc-dead-0000000000bb")));
  EXPECT_NE(v->id, "pvc-dead-0000000000bb");
  EXPECT_TRUE(std::filesystem::exists(Local("/staging/v-pvc-busy-0000000000aa")));
}

TEST_F(NfsPoolTest, AnIndependentClientSeesTheBytesAndSnapshotsAreSparseImages) {
  Open();
  Volume v = Make("pvc-bytes", 64 * kMiB);
  {
    auto dev = pool_->open_volume(v.id, false);
    ASSERT_TRUE(dev.ok());
    ASSERT_OK(WritePattern(**dev, 0, 4 * kMiB, 7));
    ASSERT_OK(WritePattern(**dev, 40 * kMiB, 2 * kMiB, 8));
    ASSERT_OK(blockdev::Flush(**dev));
  }
  auto dev = pool_->open_volume(v.id, true);
  ASSERT_TRUE(dev.ok());
  auto ours = Digest(**dev);
  ASSERT_TRUE(ours.ok());
  const std::string url = env_.Url(fixture_->dir() + "/volumes/" + v.id + "/disk.img");
  auto theirs = vdisk::testing::RunCommand(absl::StrCat("nfs-cat '", url, "' | sha256sum"));
  ASSERT_TRUE(theirs.ok()) << theirs.status();
  EXPECT_EQ(theirs->substr(0, 64), *ours);

  // The snapshot is a raw image of the volume in snapshots/<id>/disk.img, as sparse as the
  // data (6 MiB of 64), read-only, and byte-identical through nfs-cat.
  auto snap = snapshot::CreateSnapshot(*pool_, v.id, "snap-bytes");
  ASSERT_TRUE(snap.ok()) << snap.status();
  EXPECT_TRUE(snap->ready);
  EXPECT_EQ(snap->size_bytes, 64 * kMiB);
  const std::string image = Local("/snapshots/" + snap->id + "/disk.img");
  EXPECT_EQ(std::filesystem::file_size(image), 64 * kMiB);
  EXPECT_LE(Allocated(image), 16 * kMiB);
  struct stat st {};
  ASSERT_EQ(::stat(image.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0440u);
  auto snap_sum = vdisk::testing::RunCommand(absl::StrCat(
      "nfs-cat '", env_.Url(fixture_->dir() + "/snapshots/" + snap->id + "/disk.img"),
      "' | sha256sum"));
  ASSERT_TRUE(snap_sum.ok()) << snap_sum.status();
  EXPECT_EQ(snap_sum->substr(0, 64), *ours);

  // Expansion is visible to every client.
  ASSERT_TRUE(pool_->expand_volume(v.id, 96 * kMiB).ok());
  auto listed = vdisk::testing::RunCommand(
      absl::StrCat("nfs-ls '", env_.Url(fixture_->dir() + "/volumes/" + v.id), "'"));
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_NE(listed->find(std::to_string(96 * kMiB)), std::string::npos) << *listed;
}

// A host copy (a pool without server-side reflink) while the server restarts under it twice:
// the copy rides through (libnfs reconnects; unstable writes the new server instance may have
// lost are re-sent), and the clone is byte-identical.
TEST(NfsHostCopy, SurvivesServerRestarts) {
  auto g = vdisk::testing::PrivateGanesha::Start("hostcopy");
  ASSERT_TRUE(g.ok()) << g.status();
  const auto& env = (*g)->env();
  PoolConfig c{"priv", "nfs",
               {{"server", env.server},
                {"export", env.export_path},
                {"nfsport", std::to_string(env.nfs_port)},
                {"mountport", std::to_string(env.mount_port)},
                {"reflink", "off"}}};
  auto p = OpenConfig(c);
  ASSERT_TRUE(p.ok()) << p.status();
  std::shared_ptr<Pool> pool = *p;
  VolumeRequest req;
  req.name = "pvc-src";
  req.size_bytes = 512 * kMiB;
  auto src = pool->create_volume(req);
  ASSERT_TRUE(src.ok()) << src.status();
  {
    auto dev = pool->open_volume(src->id, false);
    ASSERT_TRUE(dev.ok());
    for (uint64_t off = 0; off < 512 * kMiB; off += 64 * kMiB)
      ASSERT_OK(WritePattern(**dev, off, 24 * kMiB, off / kMiB + 1));
    ASSERT_OK(blockdev::Flush(**dev));
  }
  auto sdev = pool->open_volume(src->id, true);
  ASSERT_TRUE(sdev.ok());
  auto want = Digest(**sdev);
  ASSERT_TRUE(want.ok());

  std::atomic<uint64_t> done{0};
  std::atomic<int> restarts{0};
  std::thread restarter([&] {
    // Restart once the copy is under way, twice.
    for (uint64_t at : {64 * kMiB, 256 * kMiB}) {
      for (int i = 0; i < 600 && done.load() < at; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      if ((*g)->Restart().ok()) ++restarts;
    }
  });
  VolumeRequest creq;
  creq.name = "pvc-copy";
  creq.size_bytes = 512 * kMiB;
  creq.source = {VolumeSource::Kind::kVolume, src->id};
  clone::CloneOptions o;
  o.progress = [&](const blockdev::CopyProgress& pr) { done = pr.bytes_done; };
  clone::CloneReport report;
  auto copy = clone::CreateVolumeFromSource(*pool, creq, o, &report);
  restarter.join();
  ASSERT_TRUE(copy.ok()) << copy.status();
  EXPECT_EQ(report.strategy, clone::Strategy::kHostCopy);
  EXPECT_EQ(restarts.load(), 2);
  EXPECT_LE(report.copy.bytes_written, 8 * 24 * kMiB);  // data only, holes stay holes
  auto cdev = pool->open_volume(copy->id, true);
  ASSERT_TRUE(cdev.ok());
  auto got = Digest(**cdev);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, *want);
}

// A host copy cancelled part-way (a controller going down) is resumed from its checkpoint by a
// retry of the same request, and the result is byte-identical.
TEST_F(NfsPoolTest, HostCopyCancelledIsResumedFromItsCheckpoint) {
  Open();
  Volume src = Make("pvc-src", 256 * kMiB);
  {
    auto dev = pool_->open_volume(src.id, false);
    ASSERT_TRUE(dev.ok());
    ASSERT_OK(WritePattern(**dev, 0, 256 * kMiB, 5));
  }
  auto sdev = pool_->open_volume(src.id, true);
  ASSERT_TRUE(sdev.ok());
  auto want = Digest(**sdev);
  ASSERT_TRUE(want.ok());
  const char* bin = std::getenv("VDISK_BINARY_DIR");
  const std::string ckpt = absl::StrCat(bin && *bin ? bin : "/tmp", "/test-tmp/nfs-ckpt-",
                                        ::getpid());
  std::filesystem::create_directories(ckpt);
  VolumeRequest req;
  req.name = "pvc-resumed";
  req.size_bytes = 256 * kMiB;
  req.source = {VolumeSource::Kind::kVolume, src.id};
  std::atomic<bool> cancel{false};
  clone::CloneOptions o;
  o.checkpoint_dir = ckpt;
  o.cancel = &cancel;
  o.progress = [&](const blockdev::CopyProgress& pr) {
    if (pr.bytes_done >= 100 * kMiB) cancel = true;
  };
  auto first = clone::CreateVolumeFromSource(*pool_, req, o);
  EXPECT_EQ(first.status().code(), StatusCode::kCancelled) << first.status();
  auto pending = pool_->find_volume_by_name("pvc-resumed");
  ASSERT_TRUE(pending.ok() && pending->has_value());
  EXPECT_TRUE((*pending)->pending);
  cancel = false;
  o.progress = nullptr;
  clone::CloneReport report;
  auto again = clone::CreateVolumeFromSource(*pool_, req, o, &report);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(report.resumed);
  EXPECT_GT(report.copy.resumed_from, 0u);
  auto cdev = pool_->open_volume(again->id, true);
  ASSERT_TRUE(cdev.ok());
  EXPECT_EQ(*Digest(**cdev), *want);
  std::filesystem::remove_all(ckpt);
}

}  // namespace
}  // namespace vdisk::pooltest
