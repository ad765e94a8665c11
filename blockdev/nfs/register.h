// Registers the NFS backend: pool kind "nfs" (nfs_pool.h; options in nfs_options.h) and device
// URI scheme "nfs" (nfs_device.h; URI syntax in nfs_target.h).
#pragma once

namespace vdisk::blockdev::nfs {

void Register();

}  // namespace vdisk::blockdev::nfs
