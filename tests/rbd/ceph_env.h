// The test cluster started by tests/env/ceph.sh (CTest fixture `ceph`), as seen by RBD tests:
// reads $VDISK_CEPH_DIR/rbd.env. A missing or unreadable environment is a test FAILURE (the
// fixture must have started the cluster), never a skip.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "blockdev/pool.h"
#include "blockdev/registry.h"
#include "common/status.h"

namespace vdisk::testing {

struct CephEnv {
  std::string dir;
  std::string conf;
  std::string admin_keyring;
  std::string driver_user;
  std::string driver_key;  // secret: tests pass it only as CSI secrets
  std::string driver_keyring;
  std::string mon_host;
  std::string rbd_pool;
};

StatusOr<CephEnv> LoadCephEnv();

// A unique name for this test process ("<prefix>-<pid>-<counter>-<random>").
std::string UniqueName(const std::string& prefix);

// Pool config for the test cluster: conf + the driver user's keyring, plus `extra` options.
blockdev::PoolConfig RbdPoolConfig(const CephEnv& env, const std::string& name,
                                   const blockdev::Params& extra = {});

// Opens a pool through the registry (as the CSI layer would).
StatusOr<std::shared_ptr<blockdev::Pool>> OpenPool(const blockdev::PoolConfig& config,
                                                   const blockdev::Params& secrets = {});

}  // namespace vdisk::testing
