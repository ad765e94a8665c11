// The iSCSI pool beyond the conformance suite, on real tgtd instances: per-initiator ACLs through
// publish() with a node that has no target host, CHAP secrets that never reach a log, a full
// target (backing store and max_volumes), and the target restarting — a session that reconnects,
// a pool that re-exports, a host copy that stops with UNAVAILABLE and resumes from its checkpoint.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
#include "blockdev/aligned_buffer.h"
#include "blockdev/iscsi/iscsi_pool_impl.h"
#include "blockdev/sync_io.h"
#include "clone/create.h"
#include "common/fs.h"
#include "common/subprocess.h"
#include "spdlog/sinks/ostream_sink.h"
#include "spdlog/spdlog.h"
#include "tests/iscsi/tgt_env.h"
#include "tests/pool/pool_test_util.h"
#include "tests/pool/status_macros.h"

namespace vdisk::blockdev::iscsi {
namespace {

using absl::StatusCode;
using vdisk::pooltest::CheckPattern;
using vdisk::pooltest::Digest;
using vdisk::pooltest::WritePattern;
using vdisk::testing::IscsiPoolConfig;
using vdisk::testing::OpenTestPool;
constexpr uint64_t kMiB = 1 << 20;


VolumeRequest Req(const std::string& name, uint64_t size) {
  VolumeRequest r;
  r.name = name;
  r.size_bytes = size;
  r.access_modes = {AccessMode::kMultiNodeMultiWriter};
  return r;
}

// Deletes what a pool made and its directory.
struct PoolCleanup {
  std::shared_ptr<Pool> pool;
  std::string dir;
  ~PoolCleanup() {
    if (pool) {
      if (auto s = pool->list_snapshots(); s.ok())
        for (const auto& x : *s) (void)pool->delete_snapshot(x.id);
      if (auto v = pool->list_volumes(); v.ok())
        for (const auto& x : *v) {
          (void)pool->unpublish(x.id, "");
          (void)pool->delete_volume(x.id);
        }
      pool.reset();
    }
    if (!dir.empty()) (void)fs::RemoveAll(dir);
  }
};

TEST(IscsiPoolTest, TargetsAdmitPublishedNodesOnly) {
  auto env = vdisk::testing::LoadTgtEnv();
  ASSERT_TRUE(env.ok()) << env.status();
  const std::string token = vdisk::testing::UniqueToken();
  PoolCleanup clean{nullptr, env->backing + "/" + token};
  auto ctl = OpenTestPool(IscsiPoolConfig(*env, "acl", token));
  ASSERT_TRUE(ctl.ok()) << ctl.status();
  clean.pool = *ctl;
  EXPECT_TRUE((*ctl)->capabilities().controller_publish);
  auto v = (*ctl)->create_volume(Req("pvc-acl", 8 * kMiB));
  ASSERT_TRUE(v.ok()) << v.status();
  {
    auto dev = (*ctl)->open_volume(v->id, false);  // the controller admits itself while it works
    ASSERT_TRUE(dev.ok()) << dev.status();
    VT_ASSERT_OK(WritePattern(**dev, 0, kMiB, 3));
  }
  // Two nodes: the same pool config with target_host: none and their own node ids.
  auto node_pool = [&](const std::string& node) {
    PoolConfig c = IscsiPoolConfig(*env, "acl", token, {{"target_host", "none"}});
    c.options.erase("backing_dir");
    c.node_id = node;
    return OpenTestPool(c);
  };
  auto a = node_pool("node-a"), b = node_pool("node-b");
  ASSERT_TRUE(a.ok() && b.ok()) << a.status() << b.status();
  EXPECT_EQ((*a)->open_volume(v->id, true).status().code(), StatusCode::kNotFound) << "not published yet";
  EXPECT_EQ((*a)->create_volume(Req("x", kMiB)).status().code(), StatusCode::kFailedPrecondition);
  auto ctx = (*ctl)->publish(v->id, "node-a", false);
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  EXPECT_EQ(ctx->at("iscsi.initiator"), NodeInitiator("iqn.2024-01.io.vdisk:node", "node-a"));
  VT_ASSERT_OK((*ctl)->publish(v->id, "node-a", false).status());  // idempotent
  {
    auto dev = (*a)->open_volume(v->id, false);
    ASSERT_TRUE(dev.ok()) << dev.status();
    EXPECT_TRUE(CheckPattern(**dev, 0, kMiB, 3).ok());
    auto probed = (*a)->get_volume(v->id);  // a node answers from the target itself
    ASSERT_TRUE(probed.ok()) << probed.status();
    EXPECT_EQ(probed->size_bytes, 8 * kMiB);
  }
  EXPECT_EQ((*b)->open_volume(v->id, true).status().code(), StatusCode::kNotFound) << "node-b is not admitted";
  EXPECT_EQ((*ctl)->delete_volume(v->id).code(), StatusCode::kFailedPrecondition) << "published";
  // Restarting the controller keeps the ACL (the journal holds it).
  clean.pool.reset();
  ctl->reset();
  ctl = OpenTestPool(IscsiPoolConfig(*env, "acl", token));
  ASSERT_TRUE(ctl.ok());
  clean.pool = *ctl;
  ASSERT_TRUE((*a)->open_volume(v->id, true).ok());
  VT_ASSERT_OK((*ctl)->unpublish(v->id, "node-a"));
  VT_ASSERT_OK((*ctl)->unpublish(v->id, "node-a"));
  EXPECT_EQ((*a)->open_volume(v->id, true).status().code(), StatusCode::kNotFound) << "unpublished";
  VT_ASSERT_OK((*ctl)->delete_volume(v->id));
}

TEST(IscsiPoolTest, ChapSecretsAreUsedAndNeverLogged) {
  auto env = vdisk::testing::LoadTgtEnv();
  ASSERT_TRUE(env.ok()) << env.status();
  const std::string token = vdisk::testing::UniqueToken();
  const std::string password = "pw-" + token + "-Zq9";
  std::ostringstream log;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log);
  auto old = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("capture", sink));
  spdlog::set_level(spdlog::level::trace);
  {
    PoolCleanup clean{nullptr, env->backing + "/" + token};
    const Params secrets = {{"node.session.auth.username", "u" + token}, {"node.session.auth.password", password}};
    auto ctl = OpenTestPool(IscsiPoolConfig(*env, "chap", token), secrets);
    ASSERT_TRUE(ctl.ok()) << ctl.status();
    clean.pool = *ctl;
    auto v = (*ctl)->create_volume(Req("pvc-chap", 4 * kMiB));
    ASSERT_TRUE(v.ok()) << v.status();
    VT_ASSERT_OK((*ctl)->publish(v->id, "node-c", false).status());
    PoolConfig nc = IscsiPoolConfig(*env, "chap", token, {{"target_host", "none"}});
    nc.options.erase("backing_dir");
    nc.node_id = "node-c";
    auto no_secret = OpenTestPool(nc);
    auto wrong = OpenTestPool(nc, {{"node.session.auth.username", "u" + token}, {"node.session.auth.password", "nope-nope-nope"}});
    auto right = OpenTestPool(nc, secrets);
    ASSERT_TRUE(no_secret.ok() && wrong.ok() && right.ok());
    EXPECT_EQ((*no_secret)->open_volume(v->id, true).status().code(), StatusCode::kPermissionDenied);
    EXPECT_EQ((*wrong)->open_volume(v->id, true).status().code(), StatusCode::kPermissionDenied);
    EXPECT_TRUE((*right)->open_volume(v->id, true).ok());
    // tgtd restarts forget accounts; the re-export brings the CHAP requirement back.
    VT_ASSERT_OK(static_cast<IscsiPool&>(**ctl).EnsureExports());
    EXPECT_EQ((*no_secret)->open_volume(v->id, true).status().code(), StatusCode::kPermissionDenied);
  }
  spdlog::set_default_logger(old);
  EXPECT_EQ(log.str().find(password), std::string::npos) << "the CHAP secret reached the log";
  EXPECT_NE(log.str().find("CHAP"), std::string::npos) << "the capture saw the pool's log";
}

