// The iSCSI target started by tests/env/tgt.sh (CTest fixture `tgt`), as tests see it: reads
// $VDISK_TGT_DIR/tgt.env. A missing environment is a test FAILURE (the fixture must have started
// tgtd), never a skip. Also: restarting tgtd mid-test, tgtadm, and pool configs on it.
#pragma once

#include <memory>
#include <string>

#include "blockdev/pool.h"
#include "blockdev/registry.h"
#include "common/status.h"

namespace vdisk::testing {

struct TgtEnv {
  std::string dir;      // the fixture directory (tgt.sh <cmd> <dir>)
  int control = 0;      // tgtadm -C
  std::string portal;   // 127.0.0.1:<port>
  std::string backing;  // XFS (reflink) mount for backing files
};

StatusOr<TgtEnv> LoadTgtEnv();

// tests/env/tgt.sh <cmd> <dir> (kill, start, stop): restarts of the target in the middle of a test.
Status TgtCommand(const TgtEnv& env, const std::string& cmd);

// Runs `tgtadm -C <control> --lld iscsi <args>`; returns its output.
StatusOr<std::string> Tgtadm(const TgtEnv& env, const std::string& args);

// A tgtd of the test's own (tests/env/tgt.sh up in a fresh directory under the build tree), for
// tests that kill or restart the target: the shared fixture target stays untouched. Stopped and
// removed by the destructor.
class PrivateTgt {
 public:
  // `xfs_size` as tgt.sh takes it ("1G"). Check ok() / status() before use.
  explicit PrivateTgt(const std::string& xfs_size = "1G");
  ~PrivateTgt();
  const Status& status() const { return status_; }
  const TgtEnv& env() const { return env_; }

 private:
  std::string dir_;
  TgtEnv env_;
  Status status_;
};

// A unique lower-case token for names and IQNs of this process ("t<pid>x<counter><random>").
std::string UniqueToken();

// An iscsi pool on the test target with its own backing directory and IQN prefix (so that tests
// running at once never see each other's targets), plus `extra` options.
blockdev::PoolConfig IscsiPoolConfig(const TgtEnv& env, const std::string& name, const std::string& token,
                                     const blockdev::Params& extra = {});

// Opens a pool through the registry (as the CSI layer would).
StatusOr<std::shared_ptr<blockdev::Pool>> OpenTestPool(const blockdev::PoolConfig& config,
                                                       const blockdev::Params& secrets = {});

}  // namespace vdisk::testing
