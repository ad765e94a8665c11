#include "blockdev/nfs/nfs_handle.h"

// libnfs.h first: the raw headers use its EXTERN.
#include <nfsc/libnfs.h>

#include <nfsc/libnfs-raw.h>


#include "absl/strings/str_cat.h"

namespace vdisk::blockdev::nfs {

namespace {
// Mirrors libnfs' private struct nfs_fh (see the header).
struct LibnfsFh {
  int len;
  char* val;
};
constexpr int kNfs3MaxHandle = 64;
}  // namespace

StatusOr<std::string> HandleBytes(struct nfsfh* fh) {
  const auto* raw = reinterpret_cast<const LibnfsFh*>(nfs_get_fh(fh));
  if (!raw || raw->len <= 0 || raw->len > kNfs3MaxHandle || !raw->val)
    return absl::InternalError(absl::StrCat(
        "libnfs returned an implausible NFSv3 file handle (length ", raw ? raw->len : -1,
        "); this libnfs is not laid out like 4.0"));
  return std::string(raw->val, static_cast<size_t>(raw->len));
}

}  // namespace vdisk::blockdev::nfs
