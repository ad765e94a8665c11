// libFuzzer target: CSI volume / snapshot ids (csi/ids.h) as a CO hands them back to us, and the
// RBD backend's StorageClass parameters and pool options (blockdev/rbd/rbd_options.h).
// Input: NUL-separated fields. Checks that a decoded id re-encodes to itself.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "blockdev/rbd/rbd_options.h"
#include "csi/ids.h"

using namespace vdisk;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> f(1);
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == 0) f.emplace_back();
    else f.back().push_back(static_cast<char>(data[i]));
  }
  for (const std::string& id : f) {
    auto v = csi::DecodeVolumeId(id);
    if (v.ok()) {
      auto again = csi::EncodeVolumeId(v->pool, v->local_id);
      if (!again.ok() || *again != id) __builtin_trap();
    }
    auto s = csi::DecodeSnapshotId(id);
    if (s.ok()) {
      auto again = csi::EncodeSnapshotId(s->pool, s->local_id);
      if (!again.ok() || *again != id) __builtin_trap();
    }
    (void)csi::IsValidPoolName(id);
    (void)csi::IsValidLocalId(id);
  }
  // key=value pairs: StorageClass parameters, then the same as pool options.
  blockdev::Params params;
  for (size_t i = 0; i + 1 < f.size(); i += 2) params[f[i]] = f[i + 1];
  (void)blockdev::rbd::ParseVolumeParams(blockdev::rbd::VolumeOptions{}, params);
  params["conf"] = "/nonexistent/ceph.conf";
  params["user"] = "fuzz";
  params["keyring"] = "/nonexistent/keyring";
  blockdev::PoolConfig pool;
  pool.name = "fuzz";
  pool.kind = "rbd";
  pool.options = params;
  (void)blockdev::rbd::ParseRbdPoolConfig(pool, {});
  return 0;
}
