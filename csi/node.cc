#include "csi/node.h"

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "csi/ids.h"
#include "csi/mounter.h"
#include "csi/node_attach.h"
#include "csi/publish_rules.h"
#include "csi/rpc.h"
#include "common/fs.h"
#include "csi/validation.h"
#include "csi/vhost_publish.h"
#include "csi/volume_gates.h"
#include "spdlog/spdlog.h"

namespace vdisk::csi {

namespace v1 = ::csi::v1;
using blockdev::Params;
using blockdev::Pool;
using blockdev::VolumeMode;

namespace {

std::string NodeLockKey(const std::string& csi_id) { return "node volume " + csi_id; }

bool PathExists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

}  // namespace

StatusOr<Params> NodeService::NodeSecrets(const std::string& volume_id, const Params& given) {
  if (!given.empty()) return given;
  return ctx_->node_credentials().Load(volume_id);
}

void NodeService::ForgetStaleCredentials() {
  auto records = ctx_->node_state().LoadAll();
  if (!records.ok()) return;  // keep everything when unsure
  std::vector<std::string> staged;
  for (const auto& rec : *records) staged.push_back(rec.volume_id);
  ctx_->node_credentials().RemoveAllBut(staged);
}

// ------------------------------------------------------------------------------------------------
// vhost-user exports

Status NodeService::StartVhostExport(const std::string& csi_id, const std::shared_ptr<Pool>& pool,
                                     const std::string& local_id, const PublishRecord& pub,
                                     unsigned queues) {
  if (Status usable = CheckVhostDir(ctx_->vhost_dir()); !usable.ok())
    return absl::FailedPreconditionError(usable.message());
  const std::string& dir = pub.vhost_dir;
  const std::string socket = VhostSocketPath(dir);
  RETURN_IF_ERROR(MakeVhostExportDir(dir));
  blockdev::vhost::ExportOptions o;
  o.socket_path = socket;
  o.read_only = pub.readonly;
  o.num_queues = queues;
  o.serial = local_id.substr(0, 20);  // virtio-blk GET_ID holds 20 bytes
  o.metrics_volume = csi_id;
  RETURN_IF_ERROR(ctx_->vhost_exports().Publish(csi_id, GatedOpener(*ctx_, pool, csi_id, local_id), o));
  const int64_t gid = ctx_->options().vhost_socket_gid;
  if (gid >= 0 && ::chown(socket.c_str(), static_cast<uid_t>(-1), static_cast<gid_t>(gid)) != 0)
    return LastErrnoStatus(absl::StrCat("chown of the vhost-user socket ", socket, " to group ", gid));
  RETURN_IF_ERROR(DescribeVhostExport(csi_id, pub, queues));
  return MountVhostExportDir(dir, pub.target_path);
}

Status NodeService::DescribeVhostExport(const std::string& csi_id, const PublishRecord& pub,
                                        unsigned queues) {
  auto running = ctx_->vhost_exports().Find(VhostSocketPath(pub.vhost_dir));
  if (!running) return absl::InternalError(absl::StrCat("the vhost-user export in ", pub.vhost_dir, " is gone"));
  VhostExportInfo info;
  info.volume_id = csi_id;
  info.size_bytes = running->stats.capacity_bytes;
  info.logical_block_size = running->stats.block_size;
  info.num_queues = queues;
  info.read_only = running->stats.read_only;
  ASSIGN_OR_RETURN(ObjectId oid, DecodeVolumeId(csi_id));
  info.serial = oid.local_id.substr(0, 20);
  return WriteVhostExportInfo(pub.vhost_dir, info);
}

Status NodeService::StopVhostExport(const PublishRecord& pub) {
  if (pub.vhost_dir.empty()) {
    // Published by an earlier vdisk that served the socket at the target path itself.
    return ctx_->vhost_exports().Unpublish(pub.target_path);
  }
  RETURN_IF_ERROR(mount::Unmount(pub.target_path));
  RETURN_IF_ERROR(ctx_->vhost_exports().Unpublish(VhostSocketPath(pub.vhost_dir)));
  return RemoveVhostExportDir(pub.vhost_dir);
}

void NodeService::RestoreVhostExports() {
  auto records = ctx_->node_state().LoadAll();
  if (!records.ok()) {
    spdlog::error("cannot read node records to restore vhost-user exports: {}", records.status().ToString());
    return;
  }
  for (const auto& rec : *records) {
    if (rec.vhost_queues == 0 || rec.publishes.empty()) continue;
    auto oid = DecodeVolumeId(rec.volume_id);
    auto secrets = NodeSecrets(rec.volume_id, kNoCallSecrets);
    auto pool = !oid.ok()       ? StatusOr<std::shared_ptr<Pool>>(oid.status())
                : !secrets.ok() ? StatusOr<std::shared_ptr<Pool>>(secrets.status())
                                : ctx_->PoolForId(oid->pool, *secrets);
    for (const auto& pub : rec.publishes) {
      Status s = pool.status();
      if (s.ok() && pub.vhost_dir.empty())
        s = absl::FailedPreconditionError("published by an earlier vdisk with the socket at the target "
                                          "path (Block mode); unpublish it and publish it again");
      if (s.ok()) s = StartVhostExport(rec.volume_id, *pool, oid->local_id, pub, rec.vhost_queues);
      if (s.ok())
        spdlog::info("restored vhost-user export of {} at {} ({})", rec.volume_id, pub.target_path, pub.vhost_dir);
      else
        spdlog::error("cannot restore the vhost-user export of {} at {}: {}", rec.volume_id, pub.target_path,
                      s.ToString());
    }
  }
}

// ------------------------------------------------------------------------------------------------
// NodeStageVolume / NodeUnstageVolume

Status NodeService::DoStage(const v1::NodeStageVolumeRequest& req) {
  if (req.volume_id().empty()) return absl::InvalidArgumentError("volume_id is required");
  RETURN_IF_ERROR(ctx_->CheckPathAllowed(req.staging_target_path(), "staging_target_path"));
  if (!req.has_volume_capability()) return absl::InvalidArgumentError("volume_capability is required");
  ASSIGN_OR_RETURN(Capability cap, ParseCapability(req.volume_capability()));
  ASSIGN_OR_RETURN(AttachSpec attach, ParseAttachSpec(ToParams(req.volume_context())));
  RETURN_IF_ERROR(CheckAttachMode(attach, cap.mode));
  const unsigned vhost_queues = attach.vhost_user ? attach.vhost_queues : 0;
  ASSIGN_OR_RETURN(ObjectId oid, DecodeVolumeId(req.volume_id()));
  const Params given = ToParams(req.secrets());  // nodeStageSecretRef
  ASSIGN_OR_RETURN(const Params secrets, NodeSecrets(req.volume_id(), given));
  ASSIGN_OR_RETURN(std::shared_ptr<Pool> pool, ctx_->PoolForId(oid.pool, secrets));

  ASSIGN_OR_RETURN(OpLocks::Guard guard, ctx_->locks().Acquire({NodeLockKey(req.volume_id())}));
  ASSIGN_OR_RETURN(blockdev::Volume vol, pool->get_volume(oid.local_id));
  if (vol.pending) return absl::NotFoundError(absl::StrCat("volume ", req.volume_id(), " is still being populated"));
  if (cap.mode != vol.mode)
    return absl::InvalidArgumentError(absl::StrCat("volume_capability asks for ",
                                                   cap.mode == VolumeMode::kBlock ? "block" : "mount",
                                                   " access to a ", std::string(blockdev::ToString(vol.mode)),
                                                   " volume"));
  RETURN_IF_ERROR(CheckSupported(pool->capabilities(), cap.mode, {cap.access}));
  const bool readonly = IsReadOnlyAccess(cap.access);
  const std::string& staging = req.staging_target_path();

  NodeStateStore& store = ctx_->node_state();
  ASSIGN_OR_RETURN(std::optional<VolumeRecord> found, store.Load(req.volume_id()));
  const bool fresh = !found.has_value();
  VolumeRecord rec;
  if (found) {
    rec = std::move(*found);
    if (rec.staging_path != staging)
      return absl::FailedPreconditionError(
          absl::StrCat("volume ", req.volume_id(), " is already staged at ", rec.staging_path));
    if (rec.readonly != readonly || rec.mode != cap.mode || rec.vhost_queues != vhost_queues)
      return absl::AlreadyExistsError(absl::StrCat("volume ", req.volume_id(), " is already staged at ", staging,
                                                   " with an incompatible capability"));
  } else {
    rec.volume_id = req.volume_id();
    rec.staging_path = staging;
    rec.mode = cap.mode;
    rec.access = cap.access;
    rec.readonly = readonly;
    rec.flags_fingerprint = FlagsFingerprint(cap.mount_flags);
    rec.vhost_queues = vhost_queues;
    RETURN_IF_ERROR(store.Save(rec));  // intent first: a crash from here on is recoverable
  }

  auto stage = [&]() -> Status {
    // Kept for the node calls that carry no secrets (unpublish, unstage, stats, restarts).
    if (!given.empty()) RETURN_IF_ERROR(ctx_->node_credentials().Save(req.volume_id(), given));
    if (rec.vhost_queues > 0) return Status();  // no kernel attachment: publish starts the export
    ASSIGN_OR_RETURN(blockdev::Attachment att, pool->attach(oid.local_id, readonly, secrets));
    if (att.path != rec.attachment.path || att.is_block_device != rec.attachment.is_block_device) {
      rec.attachment = att;
      RETURN_IF_ERROR(store.Save(rec));
    }
    if (cap.mode == VolumeMode::kFilesystem) {
      RETURN_IF_ERROR(mount::EnsureDir(staging));
      ASSIGN_OR_RETURN(bool mounted, mount::IsMountPoint(staging));
      if (!mounted) RETURN_IF_ERROR(mount::BindMount(att.path, staging, readonly));
    }
    return Status();
  };
  Status s = stage();
  if (!s.ok() && fresh) {
    // Undo what this call did so the failure leaves nothing behind.
    if (cap.mode == VolumeMode::kFilesystem) (void)mount::Unmount(staging);
    if (!rec.attachment.path.empty()) (void)pool->detach(oid.local_id, rec.attachment);
    (void)store.Remove(req.volume_id());
    (void)ctx_->node_credentials().Remove(req.volume_id());
  }
  if (s.ok() && fresh)
    spdlog::info("NodeStageVolume id={} staging={} attachment={} ro={}", req.volume_id(), staging,
                 rec.vhost_queues > 0 ? "vhost-user" : rec.attachment.path, readonly);
  return s;
}

grpc::Status NodeService::NodeStageVolume(grpc::ServerContext*, const v1::NodeStageVolumeRequest* req,
                                          v1::NodeStageVolumeResponse* resp) {
  return ServeRpc("NodeStageVolume", *req, resp, [&] { return DoStage(*req); });
}

Status NodeService::DoUnstage(const v1::NodeUnstageVolumeRequest& req) {
  if (req.volume_id().empty()) return absl::InvalidArgumentError("volume_id is required");
  RETURN_IF_ERROR(ctx_->CheckPathAllowed(req.staging_target_path(), "staging_target_path"));
  ASSIGN_OR_RETURN(ObjectId oid, DecodeVolumeId(req.volume_id()));
  ASSIGN_OR_RETURN(OpLocks::Guard guard, ctx_->locks().Acquire({NodeLockKey(req.volume_id())}));

  NodeStateStore& store = ctx_->node_state();
  ASSIGN_OR_RETURN(std::optional<VolumeRecord> rec, store.Load(req.volume_id()));
  if (!rec) return ctx_->node_credentials().Remove(req.volume_id());  // not staged (any more)
  if (rec->staging_path != req.staging_target_path()) return Status();  // not staged there
  if (!rec->publishes.empty()) {
    std::vector<std::string> targets;
    for (const auto& p : rec->publishes) targets.push_back(p.target_path);
    return absl::FailedPreconditionError(absl::StrCat("volume ", req.volume_id(), " is still published at ",
                                                      absl::StrJoin(targets, ", ")));
  }
  if (rec->mode == VolumeMode::kFilesystem) RETURN_IF_ERROR(mount::Unmount(rec->staging_path));
  if (!rec->attachment.path.empty()) {
    ASSIGN_OR_RETURN(const Params secrets, NodeSecrets(req.volume_id(), kNoCallSecrets));
    ASSIGN_OR_RETURN(std::shared_ptr<Pool> pool, ctx_->PoolForId(oid.pool, secrets));
    RETURN_IF_ERROR(pool->detach(oid.local_id, rec->attachment));
  }
  RETURN_IF_ERROR(store.Remove(req.volume_id()));
  RETURN_IF_ERROR(ctx_->node_credentials().Remove(req.volume_id()));
  spdlog::info("NodeUnstageVolume id={} staging={}", req.volume_id(), req.staging_target_path());
  return Status();
}

grpc::Status NodeService::NodeUnstageVolume(grpc::ServerContext*, const v1::NodeUnstageVolumeRequest* req,
                                            v1::NodeUnstageVolumeResponse* resp) {
  return ServeRpc("NodeUnstageVolume", *req, resp, [&] { return DoUnstage(*req); });
}

// ------------------------------------------------------------------------------------------------
// NodePublishVolume / NodeUnpublishVolume

Status NodeService::DoPublish(const v1::NodePublishVolumeRequest& req) {
  if (req.volume_id().empty()) return absl::InvalidArgumentError("volume_id is required");
  RETURN_IF_ERROR(ctx_->CheckPathAllowed(req.target_path(), "target_path"));
  if (!req.has_volume_capability()) return absl::InvalidArgumentError("volume_capability is required");
  ASSIGN_OR_RETURN(Capability cap, ParseCapability(req.volume_capability()));
  if (req.staging_target_path().empty())
    return absl::FailedPreconditionError("staging_target_path is required: vdisk volumes are staged first");
  RETURN_IF_ERROR(ctx_->CheckPathAllowed(req.staging_target_path(), "staging_target_path"));
  if (req.staging_target_path() == req.target_path())
    return absl::InvalidArgumentError("target_path must differ from staging_target_path");
  ASSIGN_OR_RETURN(ObjectId oid, DecodeVolumeId(req.volume_id()));
  ASSIGN_OR_RETURN(const Params secrets, NodeSecrets(req.volume_id(), ToParams(req.secrets())));
  ASSIGN_OR_RETURN(std::shared_ptr<Pool> pool, ctx_->PoolForId(oid.pool, secrets));

  ASSIGN_OR_RETURN(OpLocks::Guard guard, ctx_->locks().Acquire({NodeLockKey(req.volume_id())}));
  ASSIGN_OR_RETURN(blockdev::Volume vol, pool->get_volume(oid.local_id));
  if (cap.mode != vol.mode)
    return absl::InvalidArgumentError(absl::StrCat("volume_capability does not match the ",
                                                   std::string(blockdev::ToString(vol.mode)), " volume"));
  NodeStateStore& store = ctx_->node_state();
  ASSIGN_OR_RETURN(std::optional<VolumeRecord> found, store.Load(req.volume_id()));
  if (!found || found->staging_path != req.staging_target_path())
    return absl::FailedPreconditionError(absl::StrCat("volume ", req.volume_id(), " is not staged at ",
                                                      req.staging_target_path()));
  VolumeRecord rec = std::move(*found);
  const bool readonly = req.readonly() || IsReadOnlyAccess(cap.access) || rec.readonly;
  ASSIGN_OR_RETURN(unsigned long flag_bits, MountFlagBits(cap.mount_flags));
  const std::string fingerprint = FlagsFingerprint(cap.mount_flags);
  const std::string& target = req.target_path();

  PublishRecord* pub = rec.FindPublish(target);
  const bool fresh = pub == nullptr;
  if (pub != nullptr) {
    if (pub->readonly != readonly || pub->flags_fingerprint != fingerprint ||
        PublishAccess(rec, *pub) != cap.access)
      return absl::AlreadyExistsError(absl::StrCat("volume ", req.volume_id(), " is already published at ", target,
                                                   " with a different access mode, read-only flag or mount flags"));
  } else {
    RETURN_IF_ERROR(CheckAnotherPublish(rec, target, cap.access));
    rec.publishes.push_back({target, readonly, fingerprint, std::nullopt, "", cap.access});
    pub = &rec.publishes.back();
    if (rec.vhost_queues > 0) pub->vhost_dir = VhostExportDir(ctx_->vhost_dir(), req.volume_id(), target);
    RETURN_IF_ERROR(store.Save(rec));  // intent first
  }

  auto publish = [&]() -> Status {
    if (rec.vhost_queues > 0) return StartVhostExport(req.volume_id(), pool, oid.local_id, *pub, rec.vhost_queues);
    if (vol.mode == VolumeMode::kBlock) {
      blockdev::Attachment device;
      if (readonly && !rec.readonly) {
        // A read-only bind of a device node does not stop writes through it: use a read-only
        // attachment of its own.
        ASSIGN_OR_RETURN(device, pool->attach(oid.local_id, /*read_only=*/true, secrets));
        if (device.path == rec.attachment.path)
          return absl::InternalError(absl::StrCat("pool '", oid.pool, "' handed out the read-write staged device ",
                                                  device.path, " for a read-only publish; refusing it"));
        if (!pub->own_attachment || pub->own_attachment->path != device.path) {
          pub->own_attachment = device;
          RETURN_IF_ERROR(store.Save(rec));
        }
      } else {
        // Idempotent: returns the staged attachment (re-creating it after a node reboot).
        ASSIGN_OR_RETURN(device, pool->attach(oid.local_id, rec.readonly, secrets));
        if (device.path != rec.attachment.path) {
          rec.attachment = device;
          RETURN_IF_ERROR(store.Save(rec));
        }
      }
      RETURN_IF_ERROR(mount::EnsureFile(target));
      ASSIGN_OR_RETURN(bool mounted, mount::IsMountPoint(target));
      if (!mounted) RETURN_IF_ERROR(mount::BindMount(device.path, target, readonly));
    } else {
      ASSIGN_OR_RETURN(bool staged, mount::IsMountPoint(rec.staging_path));
      if (!staged) {
        // The staging mount is gone (node reboot): restore it from the record.
        ASSIGN_OR_RETURN(blockdev::Attachment att, pool->attach(oid.local_id, rec.readonly, secrets));
        rec.attachment = att;
        RETURN_IF_ERROR(store.Save(rec));
        RETURN_IF_ERROR(mount::EnsureDir(rec.staging_path));
        RETURN_IF_ERROR(mount::BindMount(att.path, rec.staging_path, rec.readonly));
      }
      RETURN_IF_ERROR(mount::EnsureDir(target));
      ASSIGN_OR_RETURN(bool mounted, mount::IsMountPoint(target));
      if (!mounted) RETURN_IF_ERROR(mount::BindMount(rec.staging_path, target, readonly, flag_bits));
    }
    return Status();
  };
  Status s = publish();
  if (!s.ok() && fresh) {
    if (rec.vhost_queues > 0) (void)StopVhostExport(*pub);
    else (void)mount::Unmount(target);
    (void)mount::RemoveTarget(target);
    if (auto own = OwnAttachmentToRelease(rec, *pub)) (void)pool->detach(oid.local_id, *own);
    rec.publishes.erase(std::remove_if(rec.publishes.begin(), rec.publishes.end(),
                                       [&](const PublishRecord& p) { return p.target_path == target; }),
                        rec.publishes.end());
    (void)store.Save(rec);
  }
  if (s.ok() && fresh)
    spdlog::info("NodePublishVolume id={} target={} ro={}", req.volume_id(), target, readonly);
  return s;
}

grpc::Status NodeService::NodePublishVolume(grpc::ServerContext*, const v1::NodePublishVolumeRequest* req,
                                            v1::NodePublishVolumeResponse* resp) {
  return ServeRpc("NodePublishVolume", *req, resp, [&] { return DoPublish(*req); });
}

Status NodeService::DoUnpublish(const v1::NodeUnpublishVolumeRequest& req) {
  if (req.volume_id().empty()) return absl::InvalidArgumentError("volume_id is required");
  RETURN_IF_ERROR(ctx_->CheckPathAllowed(req.target_path(), "target_path"));
  ASSIGN_OR_RETURN(ObjectId oid, DecodeVolumeId(req.volume_id()));
  ASSIGN_OR_RETURN(OpLocks::Guard guard, ctx_->locks().Acquire({NodeLockKey(req.volume_id())}));

  NodeStateStore& store = ctx_->node_state();
  ASSIGN_OR_RETURN(std::optional<VolumeRecord> rec, store.Load(req.volume_id()));
  PublishRecord* pub = rec ? rec->FindPublish(req.target_path()) : nullptr;
  if (pub == nullptr) return mount::RemoveEmptyTarget(req.target_path());  // already unpublished

  if (rec->vhost_queues > 0) RETURN_IF_ERROR(StopVhostExport(*pub));
  else RETURN_IF_ERROR(mount::Unmount(pub->target_path));
  RETURN_IF_ERROR(mount::RemoveTarget(pub->target_path));
  if (auto own = OwnAttachmentToRelease(*rec, *pub)) {
    ASSIGN_OR_RETURN(const Params secrets, NodeSecrets(req.volume_id(), kNoCallSecrets));
    ASSIGN_OR_RETURN(std::shared_ptr<Pool> pool, ctx_->PoolForId(oid.pool, secrets));
    RETURN_IF_ERROR(pool->detach(oid.local_id, *own));
  }
  const std::string target = pub->target_path;
  rec->publishes.erase(std::remove_if(rec->publishes.begin(), rec->publishes.end(),
                                      [&](const PublishRecord& p) { return p.target_path == target; }),
                       rec->publishes.end());
  RETURN_IF_ERROR(store.Save(*rec));
  spdlog::info("NodeUnpublishVolume id={} target={}", req.volume_id(), target);
  return Status();
}

grpc::Status NodeService::NodeUnpublishVolume(grpc::ServerContext*, const v1::NodeUnpublishVolumeRequest* req,
                                              v1::NodeUnpublishVolumeResponse* resp) {
  return ServeRpc("NodeUnpublishVolume", *req, resp, [&] { return DoUnpublish(*req); });
}

// ------------------------------------------------------------------------------------------------
// NodeGetVolumeStats

Status NodeService::DoStats(const v1::NodeGetVolumeStatsRequest& req, v1::NodeGetVolumeStatsResponse* resp) {
  if (req.volume_id().empty()) return absl::InvalidArgumentError("volume_id is required");
  if (req.volume_path().empty()) return absl::InvalidArgumentError("volume_path is required");
  ASSIGN_OR_RETURN(ObjectId oid, DecodeVolumeId(req.volume_id()));
  ASSIGN_OR_RETURN(const Params secrets, NodeSecrets(req.volume_id(), kNoCallSecrets));
  ASSIGN_OR_RETURN(std::shared_ptr<Pool> pool, ctx_->PoolForId(oid.pool, secrets));
  ASSIGN_OR_RETURN(blockdev::Volume vol, pool->get_volume(oid.local_id));
  ASSIGN_OR_RETURN(std::optional<VolumeRecord> rec, ctx_->node_state().Load(req.volume_id()));
  const std::string& path = req.volume_path();
  bool known = rec && (rec->staging_path == path || rec->FindPublish(path) != nullptr);
  if (!known || !PathExists(path))
    return absl::NotFoundError(absl::StrCat("volume ", req.volume_id(), " is not staged or published at ", path));

  // Health: the volume's own condition, and whether its mount is still in place.
  std::string problem = vol.condition;
  const PublishRecord* pub = rec->FindPublish(path);
  const bool vhost = rec->vhost_queues > 0;
  const bool should_be_mounted = vhost ? pub != nullptr : (pub != nullptr || rec->mode == VolumeMode::kFilesystem);
  if (vhost && pub != nullptr &&
      !ctx_->vhost_exports().Contains(pub->vhost_dir.empty() ? path : VhostSocketPath(pub->vhost_dir)))
    problem = absl::StrCat("the vhost-user export published at ", path, " is not running");
  if (should_be_mounted) {
    ASSIGN_OR_RETURN(bool mounted, mount::IsMountPoint(path));
    if (!mounted) problem = absl::StrCat(path, " is no longer mounted");
  }
  if (rec->mode == VolumeMode::kBlock && !rec->attachment.path.empty() &&
      !mount::IsBlockDevice(rec->attachment.path))
    problem = absl::StrCat("block device ", rec->attachment.path, " is gone");
  FillCondition(problem, resp->mutable_volume_condition());

  // Bytes: the disk's size, and how much of it is allocated in the pool (thin provisioning).
  const uint64_t total = vol.size_bytes;
  uint64_t used = 0;
  auto dev = pool->open_volume(oid.local_id, /*read_only=*/true);
  if (dev.ok()) {
    auto extents = (*dev)->allocated(0, (*dev)->size());
    if (extents.ok())
      for (const auto& e : *extents) used += e.length;
  }
  used = std::min(used, total);
  uint64_t available = total - used;
  auto cap = pool->capacity(vol.params);
  if (cap.ok()) available = std::min<uint64_t>(available, cap->available_bytes);
  auto* bytes = resp->add_usage();
  bytes->set_unit(v1::VolumeUsage::BYTES);
  bytes->set_total(static_cast<int64_t>(total));
  bytes->set_used(static_cast<int64_t>(used));
  bytes->set_available(static_cast<int64_t>(available));

  // Inodes: Filesystem volumes are directories on the pool's filesystem (a vhost-user one is a
  // socket directory: no inodes of its own to report).
  if (rec->mode == VolumeMode::kFilesystem && !vhost) {
    struct statvfs sv;
    if (::statvfs(path.c_str(), &sv) == 0 && sv.f_files > 0) {
      auto* inodes = resp->add_usage();
      inodes->set_unit(v1::VolumeUsage::INODES);
      inodes->set_total(static_cast<int64_t>(sv.f_files));
      inodes->set_available(static_cast<int64_t>(sv.f_favail));
      inodes->set_used(static_cast<int64_t>(sv.f_files - sv.f_ffree));
    }
  }
  return Status();
}

grpc::Status NodeService::NodeGetVolumeStats(grpc::ServerContext*, const v1::NodeGetVolumeStatsRequest* req,
                                             v1::NodeGetVolumeStatsResponse* resp) {
  return ServeRpc("NodeGetVolumeStats", *req, resp, [&] { return DoStats(*req, resp); });
}

// ------------------------------------------------------------------------------------------------
// NodeExpandVolume

Status NodeService::DoExpand(const v1::NodeExpandVolumeRequest& req, v1::NodeExpandVolumeResponse* resp) {
  if (req.volume_id().empty()) return absl::InvalidArgumentError("volume_id is required");
  if (req.volume_path().empty()) return absl::InvalidArgumentError("volume_path is required");
  ASSIGN_OR_RETURN(ObjectId oid, DecodeVolumeId(req.volume_id()));
  std::optional<Capability> cap;
  if (req.has_volume_capability()) {
    ASSIGN_OR_RETURN(Capability c, ParseCapability(req.volume_capability()));
    cap = c;
  }
  ASSIGN_OR_RETURN(const Params secrets, NodeSecrets(req.volume_id(), ToParams(req.secrets())));
  ASSIGN_OR_RETURN(std::shared_ptr<Pool> pool, ctx_->PoolForId(oid.pool, secrets));
  ASSIGN_OR_RETURN(OpLocks::Guard guard, ctx_->locks().Acquire({NodeLockKey(req.volume_id())}));
  ASSIGN_OR_RETURN(blockdev::Volume vol, pool->get_volume(oid.local_id));
  if (cap && cap->mode != vol.mode)
    return absl::InvalidArgumentError(absl::StrCat("volume_capability does not match the ",
                                                   std::string(blockdev::ToString(vol.mode)), " volume"));
  ASSIGN_OR_RETURN(std::optional<VolumeRecord> rec, ctx_->node_state().Load(req.volume_id()));
  const std::string& path = req.volume_path();
  if (!rec || (rec->staging_path != path && rec->FindPublish(path) == nullptr))
    return absl::NotFoundError(absl::StrCat("volume ", req.volume_id(), " is not staged or published at ", path));
  const int64_t required = req.capacity_range().required_bytes();
  if (required > 0 && static_cast<uint64_t>(required) > vol.size_bytes)
    return absl::OutOfRangeError(absl::StrCat("the volume is ", vol.size_bytes, " bytes; expand it to ", required,
                                              " with ControllerExpandVolume first"));

  if (rec->vhost_queues > 0) {
    auto grown = ctx_->vhost_exports().Resize(req.volume_id(), GatedOpener(*ctx_, pool, req.volume_id(), oid.local_id));
    if (!grown.ok() && !absl::IsNotFound(grown.status())) return grown.status();  // NOT_FOUND: staged only
    for (const auto& p : rec->publishes)
      if (!p.vhost_dir.empty()) RETURN_IF_ERROR(DescribeVhostExport(req.volume_id(), p, rec->vhost_queues));
    resp->set_capacity_bytes(static_cast<int64_t>(grown.ok() ? *grown : vol.size_bytes));
    return Status();
  }
  if (!rec->attachment.path.empty()) RETURN_IF_ERROR(pool->node_expand(oid.local_id, rec->attachment));
  for (const auto& p : rec->publishes)
    if (p.own_attachment) RETURN_IF_ERROR(pool->node_expand(oid.local_id, *p.own_attachment));

  uint64_t size = vol.size_bytes;
  if (rec->attachment.is_block_device && !rec->attachment.path.empty()) {
    ASSIGN_OR_RETURN(size, mount::BlockDeviceSize(rec->attachment.path));
  }
  resp->set_capacity_bytes(static_cast<int64_t>(size));
  return Status();
}

grpc::Status NodeService::NodeExpandVolume(grpc::ServerContext*, const v1::NodeExpandVolumeRequest* req,
                                           v1::NodeExpandVolumeResponse* resp) {
  return ServeRpc("NodeExpandVolume", *req, resp, [&] { return DoExpand(*req, resp); });
}

// ------------------------------------------------------------------------------------------------
// NodeGetCapabilities / NodeGetInfo

grpc::Status NodeService::NodeGetCapabilities(grpc::ServerContext*, const v1::NodeGetCapabilitiesRequest* req,
                                              v1::NodeGetCapabilitiesResponse* resp) {
  return ServeRpc("NodeGetCapabilities", *req, resp, [&]() -> Status {
    using T = v1::NodeServiceCapability::RPC;
    for (T::Type t : {T::STAGE_UNSTAGE_VOLUME, T::GET_VOLUME_STATS, T::EXPAND_VOLUME, T::VOLUME_CONDITION,
                      T::SINGLE_NODE_MULTI_WRITER})
      resp->add_capabilities()->mutable_rpc()->set_type(t);
    return Status();
  });
}

grpc::Status NodeService::NodeGetInfo(grpc::ServerContext*, const v1::NodeGetInfoRequest* req,
                                      v1::NodeGetInfoResponse* resp) {
  return ServeRpc("NodeGetInfo", *req, resp, [&]() -> Status {
    resp->set_node_id(ctx_->options().node_id);
    resp->set_max_volumes_per_node(ctx_->options().max_volumes_per_node);
    *resp->mutable_accessible_topology() = ctx_->NodeTopology();
    return Status();
  });
}

}  // namespace vdisk::csi
