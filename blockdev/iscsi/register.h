// Registers the iSCSI backend: pool kind "iscsi" (iscsi_pool.h; options in iscsi_options.h, CHAP
// credentials from CSI secrets) and device URI scheme "iscsi" (lun_address.h:
// iscsi://<portal>/<target-iqn>/<lun>?initiator=..&chap_user=..&chap_secret_file=..).
#pragma once

namespace vdisk::blockdev::iscsi {

void Register();

}  // namespace vdisk::blockdev::iscsi
