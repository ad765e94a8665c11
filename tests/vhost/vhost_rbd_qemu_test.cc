// A real QEMU guest on an RBD image through the vhost-user-blk export: the Device is the librbd
// engine of an rbd pool volume on the test Ceph cluster (fixtures `ceph` and `guest`). The host
// reads the image back through the pool and checks the guest's patterns and zeroed ranges.
#include <gtest/gtest.h>

#include <filesystem>

#include "blockdev/sync_io.h"
#include "blockdev/vhost/export.h"
#include "tests/rbd/ceph_env.h"
#include "tests/vhost/pattern.h"
#include "tests/vhost/qemu_guest.h"

namespace vdisk::blockdev::vhost {
namespace {

namespace fs = std::filesystem;
constexpr uint64_t M = 1 << 20;

std::string Fnv(const std::string& bytes) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : bytes) h = (h ^ c) * 0x100000001b3ull;
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

TEST(VhostRbdQemuTest, GuestWritesAnRbdVolume) {
  ASSERT_TRUE(fs::exists(vdisk::testing::GuestDir() + "/vmlinuz")) << "guest fixture missing";
  auto env = vdisk::testing::LoadCephEnv();
  ASSERT_TRUE(env.ok()) << env.status();
  auto pool = vdisk::testing::OpenPool(vdisk::testing::RbdPoolConfig(*env, "vhost"));
  ASSERT_TRUE(pool.ok()) << pool.status();
  VolumeRequest req;
  req.name = vdisk::testing::UniqueName("vhost-rbd");
  req.size_bytes = 32 * M;
  req.mode = VolumeMode::kBlock;
  req.access_modes = {AccessMode::kSingleNodeWriter};
  auto vol = (*pool)->create_volume(req);
  ASSERT_TRUE(vol.ok()) << vol.status();
  struct Cleanup {
    std::shared_ptr<Pool> pool;
    std::string id;
    ~Cleanup() { (void)pool->delete_volume(id); }
  } cleanup{*pool, vol->id};

  auto dev = (*pool)->open_volume(vol->id, false);
  ASSERT_TRUE(dev.ok()) << dev.status();
  char sock_tmpl[] = "/tmp/vdisk-vhost-rbd.XXXXXX";
  ASSERT_NE(::mkdtemp(sock_tmpl), nullptr);
  std::string dir = sock_tmpl;
  ExportOptions eo;
  eo.socket_path = dir + "/vhost.sock";
  auto exp = Export::Start(std::shared_ptr<Device>(std::move(*dev)), eo);
  ASSERT_TRUE(exp.ok()) << exp.status();

  vdisk::testing::QemuGuest g;
  vdisk::testing::QemuGuest::Options o;
  o.script = vdisk::testing::SourceDir() + "/tests/vhost/guest/rbd_readwrite.sh";
  o.socket = eo.socket_path;
  o.work_dir = dir;
  ASSERT_EQ(g.Start(o), "");
  EXPECT_EQ(g.Wait(300), 0) << g.output();
  EXPECT_EQ(g.Value("size"), std::to_string(32 * M)) << g.output();
  EXPECT_EQ(g.Value("rw"), "ok") << g.output();
  EXPECT_EQ(g.Value("discard"), "ok") << g.output();
  EXPECT_EQ(g.Value("zeroout"), "ok") << g.output();
  EXPECT_EQ(g.Value("flush"), "ok") << g.output();
  (*exp)->Stop();

  // The image as librbd sees it, opened afresh.
  auto check = (*pool)->open_volume(vol->id, true);
  ASSERT_TRUE(check.ok()) << check.status();
  std::string bytes(16 * M, '\0');
  ASSERT_TRUE(ReadAt(**check, 0, std::as_writable_bytes(std::span<char>(bytes))).ok());
  EXPECT_EQ(g.Value("fnv"), Fnv(bytes));
  EXPECT_TRUE(bytes.substr(0, 4 * M) == vdisk::testing::Pattern(11, 0, 4 * M));
  EXPECT_TRUE(bytes.substr(8 * M, 2 * M) == std::string(2 * M, '\0'));
  EXPECT_TRUE(bytes.substr(10 * M, 6 * M) == std::string(6 * M, '\0'));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace vdisk::blockdev::vhost