TEST(IscsiPoolTest, AFullTargetIsResourceExhausted) {
  vdisk::testing::PrivateTgt tgt("320M");  // a small XFS: the backing store fills up
  ASSERT_TRUE(tgt.status().ok()) << tgt.status();
  const std::string token = vdisk::testing::UniqueToken();
  PoolCleanup clean{nullptr, tgt.env().backing + "/" + token};
  auto pool = OpenTestPool(IscsiPoolConfig(tgt.env(), "full", token, {{"max_volumes", "3"}}));
  ASSERT_TRUE(pool.ok()) << pool.status();
  clean.pool = *pool;
  VolumeRequest thick = Req("pvc-thick", 1024 * kMiB);
  thick.params = {{"preallocation", "full"}};
  EXPECT_EQ((*pool)->create_volume(thick).status().code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE((*(*pool)->list_volumes()).empty()) << "a refused create left a volume";
  // Thin: created, and writes beyond the space fail with RESOURCE_EXHAUSTED.
  auto thin = (*pool)->create_volume(Req("pvc-thin", 1024 * kMiB));
  ASSERT_TRUE(thin.ok()) << thin.status();
  {
    auto dev = (*pool)->open_volume(thin->id, false);
    ASSERT_TRUE(dev.ok());
    AlignedBuffer buf(4 * kMiB);
    Status last;
    for (uint64_t off = 0; off < 1024 * kMiB && last.ok(); off += buf.size()) last = WriteAt(**dev, off, buf.span());
    if (last.ok()) last = Flush(**dev);
    // SBC's answer is SPACE ALLOCATION FAILED (RESOURCE_EXHAUSTED); tgt 1.0.85 answers any failed
    // write of its backing file with MEDIUM ERROR (DATA_LOSS). Either way the write fails, and the
    // pool's capacity shows the target full.
    EXPECT_TRUE(last.code() == StatusCode::kResourceExhausted || last.code() == StatusCode::kDataLoss) << last;
  }
  auto cap = (*pool)->capacity({});
  ASSERT_TRUE(cap.ok());
  EXPECT_LT(cap->available_bytes, 16 * kMiB);
  ASSERT_TRUE((*pool)->create_volume(Req("pvc-2", kMiB)).ok());
  ASSERT_TRUE((*pool)->create_volume(Req("pvc-3", kMiB)).ok());
  EXPECT_EQ((*pool)->create_volume(Req("pvc-4", kMiB)).status().code(), StatusCode::kResourceExhausted)
      << "max_volumes";
}

TEST(IscsiPoolTest, SessionsReconnectAndThePoolReexportsAfterATargetRestart) {
  vdisk::testing::PrivateTgt tgt;
  ASSERT_TRUE(tgt.status().ok()) << tgt.status();
  const std::string token = vdisk::testing::UniqueToken();
  PoolCleanup clean{nullptr, tgt.env().backing + "/" + token};
  auto pool = OpenTestPool(IscsiPoolConfig(tgt.env(), "restart", token, {{"export_check", "1"}}));
  ASSERT_TRUE(pool.ok()) << pool.status();
  clean.pool = *pool;
  auto v = (*pool)->create_volume(Req("pvc-restart", 16 * kMiB));
  ASSERT_TRUE(v.ok());
  auto dev = (*pool)->open_volume(v->id, false);
  ASSERT_TRUE(dev.ok());
  VT_ASSERT_OK(WritePattern(**dev, 0, 4 * kMiB, 21));
  VT_ASSERT_OK(Flush(**dev));
  auto q = (*dev)->open_queue(8);
  ASSERT_TRUE(q.ok());
  // tgtd dies (targets gone) and comes back empty; the pool's export check re-creates the
  // target, and the queue's commands issued meanwhile complete on the new session.
  VT_ASSERT_OK(vdisk::testing::TgtCommand(tgt.env(), "kill"));
  AlignedBuffer buf(kMiB);
  std::atomic<int> ok{0};
  for (int i = 0; i < 4; ++i) (*q)->read(static_cast<uint64_t>(i) * kMiB, buf.span(), [&](Status s) { ok += s.ok(); });
  VT_ASSERT_OK((*q)->submit());
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  VT_ASSERT_OK(vdisk::testing::TgtCommand(tgt.env(), "start"));
  VT_ASSERT_OK((*q)->drain());
  EXPECT_EQ(ok.load(), 4) << "commands in flight across the restart were re-issued";
  EXPECT_TRUE(CheckPattern(**dev, 0, 4 * kMiB, 21).ok());
  q->reset();
  dev->reset();
  // A target that stays down: commands fail with UNAVAILABLE once reconnect_timeout has passed.
  auto quick = OpenTestPool(IscsiPoolConfig(tgt.env(), "restart2", token, {{"reconnect_timeout", "2"}}));
  ASSERT_TRUE(quick.ok()) << quick.status();
  auto d2 = (*quick)->open_volume(v->id, true);
  ASSERT_TRUE(d2.ok()) << d2.status();
  VT_ASSERT_OK(vdisk::testing::TgtCommand(tgt.env(), "kill"));
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(ReadAt(**d2, 0, buf.span()).code(), StatusCode::kUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  VT_ASSERT_OK(vdisk::testing::TgtCommand(tgt.env(), "start"));
  d2->reset();
}

TEST(IscsiPoolTest, AHostCopyCutByATargetRestartResumesFromItsCheckpoint) {
  vdisk::testing::PrivateTgt tgt;
  ASSERT_TRUE(tgt.status().ok()) << tgt.status();
  const std::string token = vdisk::testing::UniqueToken();
  PoolCleanup clean{nullptr, tgt.env().backing + "/" + token};
  // reflink: off — the clone is a host copy through libiscsi (sparse, at depth, resumable).
  auto pool = OpenTestPool(
      IscsiPoolConfig(tgt.env(), "copy", token, {{"reflink", "off"}, {"reconnect_timeout", "1"}, {"acl", "open"}}));
  ASSERT_TRUE(pool.ok()) << pool.status();
  clean.pool = *pool;
  auto src = (*pool)->create_volume(Req("pvc-golden", 256 * kMiB));
  ASSERT_TRUE(src.ok());
  {
    auto dev = (*pool)->open_volume(src->id, false);
    ASSERT_TRUE(dev.ok());
    for (int i = 0; i < 8; ++i) VT_ASSERT_OK(WritePattern(**dev, static_cast<uint64_t>(i) * 32 * kMiB, 16 * kMiB, 30 + i));
  }
  const std::string ckpt = absl::StrCat(tgt.env().dir, "/ckpt");
  VT_ASSERT_OK(fs::MakeDirs(ckpt));
  VolumeRequest req = Req("pvc-copy", 256 * kMiB);
  req.source = {VolumeSource::Kind::kVolume, src->id};
  clone::CreateOptions o;
  o.clone.checkpoint_dir = ckpt;
  o.clone.chunk_bytes = 256 << 10;
  o.clone.queue_depth = 2;
  o.clone.checkpoint_every_bytes = 4 * kMiB;
  std::atomic<uint64_t> done{0};
  std::atomic<bool> killed{false};
  o.clone.progress = [&](const CopyProgress& p) {
    done = p.bytes_done;
    if (!killed && p.bytes_read >= 24 * kMiB) {
      killed = true;
      (void)vdisk::testing::TgtCommand(tgt.env(), "kill");
    }
  };
  auto first = clone::CreateVolume(**pool, req, o);
  ASSERT_TRUE(killed.load()) << "the copy finished before the target could be killed";
  EXPECT_EQ(first.status().code(), StatusCode::kUnavailable) << first.status();
  VT_ASSERT_OK(vdisk::testing::TgtCommand(tgt.env(), "start"));
  auto pending = (*pool)->find_volume_by_name("pvc-copy");
  ASSERT_TRUE(pending.ok() && pending->has_value()) << "the pending volume must stay for the retry";
  EXPECT_TRUE((*pending)->pending);
  o.clone.progress = nullptr;
  clone::CloneReport report;
  auto again = clone::CreateVolume(**pool, req, o, &report);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(report.resumed);
  EXPECT_GT(report.copy.resumed_from, 0u) << "resumed from the checkpoint, not from 0";
  EXPECT_FALSE(again->pending);
  // Bytes checked by an independent client: QEMU compares the two LUNs over iscsi://.
  const auto uri = [&](const Volume& v) {
    return absl::StrCat("iscsi://", tgt.env().portal, "/", v.context.at("iscsi.iqn"), "/1");
  };
  auto cmp = RunProcess({"qemu-img", "compare", "-f", "raw", "-F", "raw", uri(*src), uri(*again)});
  ASSERT_TRUE(cmp.ok());
  EXPECT_EQ(cmp->exit_code, 0) << cmp->out << cmp->err;
}

}  // namespace
}  // namespace vdisk::blockdev::iscsi
