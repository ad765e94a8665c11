#include "tests/iscsi/tgt_env.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <map>
#include <random>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/subprocess.h"
#include "tests/env/env_file.h"

namespace vdisk::testing {

namespace {
std::string TgtScript() {
  const char* src = std::getenv("VDISK_SOURCE_DIR");
  return absl::StrCat(src && *src ? src : VDISK_SOURCE_DIR_DEFAULT, "/tests/env/tgt.sh");
}

StatusOr<TgtEnv> ReadTgtEnv(const std::string& dir) {
  ASSIGN_OR_RETURN(auto kv, ReadEnvFile(dir + "/tgt.env", "tgt"));
  TgtEnv env;
  env.dir = dir;
  env.portal = kv["TGT_PORTAL"];
  env.backing = kv["TGT_BACKING"];
  if (!absl::SimpleAtoi(kv["TGT_CONTROL"], &env.control) || env.portal.empty() || env.backing.empty())
    return absl::FailedPreconditionError(absl::StrCat(dir, "/tgt.env is incomplete"));
  return env;
}
}  // namespace

PrivateTgt::PrivateTgt(const std::string& xfs_size) {
  const char* bin = std::getenv("VDISK_BINARY_DIR");
  dir_ = absl::StrCat(bin && *bin ? bin : "/tmp", "/test-tmp/tgt-", UniqueToken());
  auto r = RunProcess({TgtScript(), "up", dir_, xfs_size});
  if (!r.ok()) {
    status_ = r.status();
  } else if (!r->ok()) {
    status_ = absl::InternalError(absl::StrCat("tgt.sh up ", dir_, " failed: ", r->err));
  } else {
    auto env = ReadTgtEnv(dir_);
    if (env.ok()) env_ = *env;
    status_ = env.status();
  }
}

PrivateTgt::~PrivateTgt() { (void)RunProcess({TgtScript(), "down", dir_}); }

StatusOr<TgtEnv> LoadTgtEnv() {
  const char* dir = std::getenv("VDISK_TGT_DIR");
  if (!dir || !*dir)
    return absl::FailedPreconditionError(
        "VDISK_TGT_DIR is not set: run through ctest (fixture `tgt`) or export it after tests/env/tgt.sh up <dir>");
  return ReadTgtEnv(dir);
}

Status TgtCommand(const TgtEnv& env, const std::string& cmd) {
  ASSIGN_OR_RETURN(auto r, RunProcess({TgtScript(), cmd, env.dir}));
  if (!r.ok()) return absl::InternalError(absl::StrCat("tgt.sh ", cmd, " failed: ", r.err));
  return Status();
}

StatusOr<std::string> Tgtadm(const TgtEnv& env, const std::string& args) {
  ASSIGN_OR_RETURN(auto r, RunProcess({"/bin/sh", "-c", absl::StrCat("tgtadm -C ", env.control, " --lld iscsi ", args)}));
  if (!r.ok()) return absl::InternalError(absl::StrCat("tgtadm ", args, ": ", r.err));
  return r.out;
}

std::string UniqueToken() {
  static std::atomic<int> counter{0};
  static const uint32_t salt = std::random_device{}() & 0xffff;
  return absl::StrCat("t", ::getpid(), "x", counter++, absl::Hex(salt));
}

blockdev::PoolConfig IscsiPoolConfig(const TgtEnv& env, const std::string& name, const std::string& token,
                                     const blockdev::Params& extra) {
  blockdev::PoolConfig c;
  c.name = name;
  c.kind = "iscsi";
  c.node_id = "controller-" + token;
  c.options = {{"portal", env.portal},
               {"backing_dir", env.backing + "/" + token},
               {"tgt_control", std::to_string(env.control)},
               {"iqn_prefix", "iqn.2024-01.io.vdisk." + token},
               {"export_check", "0"}};
  for (const auto& [k, v] : extra) c.options[k] = v;
  return c;
}

StatusOr<std::shared_ptr<blockdev::Pool>> OpenTestPool(const blockdev::PoolConfig& config,
                                                       const blockdev::Params& secrets) {
  blockdev::RegisterBuiltinBackends();
  blockdev::PoolSet set;
  RETURN_IF_ERROR(set.Add(config));
  return set.Get(config.name, secrets);
}

}  // namespace vdisk::testing
