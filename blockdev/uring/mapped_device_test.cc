// qcow2 through `qemu-img map` as a MappedDevice: a sparse copy of it equals qemu-img's own
// raw conversion byte for byte; compressed images are refused (UNIMPLEMENTED) for the caller
// to convert instead.
#include "blockdev/uring/mapped_device.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "blockdev/copy.h"
#include "blockdev/uring/uring_device.h"

namespace vdisk::blockdev::uring {
namespace {

int Sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }

std::string Slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

class MappedDeviceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vdisk-mapped-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ASSERT_EQ(Sh("qemu-img --version"), 0) << "qemu-img (qemu-utils) is required";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(MappedDeviceTest, Qcow2CopyEqualsQemuImgConvert) {
  const std::string q = dir_ + "/img.qcow2";
  ASSERT_EQ(Sh("qemu-img create -f qcow2 " + q + " 64M"), 0);
  ASSERT_EQ(Sh("qemu-io -c 'write -P 0xab 1M 128k' -c 'write -P 0x11 40M 3M' "
               "-c 'write -z 4M 64k' -c 'write -P 0x22 8M 64k' -c 'write -P 0x33 1088k 4k' " + q), 0);
  auto dev = OpenQcow2Mapped(q);
  ASSERT_TRUE(dev.ok()) << dev.status();
  EXPECT_EQ((*dev)->size(), 64u << 20);
  EXPECT_TRUE((*dev)->read_only());
  auto alloc = (*dev)->allocated(0, 64 << 20);
  ASSERT_TRUE(alloc.ok());
  EXPECT_EQ(TotalBytes(*alloc), (128u << 10) + (3u << 20) + (64u << 10));

  auto dst = OpenFileDevice(dir_ + "/out.raw", {.create = true, .create_size = 64 << 20});
  ASSERT_TRUE(dst.ok());
  CopyOptions o;
  o.checksum = true;
  auto r = CopyDevice(**dev, **dst, o);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(Sh("qemu-img convert -f qcow2 -O raw " + q + " " + dir_ + "/ref.raw"), 0);
  EXPECT_TRUE(Slurp(dir_ + "/out.raw") == Slurp(dir_ + "/ref.raw")) << "bytes differ from qemu-img";
  struct stat st {};
  ::stat((dir_ + "/out.raw").c_str(), &st);
  EXPECT_LE(static_cast<uint64_t>(st.st_blocks) * 512, 4u << 20) << "copy is sparse";
}

TEST_F(MappedDeviceTest, CompressedImagesAreRefusedForConversion) {
  const std::string raw = dir_ + "/src.raw", q = dir_ + "/c.qcow2";
  ASSERT_EQ(Sh("qemu-img create -f raw " + raw + " 8M && qemu-io -f raw -c 'write -P 0x5a 0 1M' " + raw), 0);
  ASSERT_EQ(Sh("qemu-img convert -c -f raw -O qcow2 " + raw + " " + q), 0);
  auto dev = OpenQcow2Mapped(q);
  EXPECT_EQ(dev.status().code(), absl::StatusCode::kUnimplemented) << dev.status();
  EXPECT_EQ(OpenQcow2Mapped(raw).status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_FALSE(OpenQcow2Mapped(dir_ + "/missing.qcow2").ok());
}

}  // namespace
}  // namespace vdisk::blockdev::uring
