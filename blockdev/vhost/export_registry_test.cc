#include "blockdev/vhost/export_registry.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "blockdev/uring/uring_device.h"

namespace vdisk::blockdev::vhost {
namespace {

namespace fs = std::filesystem;

class ExportRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vdisk-vhost-registry.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    image_ = dir_ + "/disk.img";
    FILE* f = std::fopen(image_.c_str(), "w");
    std::fclose(f);
    ASSERT_EQ(::truncate(image_.c_str(), 8 << 20), 0);
  }
  void TearDown() override { fs::remove_all(dir_); }
  VolumeOpener Opener() {
    return [this](bool read_only) -> StatusOr<std::unique_ptr<Device>> {
      uring::FileDeviceOptions o;
      o.read_only = read_only;
      return uring::OpenFileDevice(image_, o);
    };
  }
  ExportOptions At(const std::string& name, bool read_only = false) {
    ExportOptions o;
    o.socket_path = dir_ + "/" + name;
    o.read_only = read_only;
    return o;
  }
  std::string dir_, image_;
};

TEST_F(ExportRegistryTest, PublishIsIdempotentAndUnpublishRemovesTheSocket) {
  ExportRegistry r;
  ASSERT_TRUE(r.Publish("vol-1", Opener(), At("a.sock")).ok());
  EXPECT_TRUE(fs::exists(dir_ + "/a.sock"));
  EXPECT_TRUE(r.Publish("vol-1", Opener(), At("a.sock")).ok());  // retried publish
  EXPECT_EQ(r.Publish("vol-2", Opener(), At("a.sock")).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(r.Publish("vol-1", Opener(), At("a.sock", true)).code(),
            absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(r.Publish("vol-1", Opener(), At("b.sock", true)).ok());  // second target
  EXPECT_EQ(r.List().size(), 2u);
  EXPECT_TRUE(r.Unpublish(dir_ + "/a.sock").ok());
  EXPECT_FALSE(fs::exists(dir_ + "/a.sock"));
  EXPECT_TRUE(r.Unpublish(dir_ + "/a.sock").ok());  // idempotent
  EXPECT_FALSE(r.Contains(dir_ + "/a.sock"));
  EXPECT_TRUE(r.Contains(dir_ + "/b.sock"));
}

TEST_F(ExportRegistryTest, ResizeReopensEveryExportOfTheVolume) {
  ExportRegistry r;
  ASSERT_TRUE(r.Publish("vol-1", Opener(), At("a.sock")).ok());
  EXPECT_EQ(r.Resize("vol-2", Opener()).status().code(), absl::StatusCode::kNotFound);
  ASSERT_EQ(::truncate(image_.c_str(), 16 << 20), 0);
  auto size = r.Resize("vol-1", Opener());
  ASSERT_TRUE(size.ok()) << size.status();
  EXPECT_EQ(*size, 16u << 20);
  EXPECT_EQ(r.List()[0].stats.capacity_bytes, 16u << 20);
}

TEST_F(ExportRegistryTest, ResizeKeepsAReadOnlyExportReadOnly) {
  ExportRegistry r;
  ASSERT_TRUE(r.Publish("vol-1", Opener(), At("rw.sock")).ok());
  ASSERT_TRUE(r.Publish("vol-1", Opener(), At("ro.sock", true)).ok());
  ASSERT_EQ(::truncate(image_.c_str(), 12 << 20), 0);
  auto size = r.Resize("vol-1", Opener());
  ASSERT_TRUE(size.ok()) << size.status();
  EXPECT_EQ(*size, 12u << 20);
  for (const auto& e : r.List()) EXPECT_EQ(e.stats.capacity_bytes, 12u << 20) << e.socket_path;
}

TEST_F(ExportRegistryTest, OpenFailureLeavesNothingBehind) {
  ExportRegistry r;
  VolumeOpener missing = [](bool) -> StatusOr<std::unique_ptr<Device>> {
    return absl::NotFoundError("no such volume");
  };
  EXPECT_EQ(r.Publish("vol-x", missing, At("c.sock")).code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(fs::exists(dir_ + "/c.sock"));
  EXPECT_TRUE(r.List().empty());
}

}  // namespace
}  // namespace vdisk::blockdev::vhost
