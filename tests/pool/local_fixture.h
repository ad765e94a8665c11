// The local pool as a conformance-suite backend (tests/pool/pool_conformance.h), on a plain
// directory of the root file system (ext4 here: no reflink, the copy fallback) or on a reflink
// XFS (tests/pool/xfs_env.h). Each fixture gets a fresh root directory.
#pragma once

#include <memory>
#include <string>

#include "blockdev/local/local_pool.h"
#include "tests/pool/pool_conformance.h"

namespace vdisk::pooltest {

enum class LocalFs { kRootFs, kXfs };

class LocalPoolFixture : public PoolFixture {
 public:
  explicit LocalPoolFixture(LocalFs fs) : fs_(fs) {}
  Status SetUp() override;
  StatusOr<std::shared_ptr<blockdev::Pool>> Open() override;
  void TearDown() override;
  Status MakeCrashLeftovers() override;
  bool LeftoversGone() override;
  std::string HostRoot() override { return root_; }

  const std::string& root() const { return root_; }

 private:
  LocalFs fs_;
  std::string dir_;   // fresh per fixture; the pool root is dir_/root
  std::string root_;
};

PoolBackend LocalBackend(LocalFs fs);

}  // namespace vdisk::pooltest
