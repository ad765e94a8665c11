// The iSCSI pool (kind "iscsi"): one tgt target per volume, named <iqn_prefix>:<volume id>, with
// the volume as LUN 1, backed by a sparse file <backing_dir>/volumes/<id>.img on the target host.
//
// Provisioning runs tgtadm and coreutils on the target host through a TargetManager
// (target_manager.h) — here, or through a command prefix such as ssh. State is journaled
// (journal.h): a crash never leaves a half-made volume or snapshot visible, and the next start
// removes what an interrupted call left (files, targets). Targets live in tgtd's memory, so the
// pool re-exports every volume at start and every `export_check` seconds (after a tgtd restart).
//
// Snapshots are reflinks of the backing file (<backing_dir>/snapshots/<id>.img, O(1), not
// exported); without reflink, a sparse copy made on the target host. Clones and restores are
// reflinks too (offload); without reflink, clone/ copies through libiscsi (or, with xcopy: on
// and a target that advertises 3PC, the pool clones by EXTENDED COPY — untested here). A
// snapshot is exported read-only only while a Device of it is open (backup, host copy).
// Deleting a volume never touches its snapshots or clones (they share no state but blocks).
//
// Access: with acl: initiator (default) a target admits the initiators ControllerPublishVolume
// named (Capabilities::controller_publish; <initiator_prefix>.<node id>) and, while it has the
// volume open, this controller; acl: open admits any initiator. CHAP credentials given as
// CreateVolume secrets are required of every initiator of that volume (nodes pass them as
// node-stage secrets). Block volumes only: Filesystem mode needs a kernel initiator on the node.
//
// With target_host: none (nodes) the pool only opens volumes: get_volume answers from the target
// (READ CAPACITY), provisioning calls fail with FAILED_PRECONDITION.
#pragma once

#include <memory>

#include "blockdev/iscsi/iscsi_options.h"
#include "blockdev/pool.h"

namespace vdisk::blockdev::iscsi {

StatusOr<std::shared_ptr<Pool>> OpenIscsiPool(const IscsiPoolOptions& options);

}  // namespace vdisk::blockdev::iscsi
