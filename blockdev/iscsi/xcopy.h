// SCSI EXTENDED COPY (LID1) between two LUNs of targets that advertise third-party copy (3PC):
// the target moves the data, nothing passes through vdisk. Used by the iSCSI pool to clone when
// the target host cannot reflink and the pool has xcopy: on.
//
// UNTESTED here: tgt 1.0.85 does not implement EXTENDED COPY (3PC=0), and no other target is
// available on this machine. The command is built from SPC-4 (identification CSCD descriptors
// 0xE4 with the LUNs' NAA designators, block-to-block segment descriptors 0x02 of at most 65535
// blocks, one segment per command, unallocated source ranges skipped). FAILED_PRECONDITION when
// either LUN lacks 3PC or an NAA designator; the target's errors as ScsiStatus() maps them.
#pragma once

#include "blockdev/iscsi/iscsi_device.h"
#include "common/status.h"

namespace vdisk::blockdev::iscsi {

// Copies all of `from` (its allocated ranges) into the start of `to` (at least as large).
Status ExtendedCopy(IscsiDevice& from, IscsiDevice& to);

// The EXTENDED COPY parameter list for one segment (exposed for tests).
std::string ExtendedCopyParameters(const std::string& src_naa, const std::string& dst_naa, uint32_t block_size,
                                   uint64_t src_lba, uint64_t dst_lba, uint16_t blocks);

}  // namespace vdisk::blockdev::iscsi
