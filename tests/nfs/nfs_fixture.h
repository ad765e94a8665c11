// The NFS pool as a conformance-suite backend (tests/pool/pool_conformance.h), on the ganesha
// of the `nfs` fixture: each fixture gets its own pool directory in the export (option dir=),
// so cases run side by side. Two flavours: without local_path (the pool copies snapshots over
// libnfs and clones are host copies) and with local_path on the export's XFS (server-side
// reflink snapshots and clones, FIEMAP change maps).
#pragma once

#include <memory>
#include <string>

#include "blockdev/nfs/nfs_session.h"
#include "blockdev/registry.h"
#include "tests/nfs/nfs_env.h"
#include "tests/pool/pool_conformance.h"

namespace vdisk::pooltest {

class NfsPoolFixture : public PoolFixture {
 public:
  explicit NfsPoolFixture(bool reflink, blockdev::Params extra = {})
      : reflink_(reflink), extra_(std::move(extra)) {}
  Status SetUp() override;
  StatusOr<std::shared_ptr<blockdev::Pool>> Open() override;
  void TearDown() override;
  // Written on the server's file system (the export's local path): what a controller killed
  // at each step of a create or delete leaves, with claims whose heartbeat is an hour old.
  Status MakeCrashLeftovers() override;
  bool LeftoversGone() override;
  std::string HostRoot() override { return local_root(); }

  const vdisk::testing::NfsEnv& env() const { return env_; }
  blockdev::PoolConfig config() const;
  const std::string& dir() const { return dir_; }     // the pool's directory in the export
  std::string local_root() const { return env_.local_path + dir_; }

 private:
  bool reflink_;
  blockdev::Params extra_;
  vdisk::testing::NfsEnv env_;
  std::string dir_;
};

PoolBackend NfsBackend(bool reflink);

}  // namespace vdisk::pooltest
