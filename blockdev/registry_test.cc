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

}  // namespace
}  // namespace vdisk::blockdev
