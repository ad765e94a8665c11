#include "blockdev/registry.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <thread>
#include <unistd.h>

#include "blockdev/local/local_pool.h"

namespace vdisk::blockdev {
namespace {

TEST(ParsePoolFlag, KindColonPath) {
  auto cfg = ParsePoolFlag("local:/var/lib/vdisk");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->name, "local");
  EXPECT_EQ(cfg->kind, "local");
  EXPECT_EQ(cfg->options.at("root"), "/var/lib/vdisk");
}

TEST(ParsePoolFlag, KeyValueList) {
  auto cfg = ParsePoolFlag("name=fast,kind=local,root=/x/y");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->name, "fast");
  EXPECT_EQ(cfg->kind, "local");
  EXPECT_EQ(cfg->options.at("root"), "/x/y");
}

TEST(ParsePoolFlag, RejectsGarbage) {
  EXPECT_EQ(ParsePoolFlag("nonsense").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParsePoolFlag("local:").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParsePoolFlag("name=x,root=/y").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(PoolSet, UnknownKindAndDuplicateNamesAreRejected) {
  RegisterPoolKind("fake-for-test", [](const PoolConfig&, const Params&)
                       -> StatusOr<std::shared_ptr<Pool>> { return absl::UnimplementedError("x"); });
  PoolSet set;
  EXPECT_EQ(set.Add({"a", "no-such-kind", {}}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(set.Add({"a", "fake-for-test", {}}).ok());
  EXPECT_EQ(set.Add({"a", "fake-for-test", {}}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(set.Add({"bad/name", "fake-for-test", {}}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(set.default_pool(), "a");
  EXPECT_EQ(set.Get("missing").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(set.Get("a").status().code(), absl::StatusCode::kUnimplemented);
}

TEST(PoolSet, OverprovisioningIsAGenericPoolOption) {
  PoolConfig seen;
  RegisterPoolKind("fake-overprov", [&seen](const PoolConfig& c, const Params&)
                       -> StatusOr<std::shared_ptr<Pool>> {
    seen = c;
    return absl::UnimplementedError("x");
  });
  PoolSet set;
  ASSERT_TRUE(set.Add({"dflt", "fake-overprov", {{"root", "/x"}}}).ok());
  EXPECT_EQ(set.config("dflt")->overprovisioning_percent, kDefaultOverprovisioningPercent);
  ASSERT_TRUE(set.Add({"p300", "fake-overprov", {{"root", "/x"}, {"overprovisioning", "300%"}}}).ok());
  EXPECT_EQ(set.config("p300")->overprovisioning_percent, 300u);
  (void)set.Get("p300");
  EXPECT_FALSE(seen.options.contains("overprovisioning")) << "backends never see the generic option";
  EXPECT_EQ(seen.options.at("root"), "/x");
  ASSERT_TRUE(set.Add({"off", "fake-overprov", {{"overprovisioning", "off"}}}).ok());
  EXPECT_EQ(set.config("off")->overprovisioning_percent, 0u);
  for (const char* bad : {"", "0", "-5", "12x", "100001", "%"})
    EXPECT_EQ(set.Add({std::string("bad") + std::to_string(std::string(bad).size()), "fake-overprov",
                       {{"overprovisioning", bad}}}).code(),
              absl::StatusCode::kInvalidArgument) << bad;
}

TEST(Overprovisioning, LimitIsAPercentageOfTheRealCapacity) {
  EXPECT_EQ(PromiseLimit(200, 8ull << 30), 16ull << 30);
  EXPECT_EQ(PromiseLimit(100, 1000), 1000u);
  EXPECT_EQ(PromiseLimit(150, 3), 4u);  // rounds down
  EXPECT_EQ(PromiseLimit(0, 8ull << 30), UINT64_MAX);
  EXPECT_EQ(PromiseLimit(kMaxOverprovisioningPercent, UINT64_MAX), UINT64_MAX);
}

// The cache tests use real local pools (in a scratch directory) behind a pool kind that records
// the secrets each open was given.
class PoolCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* bin = std::getenv("VDISK_BINARY_DIR");
    root_ = std::string(bin ? bin : "/tmp") + "/test-tmp/registry-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(root_);
    opened_ = std::make_shared<std::vector<Params>>();
    auto opened = opened_;
    const std::string root = root_;
    RegisterPoolKind("recording-local", [opened, root](const PoolConfig& config, const Params& secrets)
                                            -> StatusOr<std::shared_ptr<Pool>> {
      opened->push_back(secrets);
      local::LocalPoolOptions o;
      o.name = config.name;
      o.root = root + "/" + config.name;
      o.reflink = local::LocalPoolOptions::Reflink::kOff;
      return local::OpenLocalPool(o);
    });
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  std::string root_;
  std::shared_ptr<std::vector<Params>> opened_;
};

TEST_F(PoolCacheTest, SecretSetsThatFlattenAlikeGetTheirOwnPools) {
  PoolSet set;
  ASSERT_TRUE(set.Add({"p", "recording-local", {}}).ok());
  auto a = set.Get("p", {{"a", "bc"}});
  auto b = set.Get("p", {{"ab", "c"}});
  auto c = set.Get("p", {{"a", "b"}, {"c", ""}});
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_NE(a->get(), b->get()) << "a request with secrets {ab:c} was served by the pool opened with {a:bc}";
  EXPECT_NE(a->get(), c->get());
  EXPECT_NE(b->get(), c->get());
  ASSERT_EQ(opened_->size(), 3u);
  EXPECT_EQ((*opened_)[1], (Params{{"ab", "c"}}));
  // Same secrets: the same pool, no new open.
  auto again = set.Get("p", {{"a", "bc"}});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->get(), a->get());
  EXPECT_EQ(opened_->size(), 3u);
  // No secrets: a pool of its own, not any of the above.
  auto none = set.Get("p");
  ASSERT_TRUE(none.ok());
  EXPECT_NE(none->get(), a->get());
}

TEST_F(PoolCacheTest, PoolsOpenedWithSecretsAreBoundedAndLeastRecentlyUsedGoFirst) {
  PoolSet set(PoolCacheOptions{.max_with_secrets = 2, .idle_ttl = std::chrono::hours(1)});
  ASSERT_TRUE(set.Add({"p", "recording-local", {}}).ok());
  ASSERT_TRUE(set.Get("p").ok());  // the configured identity: never evicted
  std::weak_ptr<Pool> first;
  for (int i = 0; i < 50; ++i) {
    auto p = set.Get("p", {{"userKey", "key-" + std::to_string(i)}});
    ASSERT_TRUE(p.ok());
    if (i == 0) first = *p;
  }
  EXPECT_EQ(set.cached(), 3u) << "one pool without secrets + at most 2 with";
  EXPECT_TRUE(first.expired()) << "the least recently used pool was not released";
  size_t opens = opened_->size();
  ASSERT_TRUE(set.Get("p").ok());
  EXPECT_EQ(opened_->size(), opens) << "the pool without secrets was evicted";
  ASSERT_TRUE(set.Get("p", {{"userKey", "key-49"}}).ok());
  EXPECT_EQ(opened_->size(), opens) << "the most recent pool was evicted";
}

TEST_F(PoolCacheTest, IdlePoolsWithSecretsExpireButPoolsInUseStay) {
  PoolSet set(PoolCacheOptions{.max_with_secrets = 1, .idle_ttl = std::chrono::milliseconds(100)});
  ASSERT_TRUE(set.Add({"p", "recording-local", {}}).ok());
  std::weak_ptr<Pool> idle;
  {
    auto p = set.Get("p", {{"userKey", "idle"}});
    ASSERT_TRUE(p.ok());
    idle = *p;
  }
  auto busy = set.Get("p", {{"userKey", "busy"}});  // held by this caller throughout
  ASSERT_TRUE(busy.ok());
  auto other = set.Get("p", {{"userKey", "other"}});  // over the bound while `busy` is in use
  ASSERT_TRUE(other.ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  ASSERT_TRUE(set.Get("p").ok());  // any call sweeps
  EXPECT_TRUE(idle.expired()) << "an idle pool opened with secrets outlived its TTL";
  auto busy_again = set.Get("p", {{"userKey", "busy"}});
  ASSERT_TRUE(busy_again.ok());
  EXPECT_EQ(busy_again->get(), busy->get()) << "a pool still in use was dropped from the cache";
}

}  // namespace
}  // namespace vdisk::blockdev
