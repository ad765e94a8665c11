// Whether a volume the controller is asked to create (or to confirm) can be attached on a node of
// this driver: a volume CreateVolume accepts must be usable by NodeStage/NodePublish. The pool
// says which volume modes its node attachment serves (blockdev::Capabilities::attach_modes); the
// StorageClass's attach method (node_attach.h) may serve others from user space. Pure functions.
#pragma once

#include "blockdev/pool.h"
#include "common/status.h"
#include "csi/node_attach.h"

namespace vdisk::csi {

// INVALID_ARGUMENT, with the pool's reason, when no node attachment can serve `mode`: the pool's
// own attach() does not, and `attach` is not a user-space attachment. (What the user-space
// attachment itself accepts is CheckAttachMode's to say.)
Status CheckNodeAttachable(const blockdev::Capabilities& caps, blockdev::VolumeMode mode, const AttachSpec& attach);

}  // namespace vdisk::csi
