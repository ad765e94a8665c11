// clone/ on a real local pool (a temp directory: no reflink, so every clone is a host copy),
// with faults injected through the Pool/Device interfaces (a decorator over the real pool whose
// volumes fail writes after a number of them) — never a mocked backend.
#include "clone/clone.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <deque>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "blockdev/aligned_buffer.h"
#include "blockdev/local/local_pool.h"
#include "blockdev/sync_io.h"
#include "clone/create.h"
#include "common/fs.h"

namespace vdisk::clone {
namespace {

using blockdev::Device;
using blockdev::IoCallback;
using blockdev::IoQueue;
using blockdev::Pool;
using blockdev::Volume;
using blockdev::VolumeRequest;
using blockdev::VolumeSource;

constexpr uint64_t kMiB = 1 << 20;

// --- fault injection through the interfaces --------------------------------------------------

// Fails every write after the first `ok_writes` (shared by all queues of the device) with EIO.
// Failed callbacks are delivered from poll(), as the contract requires.
class FailingQueue : public IoQueue {
 public:
  FailingQueue(std::unique_ptr<IoQueue> inner, std::shared_ptr<std::atomic<int>> budget)
      : inner_(std::move(inner)), budget_(std::move(budget)) {}
  void readv(uint64_t o, const iovec* v, int n, IoCallback d) override { inner_->readv(o, v, n, std::move(d)); }
  void writev(uint64_t o, const iovec* v, int n, IoCallback d) override {
    if (budget_->fetch_sub(1) > 0) return inner_->writev(o, v, n, std::move(d));
    failed_.push_back(std::move(d));
  }
  void flush(IoCallback d) override { inner_->flush(std::move(d)); }
  void discard(uint64_t o, uint64_t l, IoCallback d) override { inner_->discard(o, l, std::move(d)); }
  void write_zeroes(uint64_t o, uint64_t l, IoCallback d) override {
    inner_->write_zeroes(o, l, std::move(d));
  }
  Status submit() override { return inner_->submit(); }
  StatusOr<unsigned> poll(unsigned min_complete, int timeout_ms) override {
    unsigned n = 0;
    while (!failed_.empty()) {
      IoCallback cb = std::move(failed_.front());
      failed_.pop_front();
      std::move(cb)(absl::DataLossError("injected write error (EIO)"));
      ++n;
    }
    if (inner_->in_flight() == 0) return n;
    ASSIGN_OR_RETURN(unsigned m, inner_->poll(n >= min_complete ? 0 : min_complete - n,
                                              n > 0 ? 0 : timeout_ms));
    return n + m;
  }
  unsigned in_flight() const override { return inner_->in_flight() + failed_.size(); }
  unsigned depth() const override { return inner_->depth(); }

 private:
  std::unique_ptr<IoQueue> inner_;
  std::shared_ptr<std::atomic<int>> budget_;
  std::deque<IoCallback> failed_;
};

class FailingDevice : public Device {
 public:
  FailingDevice(std::unique_ptr<Device> inner, int ok_writes)
      : inner_(std::move(inner)), budget_(std::make_shared<std::atomic<int>>(ok_writes)) {}
  uint64_t size() const override { return inner_->size(); }
  uint32_t block_size() const override { return inner_->block_size(); }
  uint32_t buffer_alignment() const override { return inner_->buffer_alignment(); }
  bool read_only() const override { return inner_->read_only(); }
  std::string describe() const override { return "failing:" + inner_->describe(); }
  StatusOr<std::unique_ptr<IoQueue>> open_queue(unsigned depth) override {
    ASSIGN_OR_RETURN(auto q, inner_->open_queue(depth));
    return std::unique_ptr<IoQueue>(new FailingQueue(std::move(q), budget_));
  }
  StatusOr<blockdev::ExtentList> allocated(uint64_t o, uint64_t l) override {
    return inner_->allocated(o, l);
  }

