// The RBD pool's journal on the real cluster: its updates are fenced by the journal lock's
// lease, so a process that stalled past its lease (and was taken over by another process, here
// the `rados` tool) cannot write what it decided before.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <sys/wait.h>
#include <thread>

#include "absl/strings/str_cat.h"
#include "blockdev/rbd/cluster.h"
#include "blockdev/rbd/journal.h"
#include "tests/rbd/ceph_env.h"

namespace vdisk::blockdev::rbd {
namespace {

using ::absl::StatusCode;

class JournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto env = vdisk::testing::LoadCephEnv();
    ASSERT_TRUE(env.ok()) << env.status();
    env_ = *env;
    ClusterOptions o;
    o.conf = env_.conf;
    o.user = env_.driver_user;
    o.keyring = env_.driver_keyring;
    auto cluster = Cluster::Connect(o);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    auto io = IoCtx::Open(*cluster, env_.rbd_pool);
    ASSERT_TRUE(io.ok()) << io.status();
    io_ = std::make_unique<IoCtx>(std::move(*io));
    object_ = vdisk::testing::UniqueName("vdisk.journal.test");
  }

  // Runs the `rados` tool as the driver user on the test pool (another process).
  int Rados(const std::string& args, std::string* out = nullptr) {
    std::string cmd = absl::StrCat("rados -c ", env_.conf, " --id ", env_.driver_user, " --keyring ",
                                   env_.driver_keyring, " -p ", env_.rbd_pool, " ", args, " 2>&1");
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) return -1;
    char buf[4096];
    std::string text;
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) text.append(buf, n);
    if (out) *out = text;
    int rc = ::pclose(p);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  }

  vdisk::testing::CephEnv env_;
  std::unique_ptr<IoCtx> io_;
  std::string object_;
};

TEST_F(JournalTest, AProcessWhoseLeaseWasTakenOverCannotWrite) {
  Journal journal(io_.get(), object_, std::chrono::seconds(2));
  auto held = journal.Acquire();
  ASSERT_TRUE(held.ok()) << held.status();
  ASSERT_TRUE(journal.Update({{"vn/pvc-a", "ours-1"}}).ok());

  // This process stalls past its lease (a long GC pause, a frozen VM, a partition) ...
  std::this_thread::sleep_for(std::chrono::milliseconds(3000));
  // ... and another process takes the journal lock over, which it can only because the lease
  // ran out, then writes.
  std::string out;
  ASSERT_EQ(Rados(absl::StrCat("lock get ", object_, " vdisk.journal --lock-type exclusive "
                               "--lock-cookie other --lock-duration 60"), &out), 0)
      << out;
  ASSERT_EQ(Rados(absl::StrCat("setomapval ", object_, " vn/pvc-a theirs"), &out), 0) << out;

  // The stalled process still believes it holds the lock: its write must not land.
  Status late = journal.Update({{"vn/pvc-a", "ours-2"}, {"vn/pvc-b", "ours-2"}});
  EXPECT_EQ(late.code(), StatusCode::kAborted) << late;
  auto a = journal.Get("vn/pvc-a");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->value_or("<none>"), "theirs") << "the stalled process overwrote the new holder's record";
  auto b = journal.Get("vn/pvc-b");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_FALSE(b->has_value()) << "part of the fenced write landed";
  Rados(absl::StrCat("rm ", object_));
}

TEST_F(JournalTest, AnExpiredLeaseFencesWritesUntilTheLockIsTakenAgain) {
  Journal journal(io_.get(), object_, std::chrono::seconds(1));
  {
    auto held = journal.Acquire();
    ASSERT_TRUE(held.ok()) << held.status();
    std::this_thread::sleep_for(std::chrono::milliseconds(2000));
    EXPECT_EQ(journal.Update({{"k", "late"}}).code(), StatusCode::kAborted);
  }
  auto held = journal.Acquire();
  ASSERT_TRUE(held.ok()) << held.status();
  EXPECT_TRUE(journal.Update({{"k", "fresh"}}).ok());
  auto k = journal.Get("k");
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(k->value_or("<none>"), "fresh");
  (void)journal.Update({}, {"k"});
}

TEST_F(JournalTest, UpdatesNeedTheLockOnTheCallingThread) {
  Journal journal(io_.get(), object_);
  EXPECT_EQ(journal.Update({{"k", "v"}}).code(), StatusCode::kInternal);
  auto held = journal.Acquire();
  ASSERT_TRUE(held.ok()) << held.status();
  Status other;
  std::thread([&] { other = journal.Update({{"k", "v"}}); }).join();
  EXPECT_EQ(other.code(), StatusCode::kInternal);
  EXPECT_TRUE(journal.Update({{"k", "v"}}).ok());
  EXPECT_TRUE(journal.Update({}, {"k"}).ok());
  Rados(absl::StrCat("rm ", object_));
}

TEST_F(JournalTest, UpdateIfUnchangedWritesOnlyOverTheExpectedValueWithoutTheLock) {
  Journal journal(io_.get(), object_);
  {
    auto held = journal.Acquire();
    ASSERT_TRUE(held.ok()) << held.status();
    ASSERT_TRUE(journal.Update({{"rec", "creating"}, {"name", "rec"}}).ok());
  }
  // Unchanged: applied in one op, no lock needed (this thread holds none).
  auto done = journal.UpdateIfUnchanged("rec", "creating", {{"rec", "ready"}});
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_TRUE(*done);
  auto v = journal.Get("rec");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->value_or("<none>"), "ready");
  // Changed by someone else (another process): nothing is written, not even the other keys.
  ASSERT_EQ(Rados(absl::StrCat("setomapval ", object_, " rec claimed")), 0);
  done = journal.UpdateIfUnchanged("rec", "ready", {{"rec", "mine"}, {"other", "x"}}, {"name"});
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_FALSE(*done);
  v = journal.Get("rec");
  EXPECT_EQ(v->value_or("<none>"), "claimed");
  EXPECT_EQ(journal.Get("other")->value_or("<none>"), "<none>");
  EXPECT_EQ(journal.Get("name")->value_or("<none>"), "rec");
  // A key that is gone never matches.
  done = journal.UpdateIfUnchanged("missing", "x", {{"missing", "y"}});
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_FALSE(*done);
  Rados(absl::StrCat("rm ", object_));
}

}  // namespace
}  // namespace vdisk::blockdev::rbd
