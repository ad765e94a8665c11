// Local-pool-only integration tests (the shared cases are in the conformance suite): loop
// devices for Block mode, the Filesystem-mode directory, thin provisioning and its condition,
// reflink O(1) clones, FIEMAP change maps, a process killed mid-operation, several pool
// objects / processes on one root, configuration errors. Needs root (loop devices, mounts).
#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "blockdev/local/file_lock.h"
#include "blockdev/local/local_pool.h"
#include "blockdev/local/loop_device.h"
#include "blockdev/local/register.h"
#include "blockdev/registry.h"
#include "blockdev/sync_io.h"
#include "blockdev/uring/uring_device.h"
#include "clone/clone.h"
#include "common/fs.h"
#include "gtest/gtest.h"
#include "snapshot/changed_blocks.h"
#include "tests/pool/pool_test_util.h"
#include "tests/pool/xfs_env.h"

namespace vdisk::pooltest {
namespace {

using blockdev::Attachment;
using blockdev::Pool;
using blockdev::Volume;
using blockdev::VolumeMode;
using blockdev::VolumeRequest;
using blockdev::VolumeSource;
using blockdev::local::LocalPoolOptions;
using ::absl::StatusCode;

constexpr uint64_t kMiB = 1 << 20;

#define L_ASSERT_OK(expr)                        \
  do {                                           \
    auto _s = (expr);                            \
    ASSERT_TRUE(_s.ok()) << _s;                  \
  } while (0)
#define L_ASSIGN_IMPL(tmp, lhs, expr)  \
  auto tmp = (expr);                   \
  ASSERT_TRUE(tmp.ok()) << tmp.status(); \
  lhs = std::move(*tmp)
#define L_ASSERT_OK_AND_ASSIGN(lhs, expr) L_ASSIGN_IMPL(VDISK_CONCAT(_l_, __LINE__), lhs, expr)

std::string SysRead(const std::string& path) {
  auto s = fs::ReadFile(path);
  if (!s.ok()) return "";
  std::string v = *s;
  while (!v.empty() && v.back() == '\n') v.pop_back();
  return v;
}

std::string LoopName(const std::string& dev) { return dev.substr(dev.rfind('/') + 1); }

uint64_t BlockDeviceSize(const std::string& dev) {
  int fd = ::open(dev.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  uint64_t size = 0;
  ::ioctl(fd, BLKGETSIZE64, &size);
  ::close(fd);
  return size;
}

uint64_t FsUsedBytes(const std::string& path) {
  struct statvfs sv;
  ::statvfs(path.c_str(), &sv);
  return (sv.f_blocks - sv.f_bfree) * sv.f_frsize;
}

class LocalPoolTest : public ::testing::TestWithParam<bool /*xfs*/> {
 protected:
  void SetUp() override {
    std::string parent = RootFsTempParent();
    if (GetParam()) {
      auto mnt = SharedXfsMount();
      ASSERT_TRUE(mnt.ok()) << mnt.status();
      parent = *mnt;
    }
    auto dir = MakeTempDir(parent, "vdisk-localpool-");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = *dir;
    root_ = dir_ + "/root";
    Open();
  }
  void TearDown() override {
    pool_.reset();
    // Never leave a loop device behind, even when a test failed midway.
    for (const auto& v : created_) {
      std::string img = absl::StrCat(root_, "/volumes/", v, "/disk.img");
      blockdev::local::DetachLoop(img, "").IgnoreError();
    }
    for (const auto& m : mounts_) ::umount2(m.c_str(), MNT_DETACH);
    fs::RemoveAll(dir_).IgnoreError();
  }
  void Open(LocalPoolOptions::Reflink reflink = LocalPoolOptions::Reflink::kAuto) {
    pool_.reset();
    LocalPoolOptions o;
    o.root = root_;
    o.reflink = reflink;
    auto p = blockdev::local::OpenLocalPool(o);
    ASSERT_TRUE(p.ok()) << p.status();
    pool_ = *p;
  }
  Volume Make(const std::string& name, uint64_t size, VolumeMode mode = VolumeMode::kBlock,
              blockdev::Params params = {}) {
    VolumeRequest req;
    req.name = name;
    req.size_bytes = size;
    req.mode = mode;
    req.params = params;
    auto v = pool_->create_volume(req);
    EXPECT_TRUE(v.ok()) << v.status();
    if (!v.ok()) return {};
    created_.push_back(v->id);
    return *v;
  }
  std::string Image(const Volume& v) const {
    return absl::StrCat(root_, "/volumes/", v.id, "/disk.img");
  }

  std::string dir_, root_;
  std::shared_ptr<Pool> pool_;
  std::vector<std::string> created_, mounts_;
};

TEST_P(LocalPoolTest, BlockAttachIsALoopDeviceWithDirectIo) {
  Volume v = Make("pvc-loop", 16 * kMiB);
  {
    L_ASSERT_OK_AND_ASSIGN(auto dev, pool_->open_volume(v.id, false));
    L_ASSERT_OK(WritePattern(*dev, 0, 4 * kMiB, 5));
  }
  L_ASSERT_OK_AND_ASSIGN(Attachment rw, pool_->attach(v.id, false, {{"password", "x"}}));
  EXPECT_TRUE(rw.is_block_device);
  ASSERT_TRUE(rw.path.starts_with("/dev/loop")) << rw.path;
  struct stat st;
  ASSERT_EQ(::stat(rw.path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISBLK(st.st_mode));
  const std::string sys = "/sys/block/" + LoopName(rw.path);
  EXPECT_EQ(SysRead(sys + "/loop/dio"), "1") << "loop device without direct I/O";
  EXPECT_EQ(SysRead(sys + "/ro"), "0");
  EXPECT_EQ(SysRead(sys + "/loop/autoclear"), "0");
  EXPECT_EQ(BlockDeviceSize(rw.path), v.size_bytes);
  // The data is there through the block device.
  {
    blockdev::uring::FileDeviceOptions o;
    o.read_only = true;
    L_ASSERT_OK_AND_ASSIGN(auto bdev, blockdev::uring::OpenFileDevice(rw.path, o));
    L_ASSERT_OK(CheckPattern(*bdev, 0, 4 * kMiB, 5));
  }
  // Idempotent: the same loop device again, also from a fresh pool object (driver restart).
  L_ASSERT_OK_AND_ASSIGN(Attachment again, pool_->attach(v.id, false, {}));
  EXPECT_EQ(again.path, rw.path);
  Open();
  L_ASSERT_OK_AND_ASSIGN(Attachment after_restart, pool_->attach(v.id, false, {}));
  EXPECT_EQ(after_restart.path, rw.path);

  // Read-only attach: its own loop device, read-only in the kernel.
  L_ASSERT_OK_AND_ASSIGN(Attachment ro, pool_->attach(v.id, true, {}));
  EXPECT_NE(ro.path, rw.path);
  EXPECT_EQ(SysRead("/sys/block/" + LoopName(ro.path) + "/ro"), "1");
  {
    // The kernel lets a read-only block device be opened for writing but refuses the write.
    int fd = ::open(ro.path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
      char block[4096] = {1};
      EXPECT_LT(::pwrite(fd, block, sizeof block, 0), 0) << "wrote to a read-only loop device";
      ::close(fd);
    }
  }

  // Attached volumes cannot be deleted.
  EXPECT_EQ(pool_->delete_volume(v.id).code(), StatusCode::kFailedPrecondition);

  // Detach releases exactly the given device; repeats are fine.
  L_ASSERT_OK(pool_->detach(v.id, ro));
  EXPECT_EQ(SysRead("/sys/block/" + LoopName(ro.path) + "/loop/backing_file"), "");
  EXPECT_NE(SysRead(sys + "/loop/backing_file"), "");
  L_ASSERT_OK(pool_->detach(v.id, ro));
  L_ASSERT_OK(pool_->detach(v.id, rw));
  EXPECT_EQ(SysRead(sys + "/loop/backing_file"), "");
  L_ASSERT_OK_AND_ASSIGN(auto loops, blockdev::local::FindLoops(Image(v)));
  EXPECT_TRUE(loops.empty());
  L_ASSERT_OK(pool_->delete_volume(v.id));
}

TEST_P(LocalPoolTest, DetachNeverReleasesSomeoneElsesLoop) {
  Volume a = Make("pvc-a", 4 * kMiB);
  Volume b = Make("pvc-b", 4 * kMiB);
  L_ASSERT_OK_AND_ASSIGN(Attachment at, pool_->attach(a.id, false, {}));
  // Detaching b with a's device path must leave a's device alone.
  L_ASSERT_OK(pool_->detach(b.id, at));
  EXPECT_NE(SysRead("/sys/block/" + LoopName(at.path) + "/loop/backing_file"), "");
  // An empty attachment releases every loop device of the volume (lost attachment record).
  L_ASSERT_OK(pool_->detach(a.id, Attachment{"", true}));
  EXPECT_EQ(SysRead("/sys/block/" + LoopName(at.path) + "/loop/backing_file"), "");
}

TEST_P(LocalPoolTest, NodeExpandGrowsTheLoopDevice) {
  Volume v = Make("pvc-grow", 8 * kMiB);
  L_ASSERT_OK_AND_ASSIGN(Attachment at, pool_->attach(v.id, false, {}));
  EXPECT_EQ(BlockDeviceSize(at.path), 8 * kMiB);
  L_ASSERT_OK_AND_ASSIGN(uint64_t size, pool_->expand_volume(v.id, 24 * kMiB));
  EXPECT_EQ(size, 24 * kMiB);
  L_ASSERT_OK(pool_->node_expand(v.id, at));
  EXPECT_EQ(BlockDeviceSize(at.path), 24 * kMiB);
  L_ASSERT_OK(pool_->detach(v.id, at));
}

TEST_P(LocalPoolTest, FilesystemAttachIsTheVolumeDirectory) {
  Volume v = Make("pvc-fs", 8 * kMiB, VolumeMode::kFilesystem);
  L_ASSERT_OK_AND_ASSIGN(Attachment at, pool_->attach(v.id, false, {}));
  EXPECT_FALSE(at.is_block_device);
  struct stat st;
  ASSERT_EQ(::stat((at.path + "/disk.img").c_str(), &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), v.size_bytes);
  EXPECT_LT(static_cast<uint64_t>(st.st_blocks) * 512, v.size_bytes) << "thin";
  // What the node service does: bind-mount the directory. Then it cannot be deleted.
  auto target = MakeTempDir(dir_, "publish-");
  ASSERT_TRUE(target.ok());
  ASSERT_EQ(::mount(at.path.c_str(), target->c_str(), nullptr, MS_BIND, nullptr), 0)
      << strerror(errno);
  mounts_.push_back(*target);
  EXPECT_EQ(pool_->delete_volume(v.id).code(), StatusCode::kFailedPrecondition);
  ASSERT_EQ(::umount2(target->c_str(), 0), 0);
  mounts_.clear();
  L_ASSERT_OK(pool_->node_expand(v.id, at));
  L_ASSERT_OK(pool_->detach(v.id, at));
  L_ASSERT_OK(pool_->delete_volume(v.id));
}

TEST_P(LocalPoolTest, PendingVolumesCannotBeAttached) {
  VolumeRequest req;
  req.name = "pvc-pending";
  req.size_bytes = 4 * kMiB;
  req.pending = true;
  L_ASSERT_OK_AND_ASSIGN(Volume v, pool_->create_volume(req));
  EXPECT_EQ(pool_->attach(v.id, false, {}).status().code(), StatusCode::kFailedPrecondition);
}

TEST_P(LocalPoolTest, ThinVolumesLargerThanTheDiskAreCreatedAndFlagged) {
  L_ASSERT_OK_AND_ASSIGN(auto cap, pool_->capacity({}));
  EXPECT_GT(cap.total_bytes, 0u);
  EXPECT_LE(cap.available_bytes, cap.total_bytes);
  EXPECT_EQ(cap.available_bytes % kMiB, 0u);
  const uint64_t huge = (cap.available_bytes + 64 * 1024 * kMiB) / kMiB * kMiB;
  Volume big = Make("pvc-huge", huge);
  ASSERT_FALSE(big.id.empty());
  EXPECT_TRUE(big.condition.starts_with("thin:")) << big.condition;
  L_ASSERT_OK_AND_ASSIGN(Volume again, pool_->get_volume(big.id));
  EXPECT_TRUE(again.condition.starts_with("thin:")) << again.condition;
  Volume small = Make("pvc-small", 4 * kMiB);
  EXPECT_EQ(small.condition, "");
  struct stat st;
  ASSERT_EQ(::stat(Image(big).c_str(), &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), huge);
  EXPECT_LT(static_cast<uint64_t>(st.st_blocks) * 512, kMiB) << "created thin";
  // Full preallocation of the same size fails cleanly and leaves nothing.
  VolumeRequest req;
  req.name = "pvc-huge-full";
  req.size_bytes = huge;
  req.params = {{"preallocation", "full"}};
  EXPECT_EQ(pool_->create_volume(req).status().code(), StatusCode::kResourceExhausted);
  L_ASSERT_OK_AND_ASSIGN(auto none, pool_->find_volume_by_name("pvc-huge-full"));
  EXPECT_FALSE(none.has_value());
  L_ASSERT_OK_AND_ASSIGN(auto after, pool_->capacity({}));
  EXPECT_GE(after.available_bytes + 64 * kMiB, cap.available_bytes) << "space leaked";
}

TEST_P(LocalPoolTest, ParametersAndPreallocation) {
  Volume full = Make("pvc-full", 8 * kMiB, VolumeMode::kBlock,
                     {{"preallocation", "full"}, {"csi.storage.k8s.io/pvc/name", "x"},
                      {"pool", "local"}});
  struct stat st;
  ASSERT_EQ(::stat(Image(full).c_str(), &st), 0);
  EXPECT_GE(static_cast<uint64_t>(st.st_blocks) * 512, 8 * kMiB);
  EXPECT_EQ(pool_->validate_params({{"preallocation", "some"}}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(pool_->validate_params({{"replicas", "3"}}).code(), StatusCode::kInvalidArgument);
  L_ASSERT_OK(pool_->validate_params({{"preallocation", "none"}}));
  // Sizes are rounded up to the 1 MiB granularity, never down.
  VolumeRequest odd;
  odd.name = "pvc-odd";
  odd.size_bytes = 5 * kMiB + 1;
  L_ASSERT_OK_AND_ASSIGN(Volume v, pool_->create_volume(odd));
  EXPECT_EQ(v.size_bytes, 6 * kMiB);
  EXPECT_EQ(pool_->capabilities().size_granularity, kMiB);
}

TEST_P(LocalPoolTest, ReflinkSnapshotsAndClonesAllocateNothing) {
  const bool xfs = GetParam();
  EXPECT_EQ(pool_->capabilities().fast_clone, xfs);
  EXPECT_EQ(pool_->capabilities().clone_from_snapshot, xfs);
  EXPECT_EQ(pool_->capabilities().changed_extents, xfs);
  if (!xfs) GTEST_SKIP() << "no reflink on the root file system (covered by the XFS instance)";
  Volume v = Make("pvc-big", 1024 * kMiB);
  {
    L_ASSERT_OK_AND_ASSIGN(auto dev, pool_->open_volume(v.id, false));
    for (uint64_t off = 0; off < 1024 * kMiB; off += 64 * kMiB)
      L_ASSERT_OK(WritePattern(*dev, off, 4 * kMiB, 9));  // 64 MiB of data in 16 extents
  }
  const uint64_t used_before = FsUsedBytes(root_);
  L_ASSERT_OK_AND_ASSIGN(auto snap, pool_->create_snapshot(v.id, "snap-big"));
  VolumeRequest req;
  req.name = "pvc-big-clone";
  req.size_bytes = 2048 * kMiB;
  req.source = {VolumeSource::Kind::kSnapshot, snap.id};
  L_ASSERT_OK_AND_ASSIGN(Volume c, pool_->create_volume(req));
  created_.push_back(c.id);
  req.name = "pvc-big-vclone";
  req.source = {VolumeSource::Kind::kVolume, v.id};
  L_ASSERT_OK_AND_ASSIGN(Volume c2, pool_->create_volume(req));
  created_.push_back(c2.id);
  const uint64_t used_after = FsUsedBytes(root_);
  EXPECT_LT(used_after - used_before, 4 * kMiB)
      << "a snapshot and two clones of 64 MiB of data allocated " << (used_after - used_before);
  L_ASSERT_OK_AND_ASSIGN(auto cdev, pool_->open_volume(c.id, true));
  L_ASSERT_OK(CheckPattern(*cdev, 512 * kMiB, 4 * kMiB, 9));
}

TEST_P(LocalPoolTest, ChangedExtentsAfterKnownWrites) {
  Volume v = Make("pvc-cbt", 64 * kMiB);
  L_ASSERT_OK_AND_ASSIGN(auto dev, pool_->open_volume(v.id, false));
  L_ASSERT_OK(WritePattern(*dev, 0, 16 * kMiB, 1));
  L_ASSERT_OK_AND_ASSIGN(auto s1, pool_->create_snapshot(v.id, "s1"));
  L_ASSERT_OK(WritePattern(*dev, 4 * kMiB, 4096, 2));                // overwrite in old data
  L_ASSERT_OK(WritePattern(*dev, 40 * kMiB, kMiB, 2));               // new data in a hole
  L_ASSERT_OK(blockdev::Discard(*dev, 8 * kMiB, 2 * kMiB));          // punched data
  L_ASSERT_OK_AND_ASSIGN(auto s2, pool_->create_snapshot(v.id, "s2"));
  dev.reset();

  // Allocated map of one snapshot: SEEK_DATA on every file system.
  L_ASSERT_OK_AND_ASSIGN(auto alloc, pool_->changed_extents("", s1.id));
  ASSERT_FALSE(alloc.empty());
  EXPECT_EQ(alloc.front().offset, 0u);
  EXPECT_GE(blockdev::TotalBytes(alloc), 16 * kMiB);
  EXPECT_LE(blockdev::TotalBytes(alloc), 17 * kMiB);

  auto diff = pool_->changed_extents(s1.id, s2.id);
  if (!GetParam()) {
    EXPECT_EQ(diff.status().code(), StatusCode::kUnimplemented) << diff.status();
    return;
  }
  ASSERT_TRUE(diff.ok()) << diff.status();
  // Exactly the three changes, at the file system's block granularity.
  const blockdev::ExtentList want = {{4 * kMiB, 4096}, {8 * kMiB, 2 * kMiB}, {40 * kMiB, kMiB}};
  blockdev::ExtentList got = blockdev::AlignOut(*diff, 4096);
  EXPECT_EQ(got, want) << "got " << got.size() << " extents, " << blockdev::TotalBytes(got)
                       << " bytes";
  // The same answer by reading both snapshots.
  L_ASSERT_OK_AND_ASSIGN(auto a, pool_->open_snapshot(s1.id));
  L_ASSERT_OK_AND_ASSIGN(auto b, pool_->open_snapshot(s2.id));
  L_ASSERT_OK_AND_ASSIGN(auto read, snapshot::CompareDevices(*a, *b));
  EXPECT_EQ(read.extents, want);
}

// A process killed in the middle of a snapshot copy (the ext4 path, which takes a while) or of
// a create leaves nothing visible and nothing in staging once the pool is reopened.
TEST_P(LocalPoolTest, KilledMidOperationLeavesNothingHalfMade) {
  Volume v = Make("pvc-victim", 256 * kMiB);
  {
    L_ASSERT_OK_AND_ASSIGN(auto dev, pool_->open_volume(v.id, false));
    L_ASSERT_OK(WritePattern(*dev, 0, 192 * kMiB, 3));
  }
  std::string helper = absl::StrCat(std::getenv("VDISK_BINARY_DIR") ? std::getenv("VDISK_BINARY_DIR")
                                                                    : ".",
                                    "/tests/pool/local_crash_helper");
  ASSERT_EQ(::access(helper.c_str(), X_OK), 0) << helper;
  pool_.reset();
  for (int delay_ms : {0, 20, 80, 200}) {
    SCOPED_TRACE(delay_ms);
    int out[2];
    ASSERT_EQ(::pipe(out), 0);
    pid_t pid = ::fork();
    if (pid == 0) {
      ::dup2(out[1], 1);
      ::close(out[0]);
      std::string name = absl::StrCat("snap-killed-", delay_ms);
      ::execl(helper.c_str(), helper.c_str(), root_.c_str(), "snapshot", v.id.c_str(),
              name.c_str(), nullptr);
      ::_exit(127);
    }
    ::close(out[1]);
    char buf[6] = {};
    ASSERT_EQ(::read(out[0], buf, 6), 6);  // "ready\n": the pool is open, the snapshot starts
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ::close(out[0]);

    Open();
    L_ASSERT_OK_AND_ASSIGN(auto found, pool_->find_snapshot_by_name(absl::StrCat("snap-killed-", delay_ms)));
    fprintf(stderr, "killed after %d ms: snapshot %s\n", delay_ms,
            found ? "committed before the kill" : "not committed");
    if (found) {  // committed before the kill: must be complete
      L_ASSERT_OK_AND_ASSIGN(auto sdev, pool_->open_snapshot(found->id));
      L_ASSERT_OK(CheckPattern(*sdev, 0, 192 * kMiB, 3));
    } else {
      // Not visible; a retry works.
      L_ASSERT_OK(pool_->create_snapshot(v.id, absl::StrCat("snap-killed-", delay_ms)).status());
    }
    int entries = 0;
    if (DIR* d = ::opendir((root_ + "/staging").c_str())) {
      while (struct dirent* e = ::readdir(d))
        if (e->d_name[0] != '.') ++entries;
      ::closedir(d);
    }
    EXPECT_EQ(entries, 0) << "staging not swept";
    pool_.reset();
  }
  Open();
}

// A build held by a live process (its intent flock is held) is neither swept by another pool
// object opening the same root nor duplicated: a create of the same name gets ABORTED.
TEST_P(LocalPoolTest, LiveBuildsOfOtherProcessesAreRespected) {
  const std::string intent = root_ + "/staging/v-pvc-inflight-0000000000aa.intent";
  L_ASSERT_OK(fs::WriteFileAtomic(intent, R"({"kind":"v","name":"pvc-inflight"})"));
  L_ASSERT_OK(fs::MakeDirs(root_ + "/staging/v-pvc-inflight-0000000000aa"));
  {
    L_ASSERT_OK_AND_ASSIGN(auto held, blockdev::local::FileLock::TryAcquire(intent, false));
    Open();  // sweeps: must keep the live build
    EXPECT_EQ(::access(intent.c_str(), F_OK), 0);
    VolumeRequest req;
    req.name = "pvc-inflight";
    req.size_bytes = 4 * kMiB;
    EXPECT_EQ(pool_->create_volume(req).status().code(), StatusCode::kAborted);
  }
  // The holder died (lock released): the next create cleans up and succeeds.
  Make("pvc-inflight", 4 * kMiB);
  EXPECT_NE(::access(intent.c_str(), F_OK), 0);
}

TEST_P(LocalPoolTest, TwoPoolObjectsShareOneRoot) {
  LocalPoolOptions o;
  o.root = root_;
  L_ASSERT_OK_AND_ASSIGN(auto other, blockdev::local::OpenLocalPool(o));
  Volume v = Make("pvc-shared", 4 * kMiB);
  L_ASSERT_OK_AND_ASSIGN(auto seen, other->find_volume_by_name("pvc-shared"));
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->id, v.id);
  VolumeRequest dup;
  dup.name = "pvc-shared";
  dup.size_bytes = 4 * kMiB;
  EXPECT_EQ(other->create_volume(dup).status().code(), StatusCode::kAlreadyExists);
  L_ASSERT_OK(other->delete_volume(v.id));
  EXPECT_EQ(pool_->get_volume(v.id).status().code(), StatusCode::kNotFound);
}

// A content source in another pool (e.g. an XFS pool restoring from a snapshot of a root-fs
// pool) is host-copied by clone/, and the new volume records no source of its own pool.
TEST_P(LocalPoolTest, CloneAcrossPoolsIsAHostCopy) {
  Volume v = Make("pvc-xsrc", 16 * kMiB);
  {
    L_ASSERT_OK_AND_ASSIGN(auto dev, pool_->open_volume(v.id, false));
    L_ASSERT_OK(WritePattern(*dev, 2 * kMiB, 3 * kMiB, 8));
  }
  L_ASSERT_OK_AND_ASSIGN(auto snap, pool_->create_snapshot(v.id, "snap-xsrc"));
  LocalPoolOptions o;
  o.name = "other";
  o.root = dir_ + "/other-root";
  L_ASSERT_OK_AND_ASSIGN(auto other, blockdev::local::OpenLocalPool(o));
  VolumeRequest req;
  req.name = "pvc-xclone";
  req.size_bytes = 32 * kMiB;
  req.source = {VolumeSource::Kind::kSnapshot, snap.id};
  clone::CloneOptions copts;
  copts.source_pool = pool_.get();
  clone::CloneReport report;
  L_ASSERT_OK_AND_ASSIGN(Volume c, clone::CreateVolumeFromSource(*other, req, copts, &report));
  EXPECT_EQ(report.strategy, clone::Strategy::kHostCopy);
  EXPECT_EQ(c.source.kind, VolumeSource::Kind::kNone);
  EXPECT_FALSE(c.pending);
  L_ASSERT_OK_AND_ASSIGN(auto cdev, other->open_volume(c.id, true));
  L_ASSERT_OK(CheckZeroes(*cdev, 0, 2 * kMiB));
  L_ASSERT_OK(CheckPattern(*cdev, 2 * kMiB, 3 * kMiB, 8));
  L_ASSERT_OK(CheckZeroes(*cdev, 5 * kMiB, 27 * kMiB));
  // Retry: the same volume.
  L_ASSERT_OK_AND_ASSIGN(Volume again, clone::CreateVolumeFromSource(*other, req, copts));
  EXPECT_EQ(again.id, c.id);
  // Without naming the source pool, the snapshot id means nothing in `other`.
  req.name = "pvc-xclone-2";
  EXPECT_EQ(clone::CreateVolumeFromSource(*other, req).status().code(), StatusCode::kNotFound);
}

TEST_P(LocalPoolTest, RegistryBuildsTheLocalPoolFromAFlag) {
  blockdev::local::Register();  // what RegisterBuiltinBackends() does for this kind
  L_ASSERT_OK_AND_ASSIGN(auto cfg, blockdev::ParsePoolFlag("local:" + root_));
  blockdev::PoolSet set;
  L_ASSERT_OK(set.Add(cfg));
  L_ASSERT_OK_AND_ASSIGN(auto pool, set.Get("local"));
  EXPECT_EQ(pool->kind(), "local");
  EXPECT_TRUE(pool->capabilities().node_local);
  Volume v = Make("pvc-reg", 4 * kMiB);
  L_ASSERT_OK_AND_ASSIGN(auto got, pool->get_volume(v.id));
  EXPECT_EQ(got.name, "pvc-reg");
}

TEST_P(LocalPoolTest, ConfigurationErrors) {
  blockdev::PoolConfig cfg{"p", "local", {{"root", "relative/dir"}}};
  EXPECT_EQ(blockdev::local::ParseLocalPoolConfig(cfg).status().code(),
            StatusCode::kInvalidArgument);
  cfg.options = {{"root", root_}, {"colour", "blue"}};
  EXPECT_EQ(blockdev::local::ParseLocalPoolConfig(cfg).status().code(),
            StatusCode::kInvalidArgument);
  cfg.options = {{"root", root_}, {"reflink", "maybe"}};
  EXPECT_EQ(blockdev::local::ParseLocalPoolConfig(cfg).status().code(),
            StatusCode::kInvalidArgument);
  cfg.options = {{"root", root_}, {"reflink", "off"}};
  L_ASSERT_OK_AND_ASSIGN(auto o, blockdev::local::ParseLocalPoolConfig(cfg));
  EXPECT_EQ(o.reflink, LocalPoolOptions::Reflink::kOff);
  L_ASSERT_OK_AND_ASSIGN(auto off, blockdev::local::OpenLocalPool(o));
  EXPECT_FALSE(off->capabilities().fast_clone);
  // reflink=on where there is none.
  LocalPoolOptions want;
  want.root = root_;
  want.reflink = LocalPoolOptions::Reflink::kOn;
  auto on = blockdev::local::OpenLocalPool(want);
  if (GetParam()) EXPECT_TRUE(on.ok()) << on.status();
  else EXPECT_EQ(on.status().code(), StatusCode::kFailedPrecondition);
  // A non-empty directory that is not a pool is not taken over.
  std::string foreign = dir_ + "/foreign";
  L_ASSERT_OK(fs::MakeDirs(foreign));
  L_ASSERT_OK(fs::WriteFileAtomic(foreign + "/precious.txt", "keep me"));
  LocalPoolOptions f;
  f.root = foreign;
  EXPECT_EQ(blockdev::local::OpenLocalPool(f).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(*fs::ReadFile(foreign + "/precious.txt"), "keep me");
}

INSTANTIATE_TEST_SUITE_P(Local, LocalPoolTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& i) {
                           return i.param ? "Xfs" : "RootFs";
                         });

}  // namespace
}  // namespace vdisk::pooltest
