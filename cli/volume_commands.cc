// `vdisk volume ...`, `vdisk snapshot ...` and `vdisk clone`: the volume lifecycle spoken as CSI
// over --endpoint, exactly as the Kubernetes sidecars and kubelet speak it:
//
//   volume create|delete|list|get|expand|capacity   Controller service (external-provisioner,
//   snapshot create|delete|list                     external-snapshotter, external-resizer)
//   clone                                           CreateVolume with a content source
//   volume stage|unstage|publish|unpublish|stats    Node service (kubelet)
//
// Human output by default, one JSON document with --json. The endpoint defaults to
// $VDISK_CSI_ENDPOINT, then unix:///run/vdisk/csi.sock. Exit codes: 0 ok, 1 the CSI call failed
// (the message names the gRPC code), 2 usage error.
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/commands.h"
#include "cli/csi_common.h"
#include "csi/client.h"

namespace vdisk::cli {

namespace {

namespace v1 = ::csi::v1;
using nlohmann::json;

constexpr char kContextMode[] = "vdisk.csi.io/mode";
constexpr char kContextPool[] = "vdisk.csi.io/pool";

// "10G", "10GiB", "512Mi", "4096" (binary units).
int64_t ParseSize(const std::string& text) {
  size_t pos = 0;
  long double v = 0;
  try {
    v = std::stold(text, &pos);
  } catch (...) {
    Die(absl::StrCat("bad size '", text, "'"), 2);
  }
  std::string unit = text.substr(pos);
  if (!unit.empty() && (unit.back() == 'B' || unit.back() == 'b')) unit.pop_back();
  if (!unit.empty() && unit.back() == 'i') unit.pop_back();
  static const std::map<std::string, int> shift = {{"", 0},  {"K", 10}, {"k", 10}, {"M", 20}, {"m", 20},
                                                   {"G", 30}, {"g", 30}, {"T", 40}, {"t", 40}, {"P", 50}};
  auto it = shift.find(unit);
  if (it == shift.end() || v < 0) Die(absl::StrCat("bad size '", text, "' (use e.g. 4096, 512M, 10G)"), 2);
  long double bytes = v * static_cast<long double>(1ull << it->second);
  if (bytes > 9.2e18L) Die(absl::StrCat("size '", text, "' is too large"), 2);
  return static_cast<int64_t>(bytes);
}

v1::VolumeCapability::AccessMode::Mode ParseAccess(const std::string& s) {
  using M = v1::VolumeCapability::AccessMode;
  static const std::map<std::string, M::Mode> names = {
      {"rwo", M::SINGLE_NODE_WRITER},        {"rox", M::MULTI_NODE_READER_ONLY},
      {"rwx", M::MULTI_NODE_MULTI_WRITER},   {"rwop", M::SINGLE_NODE_SINGLE_WRITER},
      {"single-node-reader-only", M::SINGLE_NODE_READER_ONLY},
      {"multi-node-single-writer", M::MULTI_NODE_SINGLE_WRITER},
      {"single-node-multi-writer", M::SINGLE_NODE_MULTI_WRITER}};
  std::string lower;
  for (char c : s) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (auto it = names.find(lower); it != names.end()) return it->second;
  M::Mode m;
  if (M::Mode_Parse(s, &m) && m != M::UNKNOWN) return m;
  Die(absl::StrCat("unknown access mode '", s, "' (rwo, rox, rwx, rwop or a CSI mode name)"), 2);
}

std::string AccessName(v1::VolumeCapability::AccessMode::Mode m) {
  using M = v1::VolumeCapability::AccessMode;
  switch (m) {
    case M::SINGLE_NODE_WRITER: return "RWO";
    case M::MULTI_NODE_READER_ONLY: return "ROX";
    case M::MULTI_NODE_MULTI_WRITER: return "RWX";
    case M::SINGLE_NODE_SINGLE_WRITER: return "RWOP";
    default: return M::Mode_Name(m);
  }
}

v1::VolumeCapability MakeCapability(const std::string& mode, const std::string& access,
                                     const std::vector<std::string>& mount_flags = {}) {
  v1::VolumeCapability cap;
  if (mode == "block") {
    cap.mutable_block();
  } else if (mode == "filesystem" || mode == "fs" || mode == "mount") {
    auto* m = cap.mutable_mount();
    for (const auto& f : mount_flags) m->add_mount_flags(f);
  } else {
    Die(absl::StrCat("unknown volume mode '", mode, "' (block or filesystem)"), 2);
  }
  cap.mutable_access_mode()->set_mode(ParseAccess(access));
  return cap;
}

json VolumeJson(const v1::Volume& v) {
  json j{{"volume_id", v.volume_id()}, {"capacity_bytes", v.capacity_bytes()}};
  json ctx = json::object();
  for (const auto& [k, val] : v.volume_context()) ctx[k] = val;
  j["volume_context"] = ctx;
  if (v.volume_context().contains(kContextMode)) j["mode"] = v.volume_context().at(kContextMode);
  if (v.volume_context().contains(kContextPool)) j["pool"] = v.volume_context().at(kContextPool);
  if (v.content_source().has_snapshot()) j["source_snapshot_id"] = v.content_source().snapshot().snapshot_id();
  if (v.content_source().has_volume()) j["source_volume_id"] = v.content_source().volume().volume_id();
  json topo = json::array();
  for (const auto& t : v.accessible_topology()) {
    json seg = json::object();
    for (const auto& [k, val] : t.segments()) seg[k] = val;
    topo.push_back(seg);
  }
  if (!topo.empty()) j["accessible_topology"] = topo;
  return j;
}

json ConditionJson(const v1::VolumeCondition& c) { return json{{"abnormal", c.abnormal()}, {"message", c.message()}}; }

json SnapshotJson(const v1::Snapshot& s) {
  return json{{"snapshot_id", s.snapshot_id()},
              {"source_volume_id", s.source_volume_id()},
              {"size_bytes", s.size_bytes()},
              {"ready_to_use", s.ready_to_use()},
              {"creation_time_unix", s.creation_time().seconds()}};
}

std::string VolumeLine(const v1::Volume& v) {
  std::string mode = v.volume_context().contains(kContextMode) ? v.volume_context().at(kContextMode) : "?";
  std::string line = absl::StrCat(v.volume_id(), "  ", HumanBytes(v.capacity_bytes()), "  ", mode);
  if (v.content_source().has_snapshot()) absl::StrAppend(&line, "  from snapshot ", v.content_source().snapshot().snapshot_id());
  if (v.content_source().has_volume()) absl::StrAppend(&line, "  from volume ", v.content_source().volume().volume_id());
  return line;
}

// The volume's mode from the controller (volume_context), for node calls given no --mode.
std::string ModeOf(csi::CsiClient& client, const std::string& volume_id, const std::string& given) {
  if (!given.empty()) return given;
  v1::ControllerGetVolumeRequest req;
  req.set_volume_id(volume_id);
  auto resp = client.ControllerGetVolume(req);
  if (!resp.ok())
    Die(absl::StrCat("cannot tell the volume's mode (", resp.status().message(), "); pass --mode block|filesystem"), 2);
  auto it = resp->volume().volume_context().find(kContextMode);
  if (it == resp->volume().volume_context().end()) Die("the driver does not report the volume's mode; pass --mode", 2);
  return it->second;
}

// ------------------------------------------------------------------------------------------------
// Controller commands

struct CreateArgs {
  Common common;
  std::string name, size, mode, pool, from_snapshot, from_volume;
  std::vector<std::string> access{"rwo"}, params, mutable_params, secrets;
};

void AddCreateOptions(CLI::App* cmd, CreateArgs& a, bool clone) {
  AddCommon(cmd, a.common);
  cmd->add_option("name", a.name, "Volume name (the CSI idempotency key)")->required();
  cmd->add_option("--size", a.size, clone ? "Size (default: the source's size; larger allowed)"
                                          : "Size, e.g. 10G (default 1 GiB)");
  cmd->add_option("--mode", a.mode, clone ? "block or filesystem (default: the source volume's mode, else block)"
                                         : "block or filesystem (default block)");
  cmd->add_option("--access", a.access, "Access mode(s): rwo, rox, rwx, rwop (repeatable; default rwo)");
  cmd->add_option("--pool", a.pool, "Pool (StorageClass parameter pool=; default: the driver's first pool)");
  cmd->add_option("--param", a.params, "StorageClass parameter key=value (repeatable)");
  cmd->add_option("--mutable-param", a.mutable_params,
                  "Mutable parameter (VolumeAttributesClass), e.g. iopsLimit=2000 (repeatable)");
  cmd->add_option("--secret", a.secrets, "CSI secret key=value (repeatable; never printed)");
  auto* s = cmd->add_option("--from-snapshot", a.from_snapshot, "Restore a snapshot (snapshot id)");
  auto* v = cmd->add_option("--from-volume", a.from_volume, "Clone a volume (volume id)");
  s->excludes(v);
  v->excludes(s);
}

void RunCreate(const CreateArgs& a, bool clone) {
  if (clone && a.from_snapshot.empty() && a.from_volume.empty())
    Die("vdisk clone needs --from-volume or --from-snapshot", 2);
  auto client = Connect(a.common);
  std::string mode = a.mode;
  if (mode.empty()) mode = a.from_volume.empty() ? "block" : ModeOf(*client, a.from_volume, "");
  v1::CreateVolumeRequest req;
  req.set_name(a.name);
  if (!a.size.empty()) {
    int64_t bytes = ParseSize(a.size);
    req.mutable_capacity_range()->set_required_bytes(bytes);
  }
  for (const auto& acc : a.access) *req.add_volume_capabilities() = MakeCapability(mode, acc);
  PutKeyValues(a.params, "--param", req.mutable_parameters());
  PutKeyValues(a.mutable_params, "--mutable-param", req.mutable_mutable_parameters());
  if (!a.pool.empty()) (*req.mutable_parameters())["pool"] = a.pool;
  PutKeyValues(a.secrets, "--secret", req.mutable_secrets());
  if (!a.from_snapshot.empty())
    req.mutable_volume_content_source()->mutable_snapshot()->set_snapshot_id(a.from_snapshot);
  if (!a.from_volume.empty()) req.mutable_volume_content_source()->mutable_volume()->set_volume_id(a.from_volume);
  auto resp = Check(client->CreateVolume(req), "CreateVolume");
  if (a.common.json) return PrintJson(VolumeJson(resp.volume()));
  std::vector<std::string> modes;
  for (const auto& c : req.volume_capabilities()) modes.push_back(AccessName(c.access_mode().mode()));
  std::cout << "volume " << resp.volume().volume_id() << "  " << a.name << "  "
            << HumanBytes(resp.volume().capacity_bytes()) << "  " << mode << "  " << absl::StrJoin(modes, ",");
  if (!a.from_snapshot.empty()) std::cout << "  from snapshot " << a.from_snapshot;
  if (!a.from_volume.empty()) std::cout << "  from volume " << a.from_volume;
  std::cout << "\n";
}

void AddVolumeControllerCommands(CLI::App* vol) {
  {
    auto a = std::make_shared<CreateArgs>();
    auto* cmd = vol->add_subcommand("create", "Create a volume (CSI CreateVolume)");
    AddCreateOptions(cmd, *a, false);
    cmd->callback([a] { RunCreate(*a, false); });
  }
  {
    struct Args { Common common; std::string id; std::vector<std::string> secrets; };
    auto a = std::make_shared<Args>();
    auto* cmd = vol->add_subcommand("delete", "Delete a volume (CSI DeleteVolume; idempotent)");
    AddCommon(cmd, a->common);
    cmd->add_option("volume-id", a->id, "Volume id")->required();
    cmd->add_option("--secret", a->secrets, "CSI secret key=value (repeatable)");
    cmd->callback([a] {
      v1::DeleteVolumeRequest req;
      req.set_volume_id(a->id);
      PutKeyValues(a->secrets, "--secret", req.mutable_secrets());
      Check(Connect(a->common)->DeleteVolume(req), "DeleteVolume");
      if (a->common.json) return PrintJson(json{{"deleted", a->id}});
      std::cout << "deleted volume " << a->id << "\n";
    });
  }
  {
    struct Args { Common common; int32_t page = 0; };
    auto a = std::make_shared<Args>();
    auto* cmd = vol->add_subcommand("list", "List volumes (CSI ListVolumes, all pages)");
    AddCommon(cmd, a->common);
    cmd->add_option("--page-size", a->page, "max_entries per ListVolumes call (default: no limit)");
    cmd->callback([a] {
      auto client = Connect(a->common);
      json out = json::array();
      std::string token;
      std::vector<std::string> lines;
      do {
        v1::ListVolumesRequest req;
        req.set_max_entries(a->page);
        req.set_starting_token(token);
        auto resp = Check(client->ListVolumes(req), "ListVolumes");
        for (const auto& e : resp.entries()) {
          json j = VolumeJson(e.volume());
          if (e.status().has_volume_condition()) j["condition"] = ConditionJson(e.status().volume_condition());
          out.push_back(j);
          std::string line = VolumeLine(e.volume());
          if (e.status().volume_condition().abnormal())
            absl::StrAppend(&line, "  ABNORMAL: ", e.status().volume_condition().message());
          lines.push_back(line);
        }
        token = resp.next_token();
      } while (!token.empty());
      if (a->common.json) return PrintJson(out);
      for (const auto& l : lines) std::cout << l << "\n";
      if (lines.empty()) std::cout << "(no volumes)\n";
    });
  }
  {
    struct Args { Common common; std::string id; };
    auto a = std::make_shared<Args>();
    auto* cmd = vol->add_subcommand("get", "Show one volume (CSI ControllerGetVolume)");
    AddCommon(cmd, a->common);
    cmd->add_option("volume-id", a->id, "Volume id")->required();
    cmd->callback([a] {
      v1::ControllerGetVolumeRequest req;
      req.set_volume_id(a->id);
      auto resp = Check(Connect(a->common)->ControllerGetVolume(req), "ControllerGetVolume");
      json j = VolumeJson(resp.volume());
      j["condition"] = ConditionJson(resp.status().volume_condition());
      if (a->common.json) return PrintJson(j);
      std::cout << VolumeLine(resp.volume()) << "\n  condition: "
                << (resp.status().volume_condition().abnormal() ? "ABNORMAL " : "")
                << resp.status().volume_condition().message() << "\n";
      for (const auto& [k, v] : resp.volume().volume_context()) std::cout << "  " << k << ": " << v << "\n";
    });
  }
  {
    struct Args { Common common; std::string id, size, path, staging, mode; std::vector<std::string> secrets; };
    auto a = std::make_shared<Args>();
    auto* cmd = vol->add_subcommand(
        "expand", "Grow a volume (CSI ControllerExpandVolume, then NodeExpandVolume when --path is given)");
    AddCommon(cmd, a->common);
    cmd->add_option("volume-id", a->id, "Volume id")->required();
    cmd->add_option("--size", a->size, "New size, e.g. 20G")->required();
    cmd->add_option("--path", a->path, "Where the volume is published on this node (runs NodeExpandVolume)");
    cmd->add_option("--staging-path", a->staging, "Its staging path (passed to NodeExpandVolume)");
    cmd->add_option("--mode", a->mode, "block or filesystem (default: asked from the driver)");
    cmd->add_option("--secret", a->secrets, "CSI secret key=value (repeatable)");
    cmd->callback([a] {
      auto client = Connect(a->common);
      v1::ControllerExpandVolumeRequest req;
      req.set_volume_id(a->id);
      req.mutable_capacity_range()->set_required_bytes(ParseSize(a->size));
      PutKeyValues(a->secrets, "--secret", req.mutable_secrets());
      auto resp = Check(client->ControllerExpandVolume(req), "ControllerExpandVolume");
      json out{{"volume_id", a->id},
               {"capacity_bytes", resp.capacity_bytes()},
               {"node_expansion_required", resp.node_expansion_required()}};
      if (!a->path.empty()) {
        v1::NodeExpandVolumeRequest nreq;
        nreq.set_volume_id(a->id);
        nreq.set_volume_path(a->path);
        nreq.set_staging_target_path(a->staging);
        nreq.mutable_capacity_range()->set_required_bytes(resp.capacity_bytes());
        *nreq.mutable_volume_capability() = MakeCapability(ModeOf(*client, a->id, a->mode), "rwo");
        auto nresp = Check(client->NodeExpandVolume(nreq), "NodeExpandVolume");
        out["node_capacity_bytes"] = nresp.capacity_bytes();
      }
      if (a->common.json) return PrintJson(out);
      std::cout << "expanded volume " << a->id << " to " << HumanBytes(resp.capacity_bytes());
      if (out.contains("node_capacity_bytes"))
        std::cout << " (node sees " << HumanBytes(out["node_capacity_bytes"].get<int64_t>()) << ")";
      else if (resp.node_expansion_required())
        std::cout << " (node expansion required: pass --path where it is published)";
      std::cout << "\n";
    });
  }
  {
    struct Args { Common common; std::string pool, mode; std::vector<std::string> access; };
    auto a = std::make_shared<Args>();
    auto* cmd = vol->add_subcommand("capacity", "Free capacity of a pool (CSI GetCapacity)");
    AddCommon(cmd, a->common);
    cmd->add_option("--pool", a->pool, "Pool (default: the driver's first pool)");
    cmd->add_option("--mode", a->mode, "Only count capacity usable for block or filesystem volumes");
    cmd->add_option("--access", a->access, "... with these access modes");
    cmd->callback([a] {
      v1::GetCapacityRequest req;
      if (!a->pool.empty()) (*req.mutable_parameters())["pool"] = a->pool;
      if (!a->mode.empty())
        for (const auto& acc : a->access.empty() ? std::vector<std::string>{"rwo"} : a->access)
          *req.add_volume_capabilities() = MakeCapability(a->mode, acc);
      auto resp = Check(Connect(a->common)->GetCapacity(req), "GetCapacity");
      json out{{"available_capacity", resp.available_capacity()}};
      if (resp.has_maximum_volume_size()) out["maximum_volume_size"] = resp.maximum_volume_size().value();
      if (a->common.json) return PrintJson(out);
      std::cout << "available " << HumanBytes(resp.available_capacity());
      if (resp.has_maximum_volume_size()) std::cout << ", largest volume " << HumanBytes(resp.maximum_volume_size().value());
      std::cout << "\n";
    });
  }
}

// ------------------------------------------------------------------------------------------------
// Node commands (what kubelet does)

void AddVolumeNodeCommands(CLI::App* vol) {
  {
    struct Args { Common common; std::string id, staging, mode, access = "rwo"; std::vector<std::string> secrets, context; };
    auto a = std::make_shared<Args>();
    auto* cmd = vol->add_subcommand("stage", "Attach a volume on this node (CSI NodeStageVolume)");
    AddCommon(cmd, a->common);
    cmd->add_option("volume-id", a->id, "Volume id")->required();
    cmd->add_option("--staging-path", a->staging, "Staging directory (created if missing)")->required();
    cmd->add_option("--mode", a->mode, "block or filesystem (default: asked from the driver)");
    cmd->add_option("--access", a->access, "Access mode (default rwo; rox attaches read-only)");
    cmd->add_option("--secret", a->secrets, "CSI secret key=value (repeatable)");
    cmd->add_option("--context", a->context,
                    "Volume context key=value, as kubelet passes the PV's volumeAttributes (repeatable; "
                    "e.g. attach=vhost-user vhostQueues=2)");
    cmd->callback([a] {
      auto client = Connect(a->common);
      v1::NodeStageVolumeRequest req;
      req.set_volume_id(a->id);
      req.set_staging_target_path(a->staging);
      *req.mutable_volume_capability() = MakeCapability(ModeOf(*client, a->id, a->mode), a->access);
      PutKeyValues(a->secrets, "--secret", req.mutable_secrets());
      PutKeyValues(a->context, "--context", req.mutable_volume_context());
      Check(client->NodeStageVolume(req), "NodeStageVolume");
      if (a->common.json) return PrintJson(json{{"staged", a->id}, {"staging_path", a->staging}});
      std::cout << "staged volume " << a->id << " at " << a->staging << "\n";
    });
  }
  {
    struct Args { Common common; std::string id, staging; };
    auto a = std::make_shared<Args>();
    auto* cmd = vol->add_subcommand("unstage", "Detach a volume from this node (CSI NodeUnstageVolume)");
    AddCommon(cmd, a->common);
    cmd->add_option("volume-id", a->id, "Volume id")->required();
    cmd->add_option("--staging-path", a->staging, "Staging directory")->required();
    cmd->callback([a] {
      v1::NodeUnstageVolumeRequest req;
      req.set_volume_id(a->id);
      req.set_staging_target_path(a->staging);
      Check(Connect(a->common)->NodeUnstageVolume(req), "NodeUnstageVolume");
      if (a->common.json) return PrintJson(json{{"unstaged", a->id}});
      std::cout << "unstaged volume " << a->id << "\n";
    });
  }
  {
    struct Args {
      Common common;
      std::string id, staging, target, mode, access = "rwo";
      bool readonly = false;
      std::vector<std::string> flags, secrets, context;
    };
    auto a = std::make_shared<Args>();
    auto* cmd = vol->add_subcommand(
        "publish", "Expose a staged volume at a target path (CSI NodePublishVolume): Block = a device "
                   "node bind-mounted on a file, Filesystem = a directory holding disk.img (attach=vhost-user: "
                   "holding vhost-user-blk.sock and vhost-user-blk.json)");
    AddCommon(cmd, a->common);
    cmd->add_option("volume-id", a->id, "Volume id")->required();
    cmd->add_option("--staging-path", a->staging, "Where it was staged")->required();
    cmd->add_option("--target", a->target, "Target path (file for Block, directory for Filesystem; with attach=vhost-user a directory "
                    "holding vhost-user-blk.sock)")->required();
    cmd->add_option("--mode", a->mode, "block or filesystem (default: asked from the driver)");
    cmd->add_option("--access", a->access, "Access mode (default rwo)");
    cmd->add_flag("--readonly", a->readonly, "Publish read-only");
    cmd->add_option("--mount-flag", a->flags, "Bind-mount flag for Filesystem volumes (noatime, nosuid, ...)");
    cmd->add_option("--secret", a->secrets, "CSI secret key=value (repeatable)");
    cmd->add_option("--context", a->context,
                    "Volume context key=value, as kubelet passes the PV's volumeAttributes (repeatable; "
                    "e.g. attach=vhost-user vhostQueues=2)");
    cmd->callback([a] {
      auto client = Connect(a->common);
      v1::NodePublishVolumeRequest req;
      req.set_volume_id(a->id);
      req.set_staging_target_path(a->staging);
      req.set_target_path(a->target);
      req.set_readonly(a->readonly);
      *req.mutable_volume_capability() = MakeCapability(ModeOf(*client, a->id, a->mode), a->access, a->flags);
      PutKeyValues(a->secrets, "--secret", req.mutable_secrets());
      PutKeyValues(a->context, "--context", req.mutable_volume_context());
      Check(client->NodePublishVolume(req), "NodePublishVolume");
      if (a->common.json) return PrintJson(json{{"published", a->id}, {"target", a->target}, {"readonly", a->readonly}});
      std::cout << "published volume " << a->id << " at " << a->target << (a->readonly ? " (read-only)" : "") << "\n";
    });
  }
  {
    struct Args { Common common; std::string id, target; };
    auto a = std::make_shared<Args>();
    auto* cmd = vol->add_subcommand("unpublish", "Remove a published volume from a target path (CSI NodeUnpublishVolume)");
    AddCommon(cmd, a->common);
    cmd->add_option("volume-id", a->id, "Volume id")->required();
    cmd->add_option("--target", a->target, "Target path")->required();
    cmd->callback([a] {
      v1::NodeUnpublishVolumeRequest req;
      req.set_volume_id(a->id);
      req.set_target_path(a->target);
      Check(Connect(a->common)->NodeUnpublishVolume(req), "NodeUnpublishVolume");
      if (a->common.json) return PrintJson(json{{"unpublished", a->id}, {"target", a->target}});
      std::cout << "unpublished volume " << a->id << " from " << a->target << "\n";
    });
  }
  {
    struct Args { Common common; std::string id, path; };
    auto a = std::make_shared<Args>();
    auto* cmd = vol->add_subcommand("stats", "Usage and health of a published volume (CSI NodeGetVolumeStats)");
    AddCommon(cmd, a->common);
    cmd->add_option("volume-id", a->id, "Volume id")->required();
    cmd->add_option("--path", a->path, "A path the volume is published or staged at")->required();
    cmd->callback([a] {
      v1::NodeGetVolumeStatsRequest req;
      req.set_volume_id(a->id);
      req.set_volume_path(a->path);
      auto resp = Check(Connect(a->common)->NodeGetVolumeStats(req), "NodeGetVolumeStats");
      json out{{"volume_id", a->id}, {"condition", ConditionJson(resp.volume_condition())}};
      for (const auto& u : resp.usage()) {
        std::string unit = u.unit() == v1::VolumeUsage::BYTES ? "bytes" : u.unit() == v1::VolumeUsage::INODES ? "inodes" : "unknown";
        out[unit] = json{{"total", u.total()}, {"used", u.used()}, {"available", u.available()}};
      }
      if (a->common.json) return PrintJson(out);
      for (const auto& u : resp.usage()) {
        if (u.unit() == v1::VolumeUsage::BYTES)
          std::cout << "bytes:  total " << HumanBytes(u.total()) << ", used " << HumanBytes(u.used())
                    << ", available " << HumanBytes(u.available()) << "\n";
        else if (u.unit() == v1::VolumeUsage::INODES)
          std::cout << "inodes: total " << u.total() << ", used " << u.used() << ", available " << u.available() << "\n";
      }
      std::cout << "condition: " << (resp.volume_condition().abnormal() ? "ABNORMAL " : "")
                << resp.volume_condition().message() << "\n";
    });
  }
}

// ------------------------------------------------------------------------------------------------
// Snapshots

void AddSnapshotCommands(CLI::App& app) {
  auto* snap = app.add_subcommand("snapshot", "Snapshots through the CSI Controller service");
  snap->require_subcommand(1);
  {
    struct Args { Common common; std::string name, volume; std::vector<std::string> params, secrets; };
    auto a = std::make_shared<Args>();
    auto* cmd = snap->add_subcommand("create", "Snapshot a volume (CSI CreateSnapshot; idempotent by name)");
    AddCommon(cmd, a->common);
    cmd->add_option("name", a->name, "Snapshot name (the CSI idempotency key)")->required();
    cmd->add_option("--volume", a->volume, "Source volume id")->required();
    cmd->add_option("--param", a->params, "VolumeSnapshotClass parameter key=value (repeatable)");
    cmd->add_option("--secret", a->secrets, "CSI secret key=value (repeatable)");
    cmd->callback([a] {
      v1::CreateSnapshotRequest req;
      req.set_name(a->name);
      req.set_source_volume_id(a->volume);
      PutKeyValues(a->params, "--param", req.mutable_parameters());
      PutKeyValues(a->secrets, "--secret", req.mutable_secrets());
      auto resp = Check(Connect(a->common)->CreateSnapshot(req), "CreateSnapshot");
      if (a->common.json) return PrintJson(SnapshotJson(resp.snapshot()));
      std::cout << "snapshot " << resp.snapshot().snapshot_id() << "  " << a->name << "  of "
                << resp.snapshot().source_volume_id() << "  " << HumanBytes(resp.snapshot().size_bytes())
                << (resp.snapshot().ready_to_use() ? "  ready" : "  not ready") << "\n";
    });
  }
  {
    struct Args { Common common; std::string id; std::vector<std::string> secrets; };
    auto a = std::make_shared<Args>();
    auto* cmd = snap->add_subcommand("delete", "Delete a snapshot (CSI DeleteSnapshot; idempotent)");
    AddCommon(cmd, a->common);
    cmd->add_option("snapshot-id", a->id, "Snapshot id")->required();
    cmd->add_option("--secret", a->secrets, "CSI secret key=value (repeatable)");
    cmd->callback([a] {
      v1::DeleteSnapshotRequest req;
      req.set_snapshot_id(a->id);
      PutKeyValues(a->secrets, "--secret", req.mutable_secrets());
      Check(Connect(a->common)->DeleteSnapshot(req), "DeleteSnapshot");
      if (a->common.json) return PrintJson(json{{"deleted", a->id}});
      std::cout << "deleted snapshot " << a->id << "\n";
    });
  }
  {
    struct Args { Common common; std::string volume, id; int32_t page = 0; };
    auto a = std::make_shared<Args>();
    auto* cmd = snap->add_subcommand("list", "List snapshots (CSI ListSnapshots, all pages)");
    AddCommon(cmd, a->common);
    cmd->add_option("--volume", a->volume, "Only snapshots of this volume id");
    cmd->add_option("--id", a->id, "Only this snapshot id");
    cmd->add_option("--page-size", a->page, "max_entries per ListSnapshots call");
    cmd->callback([a] {
      auto client = Connect(a->common);
      json out = json::array();
      std::string token;
      do {
        v1::ListSnapshotsRequest req;
        req.set_source_volume_id(a->volume);
        req.set_snapshot_id(a->id);
        req.set_max_entries(a->page);
        req.set_starting_token(token);
        auto resp = Check(client->ListSnapshots(req), "ListSnapshots");
        for (const auto& e : resp.entries()) out.push_back(SnapshotJson(e.snapshot()));
        token = resp.next_token();
      } while (!token.empty());
      if (a->common.json) return PrintJson(out);
      for (const auto& s : out)
        std::cout << s["snapshot_id"].get<std::string>() << "  of " << s["source_volume_id"].get<std::string>()
                  << "  " << HumanBytes(s["size_bytes"].get<int64_t>())
                  << (s["ready_to_use"].get<bool>() ? "  ready" : "  not ready") << "\n";
      if (out.empty()) std::cout << "(no snapshots)\n";
    });
  }
}

}  // namespace

void AddVolumeCommands(CLI::App& app) {
  auto* vol = app.add_subcommand("volume", "Volumes through a CSI endpoint (vdisk-csi or any CSI driver)");
  vol->require_subcommand(1);
  AddVolumeControllerCommands(vol);
  AddVolumeNodeCommands(vol);
  AddSnapshotCommands(app);
  auto a = std::make_shared<CreateArgs>();
  auto* clone = app.add_subcommand("clone", "Create a volume from a volume or a snapshot (CSI CreateVolume with a content source)");
  AddCreateOptions(clone, *a, true);
  clone->callback([a] { RunCreate(*a, true); });
}

}  // namespace vdisk::cli