 private:
  std::unique_ptr<Device> inner_;
  std::shared_ptr<std::atomic<int>> budget_;
};

// The real pool, except that volumes opened for writing fail after `ok_writes` writes.
class FailingWritesPool : public Pool {
 public:
  FailingWritesPool(std::shared_ptr<Pool> inner, int ok_writes)
      : in_(std::move(inner)), ok_writes_(ok_writes) {}
  std::string name() const override { return in_->name(); }
  std::string kind() const override { return in_->kind(); }
  blockdev::Capabilities capabilities() const override { return in_->capabilities(); }
  Status validate_params(const blockdev::Params& p) const override { return in_->validate_params(p); }
  StatusOr<blockdev::Capacity> capacity(const blockdev::Params& p) override { return in_->capacity(p); }
  StatusOr<Volume> create_volume(const VolumeRequest& r) override { return in_->create_volume(r); }
  Status complete_volume(const std::string& id) override { return in_->complete_volume(id); }
  Status delete_volume(const std::string& id) override { return in_->delete_volume(id); }
  StatusOr<Volume> get_volume(const std::string& id) override { return in_->get_volume(id); }
  StatusOr<std::optional<Volume>> find_volume_by_name(const std::string& n) override {
    return in_->find_volume_by_name(n);
  }
  StatusOr<std::vector<Volume>> list_volumes() override { return in_->list_volumes(); }
  StatusOr<uint64_t> expand_volume(const std::string& id, uint64_t s) override {
    return in_->expand_volume(id, s);
  }
  StatusOr<blockdev::Snapshot> create_snapshot(const std::string& v, const std::string& n) override {
    return in_->create_snapshot(v, n);
  }
  Status delete_snapshot(const std::string& id) override { return in_->delete_snapshot(id); }
  StatusOr<blockdev::Snapshot> get_snapshot(const std::string& id) override { return in_->get_snapshot(id); }
  StatusOr<std::optional<blockdev::Snapshot>> find_snapshot_by_name(const std::string& n) override {
    return in_->find_snapshot_by_name(n);
  }
  StatusOr<std::vector<blockdev::Snapshot>> list_snapshots() override { return in_->list_snapshots(); }
  StatusOr<std::unique_ptr<Device>> open_volume(const std::string& id, bool ro) override {
    ASSIGN_OR_RETURN(auto dev, in_->open_volume(id, ro));
    if (ro) return dev;
    return std::unique_ptr<Device>(new FailingDevice(std::move(dev), ok_writes_));
  }
  StatusOr<std::unique_ptr<Device>> open_snapshot(const std::string& id) override {
    return in_->open_snapshot(id);
  }
  StatusOr<blockdev::ExtentList> changed_extents(const std::string& b, const std::string& id) override {
    return in_->changed_extents(b, id);
  }
  StatusOr<blockdev::Attachment> attach(const std::string& id, bool ro, const blockdev::Params& s) override {
    return in_->attach(id, ro, s);
  }
  Status detach(const std::string& id, const blockdev::Attachment& a) override { return in_->detach(id, a); }
  Status node_expand(const std::string& id, const blockdev::Attachment& a) override {
    return in_->node_expand(id, a);
  }

 private:
  std::shared_ptr<Pool> in_;
  int ok_writes_;
};

// --- fixture -----------------------------------------------------------------------------------

class CloneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vdisk-clone-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    blockdev::local::LocalPoolOptions o;
    o.root = dir_ + "/pool";
    o.reflink = blockdev::local::LocalPoolOptions::Reflink::kOff;  // always the host copy
    auto p = blockdev::local::OpenLocalPool(o);
    ASSERT_TRUE(p.ok()) << p.status();
    pool_ = *p;
    // A 32 MiB source with 16 MiB of data in 1 MiB extents (every other MiB).
    VolumeRequest req;
    req.name = "src";
    req.size_bytes = 32 * kMiB;
    auto v = pool_->create_volume(req);
    ASSERT_TRUE(v.ok()) << v.status();
    src_ = *v;
    auto dev = pool_->open_volume(src_.id, false);
    ASSERT_TRUE(dev.ok());
    blockdev::AlignedBuffer buf(kMiB);
    for (uint64_t i = 0; i < 32; i += 2) {
      std::memset(buf.data(), static_cast<int>(i + 1), kMiB);
      ASSERT_TRUE(blockdev::WriteAt(**dev, i * kMiB, buf.span()).ok());
    }
    ASSERT_TRUE(blockdev::Flush(**dev).ok());
  }
  void TearDown() override {
    pool_.reset();
    fs::RemoveAll(dir_).IgnoreError();
  }
  std::string Content(Pool& pool, const std::string& id) {
    auto dev = pool.open_volume(id, true);
    EXPECT_TRUE(dev.ok());
    std::string out(32 * kMiB, '\0');
    blockdev::AlignedBuffer buf(32 * kMiB);
    EXPECT_TRUE(blockdev::ReadAt(**dev, 0, buf.span()).ok());
    std::memcpy(out.data(), buf.data(), out.size());
    return out;
  }
  VolumeRequest CloneRequest(const std::string& name) {
    VolumeRequest req;
    req.name = name;
    req.source = {VolumeSource::Kind::kVolume, src_.id};
    return req;
  }

