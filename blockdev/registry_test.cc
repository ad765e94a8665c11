#include "blockdev/registry.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace vdisk::blockdev
