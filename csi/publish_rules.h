// Rules a node applies to one more NodePublishVolume of a volume it has already published, and
// to what a NodeUnpublishVolume may release. Pure functions over the node records; thread-safe.
//
// Access modes (CSI spec, NodePublishVolume, the table for plugins with SINGLE_NODE_MULTI_WRITER):
// a publish at a second target path while another one is in place is FAILED_PRECONDITION when
// either side asked for SINGLE_NODE_SINGLE_WRITER (Kubernetes' ReadWriteOncePod). Every other
// mode may be published at several targets: SINGLE_NODE_MULTI_WRITER (ReadWriteOnce: several
// pods on one node), the MULTI_NODE_ modes (RWX, how a VM migrates), and the legacy
// SINGLE_NODE_WRITER / SINGLE_NODE_READER_ONLY (only COs unaware of the new modes send them,
// and those meant "several pods on one node" by ReadWriteOnce).
#pragma once

#include <optional>
#include <string>

#include "blockdev/pool.h"
#include "common/status.h"
#include "csi/node_state.h"

namespace vdisk::csi {

// FAILED_PRECONDITION if publishing `rec`'s volume at `target` with access mode `requested`
// would break a SINGLE_NODE_SINGLE_WRITER promise (the new publish's or one already in place).
// OK for a repeat at the same target (idempotency is judged elsewhere).
Status CheckAnotherPublish(const VolumeRecord& rec, const std::string& target,
                           blockdev::AccessMode requested);

// The access mode a publish record was made with (records written before it was kept: the
// access mode the volume was staged with).
blockdev::AccessMode PublishAccess(const VolumeRecord& rec, const PublishRecord& pub);

// The pool attachment that unpublishing `pub` must release: its own read-only attachment, unless
// another publish still uses the same device, and never the stage's attachment (a pool that
// handed the staged device back for a read-only publish must not lose it on unpublish).
std::optional<blockdev::Attachment> OwnAttachmentToRelease(const VolumeRecord& rec, const PublishRecord& pub);

}  // namespace vdisk::csi