  std::string dir_;
  std::shared_ptr<Pool> pool_;
  Volume src_;
};

TEST_F(CloneTest, HostCopyFailureLeavesNothingBehind) {
  FailingWritesPool faulty(pool_, /*ok_writes=*/3);
  CloneOptions o;
  o.checkpoint_dir = dir_;
  auto v = CreateVolumeFromSource(faulty, CloneRequest("doomed"), o);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), absl::StatusCode::kDataLoss) << v.status();
  auto found = pool_->find_volume_by_name("doomed");
  ASSERT_TRUE(found.ok());
  EXPECT_FALSE(found->has_value()) << "the pending volume of a failed copy was left behind";
  auto all = pool_->list_volumes();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 1u);
  // No checkpoint either.
  for (const auto& entry : std::filesystem::directory_iterator(dir_))
    EXPECT_FALSE(entry.path().string().ends_with(".ckpt")) << entry.path();
}

TEST_F(CloneTest, CancelKeepsThePendingVolumeAndARetryResumes) {
  std::atomic<bool> cancel{false};
  CloneOptions o;
  o.checkpoint_dir = dir_;
  o.chunk_bytes = 256 * 1024;
  o.queue_depth = 2;
  o.cancel = &cancel;
  o.progress = [&](const blockdev::CopyProgress& p) {
    if (p.bytes_done > 0) cancel = true;
  };
  auto v = CreateVolumeFromSource(*pool_, CloneRequest("resumable"), o);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), absl::StatusCode::kCancelled) << v.status();
  auto pending = pool_->find_volume_by_name("resumable");
  ASSERT_TRUE(pending.ok());
  ASSERT_TRUE(pending->has_value());
  EXPECT_TRUE((*pending)->pending);

  CloneOptions again;
  again.checkpoint_dir = dir_;
  CloneReport report;
  auto done = CreateVolumeFromSource(*pool_, CloneRequest("resumable"), again, &report);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->id, (*pending)->id);
  EXPECT_FALSE(done->pending);
  EXPECT_TRUE(report.resumed);
  EXPECT_EQ(Content(*pool_, done->id), Content(*pool_, src_.id));
  EXPECT_NE(::access((dir_ + "/local-" + done->id + ".ckpt").c_str(), F_OK), 0)
      << "checkpoint left after success";
}

TEST_F(CloneTest, StrategiesAndErrors) {
  VolumeRequest none;
  none.name = "x";
  EXPECT_EQ(CreateVolumeFromSource(*pool_, none).status().code(),
            absl::StatusCode::kInvalidArgument);
  CloneOptions offload;
  offload.strategy = Strategy::kOffload;
  EXPECT_EQ(CreateVolumeFromSource(*pool_, CloneRequest("o"), offload).status().code(),
            absl::StatusCode::kFailedPrecondition)
      << "no reflink: the pool cannot offload";
  CloneOptions no_copy;
  no_copy.allow_host_copy = false;
  EXPECT_EQ(CreateVolumeFromSource(*pool_, CloneRequest("n"), no_copy).status().code(),
            absl::StatusCode::kFailedPrecondition);
  VolumeRequest missing = CloneRequest("m");
  missing.source.id = "no-such-volume";
  EXPECT_EQ(CreateVolumeFromSource(*pool_, missing).status().code(), absl::StatusCode::kNotFound);
  VolumeRequest small = CloneRequest("s");
  small.size_bytes = 16 * kMiB;
  EXPECT_EQ(CreateVolumeFromSource(*pool_, small).status().code(), absl::StatusCode::kOutOfRange);
  auto all = pool_->list_volumes();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 1u) << "a refused clone left a volume";
  // The snapshot strategy needs a pool that clones snapshots itself: refused here.
  CloneOptions snap;
  snap.strategy = Strategy::kSnapshot;
  EXPECT_EQ(CreateVolumeFromSource(*pool_, CloneRequest("t"), snap).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // Host copy works and reports what it did.
  CloneReport report;
  auto v = CreateVolumeFromSource(*pool_, CloneRequest("h"), {}, &report);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(report.strategy, Strategy::kHostCopy);
  EXPECT_EQ(report.copy.bytes_written, 16 * kMiB) << "only the data is written";
  EXPECT_EQ(Content(*pool_, v->id), Content(*pool_, src_.id));
}

