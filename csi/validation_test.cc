#include "csi/validation.h"

#include <sys/mount.h>

#include <gtest/gtest.h>

namespace vdisk::csi {
namespace {

namespace v1 = ::csi::v1;
using blockdev::AccessMode;
using blockdev::VolumeMode;
constexpr uint64_t MiB = 1 << 20;
constexpr uint64_t GiB = 1ull << 30;

v1::VolumeCapability Cap(bool block, v1::VolumeCapability::AccessMode::Mode mode) {
  v1::VolumeCapability c;
  if (block) c.mutable_block();
  else c.mutable_mount();
  c.mutable_access_mode()->set_mode(mode);
  return c;
}

v1::CapacityRange Range(int64_t req, int64_t lim) {
  v1::CapacityRange r;
  r.set_required_bytes(req);
  r.set_limit_bytes(lim);
  return r;
}

TEST(Validation, Names) {
  EXPECT_TRUE(ValidateName("pvc-0f1e2d3c", "name").ok());
  EXPECT_TRUE(ValidateName(std::string(128, 'n'), "name").ok());
  EXPECT_TRUE(ValidateName("with space\tand tab\nand newline", "name").ok());
  EXPECT_TRUE(ValidateName("unicod\xc3\xa9", "name").ok());
  EXPECT_EQ(ValidateName("", "name").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateName(std::string(129, 'n'), "name").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateName(std::string("a\0b", 3), "name").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateName("a\x07", "name").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateName("a\x7f", "name").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateName("a\xc2\x85", "name").code(), absl::StatusCode::kInvalidArgument);  // U+0085
}

TEST(Validation, Capabilities) {
  google::protobuf::RepeatedPtrField<v1::VolumeCapability> caps;
  EXPECT_EQ(ParseCapabilities(caps).status().code(), absl::StatusCode::kInvalidArgument);
  *caps.Add() = Cap(true, v1::VolumeCapability::AccessMode::SINGLE_NODE_WRITER);
  *caps.Add() = Cap(true, v1::VolumeCapability::AccessMode::MULTI_NODE_MULTI_WRITER);
  *caps.Add() = Cap(true, v1::VolumeCapability::AccessMode::SINGLE_NODE_WRITER);
  auto set = ParseCapabilities(caps);
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->mode, VolumeMode::kBlock);
  EXPECT_EQ(set->access_modes.size(), 2u);
  *caps.Add() = Cap(false, v1::VolumeCapability::AccessMode::SINGLE_NODE_WRITER);
  EXPECT_EQ(ParseCapabilities(caps).status().code(), absl::StatusCode::kInvalidArgument);

  v1::VolumeCapability no_type;
  no_type.mutable_access_mode()->set_mode(v1::VolumeCapability::AccessMode::SINGLE_NODE_WRITER);
  EXPECT_EQ(ParseCapability(no_type).status().code(), absl::StatusCode::kInvalidArgument);
  v1::VolumeCapability no_mode;
  no_mode.mutable_mount();
  EXPECT_EQ(ParseCapability(no_mode).status().code(), absl::StatusCode::kInvalidArgument);
  v1::VolumeCapability unknown = Cap(false, v1::VolumeCapability::AccessMode::UNKNOWN);
  EXPECT_EQ(ParseCapability(unknown).status().code(), absl::StatusCode::kInvalidArgument);
  v1::VolumeCapability bad_enum = Cap(false, v1::VolumeCapability::AccessMode::SINGLE_NODE_WRITER);
  bad_enum.mutable_access_mode()->set_mode(static_cast<v1::VolumeCapability::AccessMode::Mode>(42));
  EXPECT_EQ(ParseCapability(bad_enum).status().code(), absl::StatusCode::kInvalidArgument);
  v1::VolumeCapability flags = Cap(false, v1::VolumeCapability::AccessMode::SINGLE_NODE_WRITER);
  flags.mutable_mount()->add_mount_flags("noatime");
  EXPECT_TRUE(ParseCapability(flags).ok());
  flags.mutable_mount()->add_mount_flags("password=hunter2");
  auto bad = ParseCapability(flags);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(bad.status().message()).find("hunter2"), std::string::npos);
}

