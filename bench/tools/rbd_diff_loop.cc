// The long-lived peer of bench/run.sh cbt's service-level RBD line: what a backup agent that
// speaks librbd itself does to learn the changes between two snapshots. Connects to the cluster
// once, then per round opens the image read-only at its head, sets the target snapshot,
// rbd_diff_iterate2(from_snap, whole_object = 1) over the whole image (the fast-diff map, as
// `rbd diff --whole-object` and vdisk's GetMetadataDelta on RBD), closes it. Prints one line per
// round: "seconds=<s> bytes=<changed bytes>".
//
//   vdisk_rbd_diff_loop <ceph.conf> <client id> <pool> <image> <from snap> <to snap> <rounds>
#include <rados/librados.h>
#include <rbd/librbd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

int Fail(const char* what, int r) {
  std::fprintf(stderr, "vdisk_rbd_diff_loop: %s: %s\n", what, std::strerror(-r));
  return 1;
}

int Sum(uint64_t, size_t len, int exists, void* arg) {
  if (exists) *static_cast<uint64_t*>(arg) += len;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 8) {
    std::fprintf(stderr, "usage: %s <ceph.conf> <client id> <pool> <image> <from snap> <to snap> <rounds>\n",
                 argv[0]);
    return 2;
  }
  const int rounds = std::atoi(argv[7]);
  rados_t cluster;
  if (int r = rados_create(&cluster, argv[2]); r < 0) return Fail("rados_create", r);
  if (int r = rados_conf_read_file(cluster, argv[1]); r < 0) return Fail("rados_conf_read_file", r);
  if (int r = rados_connect(cluster); r < 0) return Fail("rados_connect", r);
  rados_ioctx_t io;
  if (int r = rados_ioctx_create(cluster, argv[3], &io); r < 0) return Fail("rados_ioctx_create", r);
  for (int i = 0; i < rounds; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    rbd_image_t image;
    if (int r = rbd_open_read_only(io, argv[4], &image, nullptr); r < 0) return Fail("rbd_open_read_only", r);
    uint64_t size = 0, changed = 0;
    int r = rbd_snap_set(image, argv[6]);
    if (r == 0) r = rbd_get_size(image, &size);
    if (r == 0)
      r = rbd_diff_iterate2(image, argv[5], 0, size, /*include_parent=*/1, /*whole_object=*/1, Sum, &changed);
    rbd_close(image);
    if (r < 0) return Fail("rbd_diff_iterate2", r);
    std::printf("seconds=%.6f bytes=%llu\n",
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
                static_cast<unsigned long long>(changed));
  }
  rados_ioctx_destroy(io);
  rados_shutdown(cluster);
  return 0;
}