// CreateVolume is the one home of "the same name again": the rule every pool gets.
TEST_F(CloneTest, CreateVolumeIsIdempotentByNameForEveryRequest) {
  VolumeRequest req;
  req.name = "pvc-same";
  req.size_bytes = 8 * kMiB;
  req.access_modes = {blockdev::AccessMode::kSingleNodeWriter};
  CloneReport first;
  auto v = CreateVolume(*pool_, req, {}, &first);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_FALSE(first.already_done);
  CloneReport again;
  auto same = CreateVolume(*pool_, req, {}, &again);
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_EQ(same->id, v->id);
  EXPECT_TRUE(again.already_done);

  auto differs = [&](auto change) {
    VolumeRequest r = req;
    CreateOptions o;
    change(r, o);
    return CreateVolume(*pool_, r, o).status().code();
  };
  EXPECT_EQ(differs([](VolumeRequest& r, CreateOptions&) { r.mode = blockdev::VolumeMode::kFilesystem; }),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(differs([](VolumeRequest& r, CreateOptions&) {
              r.access_modes.push_back(blockdev::AccessMode::kMultiNodeMultiWriter);
            }),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(differs([](VolumeRequest& r, CreateOptions&) { r.size_bytes = 16 * kMiB; }),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(differs([](VolumeRequest& r, CreateOptions& o) {
              r.size_bytes = 16 * kMiB;
              o.accept_sizes = SizeRange{4 * kMiB, 16 * kMiB};  // the range an 8 MiB volume meets
            }),
            absl::StatusCode::kOk);
  EXPECT_EQ(differs([](VolumeRequest& r, CreateOptions& o) { o.accept_sizes = SizeRange{0, 4 * kMiB}; }),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(differs([&](VolumeRequest& r, CreateOptions& o) {
              r.size_bytes = 0;  // the source's size
              r.source = {VolumeSource::Kind::kVolume, src_.id};
              o.accept_sizes = SizeRange{};  // any size: only the source differs
            }),
            absl::StatusCode::kAlreadyExists);
  auto all = pool_->list_volumes();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 2u) << "a refused repeat made a volume";
}

TEST_F(CloneTest, CreateVolumeReplacesAHalfMadeEmptyVolumeAndChecksSources) {
  // A pending volume without a source is what an interrupted create leaves: made again.
  VolumeRequest debris;
  debris.name = "pvc-debris";
  debris.size_bytes = 4 * kMiB;
  debris.pending = true;
  auto half = pool_->create_volume(debris);
  ASSERT_TRUE(half.ok()) << half.status();
  debris.pending = false;
  auto v = CreateVolume(*pool_, debris);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_FALSE(v->pending);
  EXPECT_NE(v->id, half->id);
  // A source still being filled does not exist yet; the clone is not made.
  VolumeRequest filling;
  filling.name = "pvc-filling";
  filling.size_bytes = 4 * kMiB;
  filling.pending = true;
  auto f = pool_->create_volume(filling);
  ASSERT_TRUE(f.ok());
  VolumeRequest from = CloneRequest("pvc-from-filling");
  from.source.id = f->id;
  EXPECT_EQ(CreateVolume(*pool_, from).status().code(), absl::StatusCode::kNotFound);
  auto gone = pool_->find_volume_by_name("pvc-from-filling");
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
}

}  // namespace
}  // namespace vdisk::clone
