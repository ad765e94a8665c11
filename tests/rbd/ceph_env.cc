#include "tests/rbd/ceph_env.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <random>

#include "absl/strings/str_cat.h"
#include "tests/env/env_file.h"

namespace vdisk::testing {

StatusOr<CephEnv> LoadCephEnv() {
  const char* dir = std::getenv("VDISK_CEPH_DIR");
  if (!dir || !*dir)
    return absl::FailedPreconditionError(
        "VDISK_CEPH_DIR is not set: run through ctest (fixture `ceph`) or export it after "
        "tests/env/ceph.sh up <dir>");
  ASSIGN_OR_RETURN(auto kv, ReadEnvFile(std::string(dir) + "/rbd.env", "ceph"));
  CephEnv env;
  env.dir = dir;
  env.conf = kv["CEPH_CONF"];
  env.admin_keyring = kv["CEPH_KEYRING"];
  env.driver_user = kv["CEPH_DRIVER_USER"];
  env.driver_key = kv["CEPH_DRIVER_KEY"];
  env.driver_keyring = kv["CEPH_DRIVER_KEYRING"];
  env.mon_host = kv["MON_HOST"];
  env.rbd_pool = kv["RBD_POOL"];
  if (env.conf.empty() || env.driver_user.empty() || env.driver_key.empty())
    return absl::FailedPreconditionError(absl::StrCat(dir, "/rbd.env is incomplete"));
  return env;
}

std::string UniqueName(const std::string& prefix) {
  static std::atomic<int> counter{0};
  static const uint32_t salt = std::random_device{}();
  return absl::StrCat(prefix, "-", ::getpid(), "-", counter++, "-", absl::Hex(salt));
}

blockdev::PoolConfig RbdPoolConfig(const CephEnv& env, const std::string& name,
                                   const blockdev::Params& extra) {
  blockdev::PoolConfig c;
  c.name = name;
  c.kind = "rbd";
  c.options = {{"conf", env.conf},
               {"user", env.driver_user},
               {"keyring", env.driver_keyring},
               {"rbd_pool", env.rbd_pool}};
  for (const auto& [k, v] : extra) c.options[k] = v;
  return c;
}

StatusOr<std::shared_ptr<blockdev::Pool>> OpenPool(const blockdev::PoolConfig& config,
                                                   const blockdev::Params& secrets) {
  blockdev::RegisterBuiltinBackends();
  blockdev::PoolSet set;
  RETURN_IF_ERROR(set.Add(config));
  return set.Get(config.name, secrets);
}

}  // namespace vdisk::testing