TEST(Validation, Support) {
  blockdev::Capabilities pc;
  pc.modes = {VolumeMode::kBlock, VolumeMode::kFilesystem};
  pc.block_access_modes = {AccessMode::kSingleNodeWriter, AccessMode::kMultiNodeMultiWriter};
  pc.filesystem_access_modes = {AccessMode::kSingleNodeWriter};
  EXPECT_TRUE(CheckSupported(pc, VolumeMode::kBlock, {AccessMode::kMultiNodeMultiWriter}).ok());
  EXPECT_EQ(CheckSupported(pc, VolumeMode::kFilesystem, {AccessMode::kMultiNodeMultiWriter}).code(),
            absl::StatusCode::kInvalidArgument);
  pc.modes = {VolumeMode::kBlock};
  EXPECT_EQ(CheckSupported(pc, VolumeMode::kFilesystem, {AccessMode::kSingleNodeWriter}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(IsReadOnlyAccess(AccessMode::kMultiNodeReaderOnly));
  EXPECT_FALSE(IsReadOnlyAccess(AccessMode::kMultiNodeSingleWriter));
}

TEST(Validation, AccessModeConversionRoundTrips) {
  for (int m = 1; m <= 7; ++m) {
    auto a = FromCsiAccessMode(m);
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(ToCsiAccessMode(*a), m);
  }
}

TEST(Validation, CapacityRounding) {
  auto r = Range(10 * GiB, 0);
  EXPECT_EQ(*ChooseCapacity(&r, MiB, GiB, 0), 10 * GiB);
  r = Range(1, 0);
  EXPECT_EQ(*ChooseCapacity(&r, MiB, GiB, 0), MiB);
  r = Range(MiB + 1, 0);
  EXPECT_EQ(*ChooseCapacity(&r, MiB, GiB, 0), 2 * MiB);
  EXPECT_EQ(*ChooseCapacity(nullptr, MiB, GiB, 0), GiB);  // default size
  r = Range(0, 100 * MiB);
  EXPECT_EQ(*ChooseCapacity(&r, MiB, GiB, 0), 100 * MiB);  // default clamped to the limit
  r = Range(0, 100 * MiB + 5);
  EXPECT_EQ(*ChooseCapacity(&r, MiB, GiB, 0), 100 * MiB);
  r = Range(MiB + 1, 2 * MiB - 1);  // no multiple of 1 MiB inside
  EXPECT_EQ(ChooseCapacity(&r, MiB, GiB, 0).status().code(), absl::StatusCode::kOutOfRange);
  r = Range(5 * MiB, 5 * MiB);  // exact size
  EXPECT_EQ(*ChooseCapacity(&r, MiB, GiB, 0), 5 * MiB);
  r = Range(-1, 0);
  EXPECT_EQ(ChooseCapacity(&r, MiB, GiB, 0).status().code(), absl::StatusCode::kInvalidArgument);
  r = Range(2 * GiB, GiB);
  EXPECT_EQ(ChooseCapacity(&r, MiB, GiB, 0).status().code(), absl::StatusCode::kInvalidArgument);
  r = Range(3 * GiB, 0);
  EXPECT_EQ(ChooseCapacity(&r, MiB, GiB, 2 * GiB).status().code(), absl::StatusCode::kOutOfRange);
}

TEST(Validation, CapacityFromASource) {
  // No range: the copy keeps the source size.
  EXPECT_EQ(*ChooseCapacity(nullptr, MiB, GiB, 0, 3 * GiB), 3 * GiB);
  // Larger than the source is allowed.
  auto r = Range(5 * GiB, 0);
  EXPECT_EQ(*ChooseCapacity(&r, MiB, GiB, 0, 3 * GiB), 5 * GiB);
  // Smaller than the source: at least the source size when the limit allows it.
  r = Range(GiB, 0);
  EXPECT_EQ(*ChooseCapacity(&r, MiB, GiB, 0, 3 * GiB), 3 * GiB);
  r = Range(GiB, 2 * GiB);
  EXPECT_EQ(ChooseCapacity(&r, MiB, GiB, 0, 3 * GiB).status().code(), absl::StatusCode::kOutOfRange);
}

TEST(Validation, PoolParameters) {
  blockdev::Params p{{"pool", "fast"}, {"csi.storage.k8s.io/pvc/name", "x"}, {"preallocate", "false"}};
  EXPECT_EQ(*PoolFromParams(p, "local"), "fast");
  EXPECT_EQ(*PoolFromParams({}, "local"), "local");
  EXPECT_EQ(PoolFromParams({{"pool", "no/slash"}}, "local").status().code(), absl::StatusCode::kInvalidArgument);
  auto pp = PoolParams(p);
  EXPECT_EQ(pp.size(), 1u);
  EXPECT_EQ(pp.at("preallocate"), "false");
}

TEST(Validation, MountFlags) {
  auto bits = MountFlagBits({"ro", "noatime", "nosuid", "defaults"});
  ASSERT_TRUE(bits.ok());
  EXPECT_EQ(*bits, static_cast<unsigned long>(MS_RDONLY | MS_NOATIME | MS_NOSUID));
  EXPECT_EQ(MountFlagBits({"uid=1000"}).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace vdisk::csi
