// Test helper for tests/pool/local_pool_test.cc: opens a local pool and runs ONE operation, so
// the test can SIGKILL it midway and check what a crash leaves behind.
//   local_crash_helper <root> snapshot <volume-id> <snapshot-name>
//   local_crash_helper <root> volume <name> <size-bytes> [full]
// Prints "ready" before the operation starts and "done" after it committed.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "blockdev/local/local_pool.h"

using namespace vdisk::blockdev;

int main(int argc, char** argv) {
  if (argc < 4) return 2;
  local::LocalPoolOptions o;
  o.root = argv[1];
  auto pool = local::OpenLocalPool(o);
  if (!pool.ok()) {
    fprintf(stderr, "open: %s\n", pool.status().ToString().c_str());
    return 1;
  }
  std::string op = argv[2];
  printf("ready\n");
  fflush(stdout);
  vdisk::Status s;
  if (op == "snapshot" && argc >= 5) {
    s = (*pool)->create_snapshot(argv[3], argv[4]).status();
  } else if (op == "volume" && argc >= 5) {
    VolumeRequest req;
    req.name = argv[3];
    req.size_bytes = std::strtoull(argv[4], nullptr, 10);
    if (argc >= 6) req.params["preallocation"] = argv[5];
    s = (*pool)->create_volume(req).status();
  } else {
    return 2;
  }
  if (!s.ok()) {
    fprintf(stderr, "%s: %s\n", op.c_str(), s.ToString().c_str());
    return 1;
  }
  printf("done\n");
  fflush(stdout);
  return 0;
}
