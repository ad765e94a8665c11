// The CSI services beyond the volume lifecycle, spoken over --endpoint as the Kubernetes
// sidecars speak them:
//
//   snapshot changes <snapshot-id> [--base <snapshot-id>]   SnapshotMetadata (what a backup reads:
//                                                           allocated ranges, or the delta)
//   snapshot group create|get|delete                        GroupController (VolumeGroupSnapshot)
//   volume modify <volume-id> --param key=value             ControllerModifyVolume (QoS)
//
// Human tables by default, one JSON document with --json. Exit codes as volume_commands.cc.
#include <chrono>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/csi_common.h"

namespace vdisk::cli {

namespace {

namespace v1 = ::csi::v1;
using nlohmann::json;

void AddChangesCommand(CLI::App* snap) {
  struct Args {
    Common common;
    std::string target, base;
    int64_t from = 0;
    int32_t max_results = 0;
    std::vector<std::string> secrets;
    bool summary = false;
    int repeat = 1;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = snap->add_subcommand(
      "changes", "Ranges a backup would read: allocated in a snapshot, or changed since --base (CSI SnapshotMetadata)");
  AddCommon(cmd, a->common);
  cmd->add_option("snapshot-id", a->target, "The snapshot (the target of a delta)")->required();
  cmd->add_option("--base", a->base, "Older snapshot of the same volume: list what changed since it");
  cmd->add_option("--from", a->from, "Starting byte offset (resume point)");
  cmd->add_option("--max-results", a->max_results, "Ranges per streamed message (0: the driver chooses)");
  cmd->add_option("--secret", a->secrets, "CSI secret key=value (repeatable)");
  cmd->add_flag("--summary", a->summary, "Only the totals, not every range");
  cmd->add_option("--repeat", a->repeat,
                  "Read the stream N times over one connection and report each call's seconds "
                  "(what a long-lived client such as the snapshot-metadata sidecar sees)")
      ->check(CLI::Range(1, 1000));
  cmd->callback([a] {
    auto client = Connect(a->common);
    json extents = json::array();
    int64_t capacity = 0, total = 0, messages = 0;
    int type = 0;
    json seconds = json::array();
    auto take = [&](int t, int64_t cap, const auto& blocks) {
      type = t;
      capacity = cap;
      ++messages;
      for (const auto& b : blocks) {
        total += b.size_bytes();
        if (!a->summary) extents.push_back(json{{"offset", b.byte_offset()}, {"length", b.size_bytes()}});
      }
      return true;
    };
    for (int round = 0; round < a->repeat; ++round) {
      extents = json::array();
      total = messages = 0;
      const auto t0 = std::chrono::steady_clock::now();
      if (a->base.empty()) {
        v1::GetMetadataAllocatedRequest req;
        req.set_snapshot_id(a->target);
        req.set_starting_offset(a->from);
        req.set_max_results(a->max_results);
        PutKeyValues(a->secrets, "--secret", req.mutable_secrets());
        Check(client->GetMetadataAllocated(req, [&](const v1::GetMetadataAllocatedResponse& m) {
                return take(m.block_metadata_type(), m.volume_capacity_bytes(), m.block_metadata());
              }),
              "GetMetadataAllocated");
      } else {
        v1::GetMetadataDeltaRequest req;
        req.set_base_snapshot_id(a->base);
        req.set_target_snapshot_id(a->target);
        req.set_starting_offset(a->from);
        req.set_max_results(a->max_results);
        PutKeyValues(a->secrets, "--secret", req.mutable_secrets());
        Check(client->GetMetadataDelta(req, [&](const v1::GetMetadataDeltaResponse& m) {
                return take(m.block_metadata_type(), m.volume_capacity_bytes(), m.block_metadata());
              }),
              "GetMetadataDelta");
      }
      seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    const std::string kind = a->base.empty() ? "allocated" : "changed";
    if (a->common.json) {
      json out{{"snapshot_id", a->target},
               {"kind", kind},
               {"block_metadata_type", v1::BlockMetadataType_Name(static_cast<v1::BlockMetadataType>(type))},
               {"volume_capacity_bytes", capacity},
               {"bytes", total},
               {"messages", messages}};
      if (!a->base.empty()) out["base_snapshot_id"] = a->base;
      if (a->repeat > 1) out["seconds"] = seconds;
      if (!a->summary) out["extents"] = extents;
      return PrintJson(out);
    }
    if (!a->summary) {
      std::cout << "        OFFSET          LENGTH  END\n";
      for (const auto& e : extents) {
        const int64_t off = e["offset"], len = e["length"];
        char line[96];
        std::snprintf(line, sizeof line, "%14lld  %14s  %lld\n", static_cast<long long>(off),
                      HumanBytes(len).c_str(), static_cast<long long>(off + len));
        std::cout << line;
      }
    }
    const double pct = capacity > 0 ? 100.0 * static_cast<double>(total) / static_cast<double>(capacity) : 0;
    char pct_text[32];
    std::snprintf(pct_text, sizeof pct_text, "%.2f%%", pct);
    std::cout << kind << ": " << HumanBytes(total) << " (" << pct_text << " of " << HumanBytes(capacity) << ") in "
              << (a->summary ? std::string("") : std::to_string(extents.size()) + " range(s), ") << messages
              << " message(s)\n";
  });
}

json GroupJson(const v1::VolumeGroupSnapshot& g) {
  json members = json::array();
  for (const auto& s : g.snapshots())
    members.push_back(json{{"snapshot_id", s.snapshot_id()},
                           {"source_volume_id", s.source_volume_id()},
                           {"size_bytes", s.size_bytes()},
                           {"ready_to_use", s.ready_to_use()}});
  return json{{"group_snapshot_id", g.group_snapshot_id()},
              {"ready_to_use", g.ready_to_use()},
              {"creation_time_unix", g.creation_time().seconds()},
              {"snapshots", members}};
}

void PrintGroup(const Common& c, const v1::VolumeGroupSnapshot& g) {
  if (c.json) return PrintJson(GroupJson(g));
  std::cout << "group snapshot " << g.group_snapshot_id() << (g.ready_to_use() ? "  ready" : "  not ready") << "\n";
  for (const auto& s : g.snapshots())
    std::cout << "  " << s.snapshot_id() << "  of " << s.source_volume_id() << "  " << HumanBytes(s.size_bytes())
              << "\n";
}

void AddGroupCommands(CLI::App* snap) {
  auto* group = snap->add_subcommand("group", "Snapshots of several volumes at one point in time (CSI GroupController)");
  group->require_subcommand(1);
  {
    struct Args { Common common; std::string name; std::vector<std::string> volumes, secrets; };
    auto a = std::make_shared<Args>();
    auto* cmd = group->add_subcommand("create", "CreateVolumeGroupSnapshot (idempotent by name)");
    AddCommon(cmd, a->common);
    cmd->add_option("name", a->name, "Group snapshot name (the CSI idempotency key)")->required();
    cmd->add_option("--volume", a->volumes, "A member volume id (repeat for each)")->required();
    cmd->add_option("--secret", a->secrets, "CSI secret key=value (repeatable)");
    cmd->callback([a] {
      v1::CreateVolumeGroupSnapshotRequest req;
      req.set_name(a->name);
      for (const auto& v : a->volumes) req.add_source_volume_ids(v);
      PutKeyValues(a->secrets, "--secret", req.mutable_secrets());
      auto resp = Check(Connect(a->common)->CreateVolumeGroupSnapshot(req), "CreateVolumeGroupSnapshot");
      PrintGroup(a->common, resp.group_snapshot());
    });
  }
  {
    struct Args { Common common; std::string id; std::vector<std::string> secrets; };
    auto a = std::make_shared<Args>();
    auto* cmd = group->add_subcommand("get", "GetVolumeGroupSnapshot");
    AddCommon(cmd, a->common);
    cmd->add_option("group-snapshot-id", a->id, "Group snapshot id")->required();
    cmd->add_option("--secret", a->secrets, "CSI secret key=value (repeatable)");
    cmd->callback([a] {
      v1::GetVolumeGroupSnapshotRequest req;
      req.set_group_snapshot_id(a->id);
      PutKeyValues(a->secrets, "--secret", req.mutable_secrets());
      auto resp = Check(Connect(a->common)->GetVolumeGroupSnapshot(req), "GetVolumeGroupSnapshot");
      PrintGroup(a->common, resp.group_snapshot());
    });
  }
  {
    struct Args { Common common; std::string id; std::vector<std::string> secrets; };
    auto a = std::make_shared<Args>();
    auto* cmd = group->add_subcommand("delete", "DeleteVolumeGroupSnapshot (and its members; idempotent)");
    AddCommon(cmd, a->common);
    cmd->add_option("group-snapshot-id", a->id, "Group snapshot id")->required();
    cmd->add_option("--secret", a->secrets, "CSI secret key=value (repeatable)");
    cmd->callback([a] {
      v1::DeleteVolumeGroupSnapshotRequest req;
      req.set_group_snapshot_id(a->id);
      PutKeyValues(a->secrets, "--secret", req.mutable_secrets());
      Check(Connect(a->common)->DeleteVolumeGroupSnapshot(req), "DeleteVolumeGroupSnapshot");
      if (a->common.json) return PrintJson(json{{"deleted", a->id}});
      std::cout << "deleted group snapshot " << a->id << "\n";
    });
  }
}

void AddModifyCommand(CLI::App* vol) {
  struct Args { Common common; std::string id; std::vector<std::string> params, secrets; };
  auto a = std::make_shared<Args>();
  auto* cmd = vol->add_subcommand(
      "modify", "Change mutable parameters, e.g. QoS: --param iopsLimit=2000 (CSI ControllerModifyVolume; \"0\" lifts a limit)");
  AddCommon(cmd, a->common);
  cmd->add_option("volume-id", a->id, "Volume id")->required();
  cmd->add_option("--param", a->params, "Mutable parameter key=value (repeatable)")->required();
  cmd->add_option("--secret", a->secrets, "CSI secret key=value (repeatable)");
  cmd->callback([a] {
    v1::ControllerModifyVolumeRequest req;
    req.set_volume_id(a->id);
    PutKeyValues(a->params, "--param", req.mutable_mutable_parameters());
    PutKeyValues(a->secrets, "--secret", req.mutable_secrets());
    Check(Connect(a->common)->ControllerModifyVolume(req), "ControllerModifyVolume");
    if (a->common.json) return PrintJson(json{{"modified", a->id}});
    std::cout << "modified volume " << a->id << "\n";
  });
}

}  // namespace

void AddCsiServiceCommands(CLI::App& app) {
  AddChangesCommand(app.get_subcommand("snapshot"));
  AddGroupCommands(app.get_subcommand("snapshot"));
  AddModifyCommand(app.get_subcommand("volume"));
}

}  // namespace vdisk::cli
