// Test helper for rbd_pool_test: opens the RBD pool of the test cluster in journal namespace
// argv[1] and restores snapshot argv[2] as volume argv[3] (the test kills it midway).
//   rbd_crash_helper <instance> <snapshot-id> <volume-name>
#include <cstdio>

#include "blockdev/pool.h"
#include "tests/rbd/ceph_env.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s <instance> <snapshot-id> <volume-name>\n", argv[0]);
    return 2;
  }
  auto env = vdisk::testing::LoadCephEnv();
  if (!env.ok()) {
    std::fprintf(stderr, "%s\n", env.status().ToString().c_str());
    return 1;
  }
  auto pool = vdisk::testing::OpenPool(
      vdisk::testing::RbdPoolConfig(*env, "rbd", {{"instance", argv[1]}}));
  if (!pool.ok()) {
    std::fprintf(stderr, "%s\n", pool.status().ToString().c_str());
    return 1;
  }
  vdisk::blockdev::VolumeRequest req;
  req.name = argv[3];
  req.size_bytes = 64 << 20;
  req.source = {vdisk::blockdev::VolumeSource::Kind::kSnapshot, argv[2]};
  req.params = {{"cloneSoftDepth", "0"}, {"cloneHardDepth", "0"}};
  auto v = (*pool)->create_volume(req);
  std::fprintf(stderr, "create_volume: %s\n", v.ok() ? "ok" : v.status().ToString().c_str());
  return v.ok() ? 0 : 1;
}
