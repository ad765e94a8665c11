// The RBD pool as a conformance-suite backend (tests/pool/pool_conformance.h), on the test
// cluster of the `ceph` fixture. Each fixture gets its own journal namespace (pool option
// instance=), so it starts empty while sharing the rados pool `rbd` with other tests; TearDown
// removes everything it made (images, snapshots, the journal object).
#pragma once

#include <memory>
#include <string>

#include "tests/pool/pool_conformance.h"
#include "tests/rbd/ceph_env.h"

namespace vdisk::pooltest {

class RbdPoolFixture : public PoolFixture {
 public:
  explicit RbdPoolFixture(blockdev::Params extra = {}) : extra_(std::move(extra)) {}
  Status SetUp() override;
  StatusOr<std::shared_ptr<blockdev::Pool>> Open() override;
  void TearDown() override;
  // Writes what interrupted creates / deletes leave behind, with librados / librbd directly:
  // a half-made tagged image under a "creating" record, a half-made snapshot, a deleted volume
  // whose image is still there, a snapshot whose deletion stopped midway.
  Status MakeCrashLeftovers() override;
  bool LeftoversGone() override;

  const vdisk::testing::CephEnv& env() const { return env_; }
  const std::string& instance() const { return instance_; }
  blockdev::PoolConfig config() const;

 private:
  vdisk::testing::CephEnv env_;
  blockdev::Params extra_;
  std::string instance_;
  std::string crashed_image_;      // image of the half-made volume
  std::string deleted_image_;      // image of the deleted-but-not-removed volume
  std::string crashed_snap_image_id_, crashed_snap_;  // half-made snapshot
  std::string deleting_snap_;      // snapshot whose deletion stopped
};

PoolBackend RbdBackend();

}  // namespace vdisk::pooltest
