// A reproducer for a use-after-free inside librbd 16.2.15 (Debian 12), with no vdisk code:
// one thread, sequential librbd calls, the same sequence the RBD pool once used for "restore a
// snapshot into a new volume". On a loaded machine (e.g. 8 busy loops on 2 cores) an
// io_context_pool thread eventually locks a freed mutex inside librbd: the process hangs in
// rbd_clone3, crashes with SIGSEGV, or aborts with std::system_error (EINVAL) — the same three
// outcomes seen in rbd_pool_test, with the same librbd frames. The trigger is closing an image
// opened *at* a snapshot: with `at-snap` it failed after ~30 to ~120 iterations (four runs);
// `snap-set` (open the head, then rbd_snap_set — what vdisk does), `head-ro`, `head-rw` and
// `none` each ran 800 iterations clean.
//
//   librbd_clone_stress <ceph.conf> <user id, e.g. admin> <rbd pool> <iterations> [how]
//
// [how] is how each iteration opens the source before the clone:
//   at-snap    rbd_open_by_id_read_only(..., "s")            (default; the failing pattern)
//   snap-set   open the head read-only, then rbd_snap_set("s") on that handle
//   head-ro    open the head read-only
//   head-rw    open the head read-write
//   none       no open at all
//
// Exit 0 after the iterations; 2 on an API error. Leaves nothing behind when it completes.
#include <rados/librados.h>
#include <rbd/librbd.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {
rbd_image_options_t Options(bool clone) {
  rbd_image_options_t o;
  rbd_image_options_create(&o);
  rbd_image_options_set_uint64(o, RBD_IMAGE_OPTION_FORMAT, 2);
  rbd_image_options_set_uint64(o, RBD_IMAGE_OPTION_FEATURES,
                               RBD_FEATURE_LAYERING | RBD_FEATURE_EXCLUSIVE_LOCK |
                                   RBD_FEATURE_OBJECT_MAP | RBD_FEATURE_FAST_DIFF |
                                   RBD_FEATURE_DEEP_FLATTEN);
  if (clone) rbd_image_options_set_uint64(o, RBD_IMAGE_OPTION_CLONE_FORMAT, 2);
  return o;
}

int Fail(const char* what, int i, int r) {
  std::fprintf(stderr, "%s (iteration %d): %d\n", what, i, r);
  return 2;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 5 && argc != 6) {
    std::fprintf(stderr, "usage: %s <ceph.conf> <user id> <rbd pool> <iterations> [how]\n",
                 argv[0]);
    return 2;
  }
  const int iterations = std::atoi(argv[4]);
  const std::string how = argc == 6 ? argv[5] : "at-snap";
  if (how != "at-snap" && how != "snap-set" && how != "head-ro" && how != "head-rw" &&
      how != "none") {
    std::fprintf(stderr, "unknown [how] '%s'\n", how.c_str());
    return 2;
  }
  rados_t cluster;
  if (rados_create(&cluster, argv[2]) < 0 || rados_conf_read_file(cluster, argv[1]) < 0)
    return Fail("rados_create / conf", 0, -1);
  rados_conf_set(cluster, "log_to_stderr", "false");
  if (int r = rados_connect(cluster); r < 0) return Fail("rados_connect", 0, r);
  rados_ioctx_t io;
  if (int r = rados_ioctx_create(cluster, argv[3], &io); r < 0) return Fail("ioctx", 0, r);

  const std::string base = "librbd-clone-stress-" + std::to_string(getpid());
  rbd_image_options_t opts = Options(false);
  int r = rbd_create4(io, base.c_str(), 16 << 20, opts);
  rbd_image_options_destroy(opts);
  if (r < 0) return Fail("rbd_create4", 0, r);
  rbd_image_t parent;
  if ((r = rbd_open(io, base.c_str(), &parent, nullptr)) < 0) return Fail("rbd_open", 0, r);
  std::vector<char> buf(1 << 20, 'x');
  for (uint64_t mib = 0; mib < 16; ++mib) rbd_write(parent, mib << 20, buf.size(), buf.data());
  if ((r = rbd_snap_create(parent, "s")) < 0) return Fail("rbd_snap_create", 0, r);
  char id[64];
  rbd_get_id(parent, id, sizeof id);

  for (int i = 0; i < iterations; ++i) {
    // The pool's clone-depth check: open the source (how: see above), read its parent, close.
    if (how != "none") {
      rbd_image_t src;
      if (how == "at-snap")
        r = rbd_open_by_id_read_only(io, id, &src, "s");
      else if (how == "head-rw")
        r = rbd_open_by_id(io, id, &src, nullptr);
      else
        r = rbd_open_by_id_read_only(io, id, &src, nullptr);
      if (r < 0) return Fail("rbd_open_by_id", i, r);
      if (how == "snap-set" && (r = rbd_snap_set(src, "s")) < 0) return Fail("rbd_snap_set", i, r);
      rbd_linked_image_spec_t ps;
      rbd_snap_spec_t ss;
      if (rbd_get_parent(src, &ps, &ss) == 0) {
        rbd_linked_image_spec_cleanup(&ps);
        rbd_snap_spec_cleanup(&ss);
      }
      rbd_close(src);
    }
    // The clone, then a first write through it, then its removal.
    const std::string child = base + "-child-" + std::to_string(i);
    opts = Options(true);
    r = rbd_clone3(io, base.c_str(), "s", io, child.c_str(), opts);
    rbd_image_options_destroy(opts);
    if (r < 0) return Fail("rbd_clone3", i, r);
    rbd_image_t c;
    if ((r = rbd_open(io, child.c_str(), &c, nullptr)) < 0) return Fail("rbd_open child", i, r);
    rbd_write(c, 0, 4096, buf.data());
    rbd_close(c);
    if ((r = rbd_remove(io, child.c_str())) < 0) return Fail("rbd_remove child", i, r);
    if (i % 20 == 0) std::printf("iteration %d ok\n", i), std::fflush(stdout);
  }
  rbd_snap_remove(parent, "s");
  rbd_close(parent);
  rbd_remove(io, base.c_str());
  rados_ioctx_destroy(io);
  rados_shutdown(cluster);
  std::puts("done");
  return 0;
}
