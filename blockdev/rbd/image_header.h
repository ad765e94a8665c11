// Direct access to a brand-new RBD image's RADOS objects, for the pool's create path: one
// round trip each instead of an image open (a dozen reads, a watch), an exclusive-lock
// acquisition, a header-update notify and a close.
//
// ImageIdByName(): the image id of format-2 image `name` (cls rbd.get_id on "rbd_id.<name>").
// TagNewImage(): sets image metadata (what rbd_metadata_set stores: omap "metadata_<key>" on
// "rbd_header.<id>", through cls rbd.metadata_set) in one write op. Only for an image nobody has
// open: it bypasses librbd's exclusive lock and does not notify watchers.
// Errors: NOT_FOUND (no such image), others as RadosError. Thread-safe (librados is).
#pragma once

#include <map>
#include <string>

#include "blockdev/rbd/cluster.h"
#include "common/status.h"

namespace vdisk::blockdev::rbd {

StatusOr<std::string> ImageIdByName(const IoCtx& io, const std::string& name);
Status TagNewImage(const IoCtx& io, const std::string& image_id,
                   const std::map<std::string, std::string>& metadata);

}  // namespace vdisk::blockdev::rbd
