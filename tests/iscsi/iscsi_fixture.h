// The iSCSI pool as a conformance-suite backend (tests/pool/pool_conformance.h), on the tgtd of
// the `tgt` fixture. Each fixture gets its own backing directory on the XFS image and its own IQN
// prefix, so fixtures share tgtd without seeing each other; TearDown removes what it made
// (volumes and snapshots through the pool, then any target or file left by a failed test).
#pragma once

#include <memory>
#include <string>

#include "tests/iscsi/tgt_env.h"
#include "tests/pool/pool_conformance.h"

namespace vdisk::pooltest {

class IscsiPoolFixture : public PoolFixture {
 public:
  explicit IscsiPoolFixture(blockdev::Params extra = {}) : extra_(std::move(extra)) {}
  Status SetUp() override;
  StatusOr<std::shared_ptr<blockdev::Pool>> Open() override;
  void TearDown() override;
  // Writes, without the pool: a "creating" volume record with its file and target, a "creating"
  // snapshot record with its file, a backing file no record owns, a target of the pool's prefix
  // no record owns.
  Status MakeCrashLeftovers() override;
  bool LeftoversGone() override;
  std::string HostRoot() override { return root_; }

  const vdisk::testing::TgtEnv& env() const { return env_; }
  const std::string& token() const { return token_; }
  blockdev::PoolConfig config() const;
  std::string IqnPrefix() const { return "iqn.2024-01.io.vdisk." + token_; }

 private:
  vdisk::testing::TgtEnv env_;
  blockdev::Params extra_;
  std::string token_, root_;
};

PoolBackend IscsiBackend(blockdev::Params extra = {});

}  // namespace vdisk::pooltest
