#include "blockdev/iscsi/xcopy.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace vdisk::blockdev::iscsi {

namespace {

void Put16(std::string& b, size_t at, uint32_t v) {
  b[at] = static_cast<char>(v >> 8);
  b[at + 1] = static_cast<char>(v);
}

void Put64(std::string& b, size_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i) b[at + i] = static_cast<char>(v >> (56 - 8 * i));
}

// An identification CSCD descriptor (0xE4) naming a direct-access LU by its NAA designator.
std::string Cscd(const std::string& naa, uint32_t block_size) {
  std::string d(32, '\0');
  d[0] = static_cast<char>(0xE4);
  d[1] = 0x00;  // LU ID TYPE 0 (LUN), peripheral device type 0 (direct access)
  d[4] = 0x01;  // code set: binary
  d[5] = 0x03;  // association: logical unit, designator type: NAA
  d[7] = static_cast<char>(std::min<size_t>(naa.size(), 16));
  std::copy_n(naa.begin(), std::min<size_t>(naa.size(), 16), d.begin() + 8);
  d[29] = static_cast<char>(block_size >> 16);  // disk block length (block device parameters)
  d[30] = static_cast<char>(block_size >> 8);
  d[31] = static_cast<char>(block_size);
  return d;
}

}  // namespace

std::string ExtendedCopyParameters(const std::string& src_naa, const std::string& dst_naa, uint32_t block_size,
                                   uint64_t src_lba, uint64_t dst_lba, uint16_t blocks) {
  std::string cscd = Cscd(src_naa, block_size) + Cscd(dst_naa, block_size);
  std::string seg(28, '\0');
  seg[0] = 0x02;           // block device to block device
  Put16(seg, 2, 0x0018);   // descriptor length
  Put16(seg, 4, 0);        // source CSCD index
  Put16(seg, 6, 1);        // destination CSCD index
  Put16(seg, 10, blocks);
  Put64(seg, 12, src_lba);
  Put64(seg, 20, dst_lba);
  std::string header(16, '\0');
  header[1] = 0x18;  // LIST ID USAGE 11b: no list identifier
  Put16(header, 2, static_cast<uint32_t>(cscd.size()));
  header[8] = static_cast<char>(seg.size() >> 24);
  header[9] = static_cast<char>(seg.size() >> 16);
  header[10] = static_cast<char>(seg.size() >> 8);
  header[11] = static_cast<char>(seg.size());
  return header + cscd + seg;
}

Status ExtendedCopy(IscsiDevice& from, IscsiDevice& to) {
  if (!from.info().third_party_copy || !to.info().third_party_copy)
    return absl::FailedPreconditionError("EXTENDED COPY: the target does not advertise third-party copy (3PC)");
  if (from.block_size() != to.block_size() || to.size() < from.size())
    return absl::FailedPreconditionError("EXTENDED COPY: block sizes differ or the destination is smaller");
  std::string src_naa, dst_naa;
  RETURN_IF_ERROR(from.WithControl([&](Session& s) -> Status {
    ASSIGN_OR_RETURN(src_naa, s.NaaDesignator());
    return Status();
  }));
  RETURN_IF_ERROR(to.WithControl([&](Session& s) -> Status {
    ASSIGN_OR_RETURN(dst_naa, s.NaaDesignator());
    return Status();
  }));
  if (src_naa.empty() || dst_naa.empty())
    return absl::FailedPreconditionError("EXTENDED COPY: a LUN has no NAA designator to name it by");
  ASSIGN_OR_RETURN(ExtentList data, from.allocated(0, from.size()));
  const uint32_t bs = from.block_size();
  for (const Extent& e : data) {
    for (uint64_t lba = e.offset / bs, end = (e.end() + bs - 1) / bs; lba < end;) {
      const uint16_t n = static_cast<uint16_t>(std::min<uint64_t>(end - lba, 65535));
      std::string params = ExtendedCopyParameters(src_naa, dst_naa, bs, lba, lba, n);
      RETURN_IF_ERROR(to.WithControl([&](Session& s) -> Status {
        iscsi_data d{params.size(), reinterpret_cast<unsigned char*>(params.data())};
        scsi_task* t = iscsi_extended_copy_sync(s.ctx(), s.address().lun, &d);
        if (t == nullptr) return absl::UnavailableError(absl::StrCat("EXTENDED COPY: ", iscsi_get_error(s.ctx())));
        Status st = ScsiStatus(t->status, t, "EXTENDED COPY");
        scsi_free_scsi_task(t);
        return st;
      }));
      lba += n;
    }
  }
  return Status();
}

}  // namespace vdisk::blockdev::iscsi
