#include "csi/driver.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/fs.h"
#include "csi/mounter.h"
#include "csi/vhost_publish.h"
#include "spdlog/spdlog.h"

namespace vdisk::csi {

DriverContext::DriverContext(DriverOptions options, std::shared_ptr<blockdev::PoolSet> pools)
    : options_(std::move(options)),
      pools_(std::move(pools)),
      node_state_(options_.state_dir),
      node_credentials_(options_.state_dir + "/credentials") {}

Status DriverContext::Init() {
  RETURN_IF_ERROR(node_state_.Init());
  RETURN_IF_ERROR(node_credentials_.Init());
  if (options_.serve_node) {
    // Staging and target paths are resolved beneath these (csi/mounter.h), never through symlinks.
    RETURN_IF_ERROR(mount::SetAllowedRoots(options_.allowed_path_roots));
    // A --vhost-dir given explicitly must work; one derived from a long --state-dir only matters
    // once a volume is published with attach: vhost-user (which then fails, naming the fix).
    Status usable = CheckVhostDir(vhost_dir());
    if (!usable.ok() && !options_.vhost_dir.empty()) return usable;
    if (usable.ok()) RETURN_IF_ERROR(fs::MakeDirs(vhost_dir(), 0700));
    else spdlog::warn("attach: vhost-user is unusable on this node until --vhost-dir is set: {}", usable.ToString());
  }
  return fs::MakeDirs(checkpoint_dir(), 0700);
}

void FillCondition(const std::string& condition, ::csi::v1::VolumeCondition* out) {
  out->set_abnormal(!condition.empty() && !condition.starts_with("thin:"));
  out->set_message(condition.empty() ? "healthy" : condition);
}

StatusOr<std::shared_ptr<blockdev::Pool>> DriverContext::PoolForId(const std::string& pool_name,
                                                                   const blockdev::Params& secrets) {
  if (!pools_->contains(pool_name))
    return absl::NotFoundError(absl::StrCat("pool '", pool_name, "' named in the id is not configured"));
  return pools_->Get(pool_name, secrets);
}

Status DriverContext::PoolsReady() {
  if (health_) return health_->Ready();
  for (const auto& name : pools_->names()) {
    auto pool = pools_->Get(name, kNoCallSecrets);
    if (!pool.ok() && absl::IsUnavailable(pool.status()))
      return absl::FailedPreconditionError(absl::StrCat("pool ", name, ": ",
                                                        std::string(pool.status().message())));
  }
  return Status();
}

namespace {
uint32_t OverprovisioningOf(blockdev::PoolSet& pools, const std::string& pool_name) {
  const blockdev::PoolConfig* cfg = pools.config(pool_name);
  return cfg ? cfg->overprovisioning_percent : blockdev::kDefaultOverprovisioningPercent;
}
}  // namespace

StatusOr<ProvisioningLimits::Reservation> DriverContext::ReserveCapacity(const std::string& pool_name,
                                                                         blockdev::Pool& pool,
                                                                         const blockdev::Params& params,
                                                                         uint64_t extra_bytes) {
  const uint32_t percent = OverprovisioningOf(*pools_, pool_name);
  if (percent == 0) return ProvisioningLimits::Reservation();
  ASSIGN_OR_RETURN(blockdev::Capacity capacity, pool.capacity(params));
  return limits_.Reserve(pool_name, pool, percent, capacity.total_bytes, extra_bytes);
}

StatusOr<uint64_t> DriverContext::PromisableCapacity(const std::string& pool_name, blockdev::Pool& pool,
                                                     const blockdev::Capacity& capacity) {
  return limits_.Promisable(pool_name, pool, OverprovisioningOf(*pools_, pool_name), capacity.total_bytes);
}

::csi::v1::Topology DriverContext::NodeTopology() const {
  ::csi::v1::Topology t;
  (*t.mutable_segments())[options_.topology_key] = options_.node_id;
  return t;
}

bool DriverContext::AnyNodeLocalPool() {
  for (const auto& name : pools_->names()) {
    auto pool = pools_->Get(name, kNoCallSecrets);
    if (pool.ok() && (*pool)->capabilities().node_local) return true;
  }
  return false;
}

bool DriverContext::AnyPublishingPool() {
  for (const auto& name : pools_->names()) {
    auto pool = pools_->Get(name, {});
    if (pool.ok() && (*pool)->capabilities().controller_publish) return true;
  }
  return false;
}

Status DriverContext::CheckPathAllowed(const std::string& path, const std::string& what) const {
  if (path.empty()) return absl::InvalidArgumentError(absl::StrCat(what, " is required"));
  if (path.front() != '/')
    return absl::InvalidArgumentError(absl::StrCat(what, " '", path, "' is not an absolute path"));
  for (auto part : absl::StrSplit(path, '/'))
    if (part == "..")
      return absl::InvalidArgumentError(absl::StrCat(what, " '", path, "' contains '..'"));
  if (path.find('\0') != std::string::npos)
    return absl::InvalidArgumentError(absl::StrCat(what, " contains NUL"));
  if (options_.allowed_path_roots.empty()) return Status();
  for (const auto& root : options_.allowed_path_roots)
    if (fs::IsUnder(root, path) && path != root) return Status();
  return absl::InvalidArgumentError(absl::StrCat(what, " '", path, "' is outside the allowed roots (",
                                                 absl::StrJoin(options_.allowed_path_roots, ", "), ")"));
}

}  // namespace vdisk::csi
