// Configuration of an iSCSI pool (the `pools:` entry or --pool name=..,kind=iscsi,...), its
// StorageClass parameters, and CHAP credentials from CSI secrets. Pure functions, thread-safe.
//
// Pool options:
//   portal            host[:port] initiators connect to (required)
//   backing_dir       directory on the target host holding the LUNs' backing files and the pool
//                     journal (required unless target_host is none)
//   target_host       how vdisk reaches the host where tgtd runs: "local" (default: run tgtadm
//                     here), a command prefix ("ssh -o BatchMode=yes root@storage"; the command
//                     line is its last argument), or "none" (data path only: a node that never
//                     configures targets)
//   tgt_control       tgtd control instance number, tgtadm -C (default 0)
//   iqn_prefix        targets are named <iqn_prefix>:<volume id> (default iqn.2024-01.io.vdisk)
//   initiator_prefix  this process logs in as <initiator_prefix>.<node id>; ControllerPublish
//                     admits <initiator_prefix>.<node id> of the node (default
//                     iqn.2024-01.io.vdisk:node)
//   acl               initiator (default: targets admit the controller and published nodes only)
//                     | open (any initiator: for COs without ControllerPublish)
//   reflink           auto (default) | on | off — target-side snapshots and clones by reflink
//   xcopy             off (default) | on — clone by SCSI EXTENDED COPY when the target
//                     advertises 3PC and reflink is unavailable (untested: tgt has no 3PC)
//   login_timeout, command_timeout, reconnect_timeout   seconds (10, 60, 15)
//   export_check      seconds between checks that every volume is exported (re-exports after a
//                     tgtd restart; default 10, 0 = only at start and on demand)
//   max_volumes       refuse CreateVolume beyond this many volumes (RESOURCE_EXHAUSTED; 0 = none)
//
// StorageClass parameters: preallocation = none (default) | full.
// Secrets (CSI, never logged): node.session.auth.username / node.session.auth.password (CHAP the
// target requires), node.session.auth.username_in / node.session.auth.password_in (mutual CHAP).
#pragma once

#include <string>
#include <vector>

#include "blockdev/iscsi/lun_address.h"
#include "blockdev/pool.h"
#include "blockdev/registry.h"
#include "common/status.h"

namespace vdisk::blockdev::iscsi {

inline constexpr char kChapUserKey[] = "node.session.auth.username";
inline constexpr char kChapPasswordKey[] = "node.session.auth.password";
inline constexpr char kChapUserInKey[] = "node.session.auth.username_in";
inline constexpr char kChapPasswordInKey[] = "node.session.auth.password_in";
inline constexpr char kPreallocationParam[] = "preallocation";

enum class Toggle { kAuto, kOn, kOff };

struct IscsiPoolOptions {
  std::string name;
  std::string portal;
  std::string backing_dir;
  std::vector<std::string> target_host;  // command prefix; empty: none
  int tgt_control = 0;
  std::string iqn_prefix = "iqn.2024-01.io.vdisk";
  std::string initiator_prefix = "iqn.2024-01.io.vdisk:node";
  std::string node_id;  // this process's node (PoolConfig::node_id), names our initiator
  bool open_acl = false;
  Toggle reflink = Toggle::kAuto;
  bool xcopy = false;
  int login_timeout_s = 10, command_timeout_s = 60, reconnect_timeout_s = 15;
  int export_check_s = 10;
  int max_volumes = 0;
  Chap chap;  // from the secrets the pool was opened with (empty: none given)

  bool manages_targets() const { return !target_host.empty(); }
};

// INVALID_ARGUMENT naming the bad or unknown option.
StatusOr<IscsiPoolOptions> ParseIscsiPoolConfig(const PoolConfig& config, const Params& secrets);

// CHAP credentials from CSI secrets (empty Chap when none). INVALID_ARGUMENT when half given.
StatusOr<Chap> ChapFromSecrets(const Params& secrets);

// The initiator name of a node: <initiator_prefix>.<node id made IQN-safe> (lower case; any other
// character becomes '-', and a changed id gets a short hash so two ids never collide).
std::string NodeInitiator(const std::string& initiator_prefix, const std::string& node_id);

// StorageClass parameters of iSCSI volumes (INVALID_ARGUMENT for unknown keys / bad values).
Status ValidateIscsiParams(const Params& params);
bool WantsPreallocation(const Params& params);

}  // namespace vdisk::blockdev::iscsi
