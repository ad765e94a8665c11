// Measurement tool (not a test): clone time of a large thin volume through the local pool and
// clone/, as docs/local-pool.md reports it. Driven by tests/pool/measure_clone.sh.
//   clone_measure <pool-root> <reflink: auto|off> <size-GiB> <data-GiB>
// Creates a volume of <size> with <data> of random bytes in 1 MiB extents spread evenly, then
// times: snapshot, clone from the snapshot, clone from the volume (each through
// clone::CreateVolumeFromSource / snapshot::CreateSnapshot, i.e. what CSI does), and prints one
// JSON line per step with seconds, the strategy used and the file system space consumed.
// VDISK_CLONE_QD / VDISK_CLONE_CHUNK_KIB override the host copy's queue depth and chunk size.
#include <sys/statvfs.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

#include "blockdev/aligned_buffer.h"
#include "blockdev/local/local_pool.h"
#include "blockdev/sync_io.h"
#include "clone/clone.h"
#include "snapshot/snapshot_policy.h"

using namespace vdisk;
using namespace vdisk::blockdev;

namespace {
uint64_t UsedBytes(const std::string& path) {
  struct statvfs sv;
  ::statvfs(path.c_str(), &sv);
  return (sv.f_blocks - sv.f_bfree) * sv.f_frsize;
}
double Since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}
int Fail(const char* what, const Status& s) {
  fprintf(stderr, "%s: %s\n", what, s.ToString().c_str());
  return 1;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s <pool-root> <auto|off> <size-GiB> <data-GiB>\n", argv[0]);
    return 2;
  }
  local::LocalPoolOptions o;
  o.root = argv[1];
  o.reflink = std::string(argv[2]) == "off" ? local::LocalPoolOptions::Reflink::kOff
                                            : local::LocalPoolOptions::Reflink::kAuto;
  const uint64_t size = std::stoull(argv[3]) << 30, data = std::stoull(argv[4]) << 30;
  auto pool_or = local::OpenLocalPool(o);
  if (!pool_or.ok()) return Fail("open", pool_or.status());
  Pool& pool = **pool_or;
  const bool reflink = pool.capabilities().fast_clone;

  VolumeRequest req;
  req.name = "measure-src";
  req.size_bytes = size;
  auto src = pool.create_volume(req);
  if (!src.ok()) return Fail("create", src.status());
  {
    auto dev = pool.open_volume(src->id, false);
    if (!dev.ok()) return Fail("open volume", dev.status());
    const uint64_t extent = 1 << 20, extents = data / extent, stride = size / extents;
    AlignedBuffer buf(extent);
    std::mt19937_64 rng(42);
    auto t = std::chrono::steady_clock::now();
    for (uint64_t i = 0; i < extents; ++i) {
      auto* w = reinterpret_cast<uint64_t*>(buf.data());
      for (size_t k = 0; k < extent / 8; ++k) w[k] = rng();
      Status s = WriteAt(**dev, i * stride, buf.span());
      if (!s.ok()) return Fail("write", s);
    }
    Status s = Flush(**dev);
    if (!s.ok()) return Fail("flush", s);
    printf("{\"step\":\"fill\",\"seconds\":%.3f,\"bytes\":%lu}\n", Since(t), data);
  }

  clone::CloneOptions copts;
  if (const char* qd = std::getenv("VDISK_CLONE_QD")) copts.queue_depth = std::atoi(qd);
  if (const char* kib = std::getenv("VDISK_CLONE_CHUNK_KIB")) copts.chunk_bytes = std::atoi(kib) << 10;

  auto step = [&](const char* name, auto&& fn) -> int {
    uint64_t before = UsedBytes(o.root);
    auto t = std::chrono::steady_clock::now();
    clone::CloneReport report;
    std::string strategy;
    Status s = fn(&report, &strategy);
    double secs = Since(t);
    if (!s.ok()) return Fail(name, s);
    printf("{\"step\":\"%s\",\"reflink\":%s,\"strategy\":\"%s\",\"seconds\":%.3f,"
           "\"volume_bytes\":%lu,\"data_bytes\":%lu,\"space_used_bytes\":%ld}\n",
           name, reflink ? "true" : "false", strategy.c_str(), secs, size, data,
           static_cast<long>(UsedBytes(o.root) - before));
    fflush(stdout);
    return 0;
  };
  std::string snap_id;
  if (int rc = step("snapshot", [&](clone::CloneReport*, std::string* strategy) -> Status {
        auto s = snapshot::CreateSnapshot(pool, src->id, "measure-snap");
        if (!s.ok()) return s.status();
        snap_id = s->id;
        *strategy = reflink ? "reflink" : "pool-copy";
        return Status();
      }))
    return rc;
  if (int rc = step("clone-from-snapshot", [&](clone::CloneReport* r, std::string* strategy) {
        VolumeRequest c;
        c.name = "measure-restore";
        c.source = {VolumeSource::Kind::kSnapshot, snap_id};
        auto v = clone::CreateVolumeFromSource(pool, c, copts, r);
        *strategy = clone::ToString(r->strategy);
        return v.status();
      }))
    return rc;
  if (int rc = step("clone-from-volume", [&](clone::CloneReport* r, std::string* strategy) {
        VolumeRequest c;
        c.name = "measure-clone";
        c.source = {VolumeSource::Kind::kVolume, src->id};
        auto v = clone::CreateVolumeFromSource(pool, c, copts, r);
        *strategy = clone::ToString(r->strategy);
        return v.status();
      }))
    return rc;
  return 0;
}
