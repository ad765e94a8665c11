// IscsiPool: the node side — ControllerPublish (ACLs) and the kernel open-iscsi attach path.
//
// The kernel path is thin and UNTESTED here (this machine's kernel has no iSCSI initiator): it
// logs in with iscsiadm through an iface named "vdisk" that carries this node's initiator name
// (so the per-node ACL admits it), with the CHAP node-stage secrets, and hands kubelet the
// multipath-friendly /dev/disk/by-path/ip-<portal>-iscsi-<iqn>-lun-1 link. The vhost-user attach
// (csi/node_attach.h) needs none of it: it opens the volume through libiscsi (open_volume).
#include <sys/stat.h>

#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "blockdev/iscsi/iscsi_pool_impl.h"
#include "common/subprocess.h"
#include "spdlog/spdlog.h"

namespace vdisk::blockdev::iscsi {

namespace {

constexpr char kIface[] = "vdisk";

// Runs iscsiadm; FAILED_PRECONDITION when the node has none. `secret` words are not shown.
StatusOr<std::string> Iscsiadm(std::vector<std::string> args, std::set<size_t> secret = {}) {
  args.insert(args.begin(), "iscsiadm");
  auto r = RunProcess(args, "", 120000);
  if (absl::IsNotFound(r.status()))
    return absl::FailedPreconditionError(
        "this node has no open-iscsi (iscsiadm): use the StorageClass parameter attach: vhost-user, which needs no "
        "kernel initiator");
  if (!r.ok()) return r.status();
  if (r->exit_code == 0 || r->exit_code == 15 /* already logged in / exists */) return r->out;
  std::string shown;
  for (size_t i = 1; i < args.size(); ++i) absl::StrAppend(&shown, " ", secret.count(i - 1) ? "***" : args[i]);
  std::string err = r->err.size() > 400 ? r->err.substr(0, 400) : r->err;
  if (r->exit_code == 24) return absl::PermissionDeniedError(absl::StrCat("iscsiadm", shown, ": login refused: ", err));
  return absl::UnavailableError(absl::StrCat("iscsiadm", shown, " failed (exit ", r->exit_code, "): ", err));
}

std::string ByPath(const std::string& portal, const std::string& iqn) {
  return absl::StrCat("/dev/disk/by-path/ip-", portal, "-iscsi-", iqn, "-lun-1");
}

}  // namespace

StatusOr<Attachment> IscsiPool::attach(const std::string& id, bool read_only, const Params& secrets) {
  RETURN_IF_ERROR(ValidateId(id, "volume"));
  if (o_.manages_targets()) {
    ASSIGN_OR_RETURN(VolumeRecord rec, VisibleVolume(id));
    if (rec.mode == VolumeMode::kFilesystem)
      return absl::FailedPreconditionError(absl::StrCat(
          "volume ", id, " is a Filesystem volume: iscsi pools serve those through attach: vhost-user only"));
  }
  ASSIGN_OR_RETURN(Chap chap, ChapFromSecrets(secrets));
  if (!chap.enabled()) chap = o_.chap;
  const std::string iqn = VolumeIqn(id);
  RETURN_IF_ERROR(Iscsiadm({"-m", "iface", "-I", kIface, "-o", "new"}).status());
  RETURN_IF_ERROR(
      Iscsiadm({"-m", "iface", "-I", kIface, "-o", "update", "-n", "iface.initiatorname", "-v", initiator_}).status());
  RETURN_IF_ERROR(Iscsiadm({"-m", "node", "-T", iqn, "-p", o_.portal, "-I", kIface, "-o", "new"}).status());
  if (chap.enabled()) {
    const std::vector<std::pair<std::string, std::string>> settings = {
        {"node.session.auth.authmethod", "CHAP"},
        {"node.session.auth.username", chap.user},
        {"node.session.auth.password", chap.password},
        {"node.session.auth.username_in", chap.target_user},
        {"node.session.auth.password_in", chap.target_password}};
    for (const auto& [k, v] : settings) {
      if (v.empty()) continue;
      RETURN_IF_ERROR(Iscsiadm({"-m", "node", "-T", iqn, "-p", o_.portal, "-I", kIface, "-o", "update", "-n", k, "-v", v},
                               {13})
                          .status());
    }
  }
  RETURN_IF_ERROR(Iscsiadm({"-m", "node", "-T", iqn, "-p", o_.portal, "-I", kIface, "--login"}).status());
  const std::string dev = ByPath(o_.portal, iqn);
  for (int i = 0; i < 100; ++i) {
    struct stat st;
    if (::stat(dev.c_str(), &st) == 0 && S_ISBLK(st.st_mode)) {
      if (read_only) (void)RunProcess({"blockdev", "--setro", dev});
      return Attachment{dev, true};
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return absl::DeadlineExceededError(absl::StrCat("logged in to ", iqn, " but ", dev, " did not appear"));
}

Status IscsiPool::detach(const std::string& id, const Attachment& attachment) {
  RETURN_IF_ERROR(ValidateId(id, "volume"));
  const std::string iqn = VolumeIqn(id);
  auto r = Iscsiadm({"-m", "node", "-T", iqn, "-p", o_.portal, "-I", kIface, "--logout"});
  if (!r.ok() && !absl::IsUnavailable(r.status())) return r.status();  // "no session": already out
  (void)Iscsiadm({"-m", "node", "-T", iqn, "-p", o_.portal, "-I", kIface, "-o", "delete"});
  return Status();
}

Status IscsiPool::node_expand(const std::string& id, const Attachment& attachment) {
  RETURN_IF_ERROR(ValidateId(id, "volume"));
  return Iscsiadm({"-m", "node", "-T", VolumeIqn(id), "-p", o_.portal, "-I", kIface, "-R"}).status();
}

StatusOr<Params> IscsiPool::publish(const std::string& id, const std::string& node_id, bool read_only) {
  RETURN_IF_ERROR(RequireManager("ControllerPublishVolume"));
  if (node_id.empty()) return absl::InvalidArgumentError("node_id is empty");
  ASSIGN_OR_RETURN(VolumeRecord rec, VisibleVolume(id));
  if (rec.state != RecordState::kReady)
    return absl::NotFoundError(absl::StrCat("volume ", id, " is still being populated"));
  const std::string who = NodeInitiator(o_.initiator_prefix, node_id);
  if (!o_.open_acl && !rec.published.count(who)) {
    {
      std::lock_guard lock(mu_);
      JournalState next = state_;
      next.volumes[id].published.insert(who);
      RETURN_IF_ERROR(CommitLocked(std::move(next)));
    }
    RETURN_IF_ERROR(ReexportVolume(id));
    spdlog::info("iscsi pool {}: volume {} published to node {} ({})", o_.name, id, node_id, who);
  }
  return Params{{"iscsi.initiator", who}};
}

Status IscsiPool::unpublish(const std::string& id, const std::string& node_id) {
  RETURN_IF_ERROR(RequireManager("ControllerUnpublishVolume"));
  if (!ValidateId(id, "volume").ok()) return Status();
  // An empty node id: every node (ControllerUnpublishVolume without node_id).
  const std::string who = node_id.empty() ? "" : NodeInitiator(o_.initiator_prefix, node_id);
  {
    std::lock_guard lock(mu_);
    auto it = state_.volumes.find(id);
    if (it == state_.volumes.end() || it->second.published.empty() || (!who.empty() && !it->second.published.count(who)))
      return Status();
    JournalState next = state_;
    if (who.empty()) next.volumes[id].published.clear();
    else next.volumes[id].published.erase(who);
    RETURN_IF_ERROR(CommitLocked(std::move(next)));
  }
  RETURN_IF_ERROR(ReexportVolume(id));
  spdlog::info("iscsi pool {}: volume {} unpublished from node {}", o_.name, id, node_id);
  return Status();
}

}  // namespace vdisk::blockdev::iscsi
