// Test helper for tests/env/rerun_wrapper_test.sh: a process that ends the way a Ceph test can,
// so the wrapper's decisions can be checked on real cores.
//   crash_probe <mode> <counter file>
// Appends one line to the counter file per run, then:
//   ok            exits 0                        exit1        exits 1 (a failed assertion)
//   own-segv      SIGSEGV in this program        own-abort    abort() from this program
//   librbd-segv   SIGSEGV inside librbd (rbd_close of a bogus handle) on the first run only,
//                 exits 0 on the next one
//   own-hang      sleeps in this program until killed
#include <rbd/librbd.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

namespace {

[[gnu::noinline]] void CrashHere() {
  volatile int* p = nullptr;
  *p = 42;
}

[[gnu::noinline]] void HangHere() {
  for (;;) ::pause();
}

int Runs(const char* counter) {
  std::ifstream in(counter);
  int n = 0;
  std::string line;
  while (std::getline(in, line)) ++n;
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s <mode> <counter file>\n", argv[0]);
    return 2;
  }
  const std::string mode = argv[1];
  const int before = Runs(argv[2]);
  std::ofstream(argv[2], std::ios::app) << mode << "\n";
  if (mode == "ok") return 0;
  if (mode == "exit1") return 1;
  if (mode == "own-segv") CrashHere();
  if (mode == "own-abort") std::abort();
  if (mode == "own-hang") HangHere();
  if (mode == "librbd-segv") {
    if (before > 0) return 0;
    // librbd dereferences the handle: the fault is inside librbd.so.
    rbd_close(reinterpret_cast<rbd_image_t>(static_cast<uintptr_t>(0x40)));
    return 3;  // not reached
  }
  std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
  return 2;
}
