// The target manager: the one small interface through which the iSCSI pool configures targets,
// and its real implementation, tgtadm on the target host (target_host.h: locally, or through a
// command prefix such as ssh). Another target stack (LIO's targetcli, a SAN's API) would be
// another implementation of TargetManager; nothing else in the pool knows tgt.
//
// tgt facts this relies on (tgt 1.0.85): target ids are numbers chosen by the caller; LUN 0 is
// the target's controller LUN, data LUNs start at 1; thin provisioning (UNMAP, WRITE SAME with
// UNMAP, GET LBA STATUS) is a separate update after the LUN exists; a LUN does not follow its
// backing file when the file grows — it is deleted and added again (sessions survive, and the
// initiator sees the new capacity on its next READ CAPACITY); targets live in tgtd's memory only,
// so a restarted tgtd has none (the pool re-exports, iscsi_pool.h).
// Thread-safe (every call is a command).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "blockdev/iscsi/lun_address.h"
#include "blockdev/iscsi/target_host.h"
#include "common/status.h"

namespace vdisk::blockdev::iscsi {

struct TargetInfo {
  int tid = 0;
  std::string iqn;
  std::vector<std::pair<int, std::string>> luns;  // data LUNs and their backing paths
  std::vector<std::string> initiators;            // logged-in initiator names (I_T nexuses)
  std::vector<std::string> acl;                   // ACL entries: initiator names or addresses ("ALL")
  std::vector<std::string> accounts;              // CHAP accounts bound to the target
};

struct LunSpec {
  int lun = 1;
  std::string backing;
  bool read_only = false;
  bool thin = true;
  std::string serial;   // SCSI serial (VPD 0x80), stable across re-exports
  std::string product;  // INQUIRY product identification (<= 16 chars), vendor "VDISK"
};

class TargetManager {
 public:
  virtual ~TargetManager() = default;
  virtual StatusOr<std::vector<TargetInfo>> List() = 0;
  // Creates a target named `iqn` (ALREADY_EXISTS if the name is taken); returns its tid.
  virtual StatusOr<int> CreateTarget(const std::string& iqn) = 0;
  virtual Status DeleteTarget(int tid) = 0;  // also while initiators are logged in
  virtual Status AddLun(int tid, const LunSpec& lun) = 0;
  virtual Status RemoveLun(int tid, int lun) = 0;
  // ACL entries: an initiator name, or "ALL" (any initiator).
  virtual Status Allow(int tid, const std::string& initiator) = 0;
  virtual Status Disallow(int tid, const std::string& initiator) = 0;
  // Requires CHAP from initiators: creates the account if missing and binds it. The password is
  // a secret (never in a message).
  virtual Status RequireChap(int tid, const Chap& chap) = 0;
};

// tgtadm on `host`, talking to tgtd control instance `control` (tgtadm -C).
std::unique_ptr<TargetManager> MakeTgtadmManager(TargetHost host, int control);

// Parses `tgtadm --op show --mode target` output (exposed for tests).
std::vector<TargetInfo> ParseTgtShow(const std::string& text);

}  // namespace vdisk::blockdev::iscsi
