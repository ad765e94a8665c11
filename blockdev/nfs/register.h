// Registers the NFS backend: device URI scheme "nfs" (nfs_device.h; URI syntax in
// nfs_target.h) and, with the pool, pool kind "nfs".
#pragma once

namespace vdisk::blockdev::nfs {

void Register();

}  // namespace vdisk::blockdev::nfs
