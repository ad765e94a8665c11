// vdisk_vhost_load: a host-side vhost-user-blk front end that keeps a fixed number of 4 KiB
// (or --bs) requests in flight against any vhost-user-blk socket for a fixed time, the way a
// guest's virtio-blk driver would (EVENT_IDX, one kick per batch when the back end asks for
// it, sleeping on the call eventfd until interrupted), and reports the back end's throughput
// and CPU time per request. It measures the back end alone, without a guest CPU in the way:
// bench/suites/vhost.sh runs it against `vdisk serve` and qemu-storage-daemon on the same file.
//
//   vdisk_vhost_load --socket S --size BYTES [--rw randread|randwrite] [--qd 32] [--bs 4096]
//                    [--seconds 5] [--backend-pid PID]
// Prints one line: `vhost-load rw=.. qd=.. bs=.. ios=.. seconds=.. iops=.. mib_s=..
// interrupts=.. backend_cpu_s=.. backend_us_per_io=..`. Exit status 1 on a set-up error or a request that failed.
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "tests/vhost/vhost_client.h"

namespace {

using vdisk::blockdev::vhost::BlkOutHeader;
using vdisk::blockdev::vhost::VringUsedElem;
using vdisk::blockdev::vhost::testing::VhostClient;
namespace vh = vdisk::blockdev::vhost;

// CPU seconds (user + system, all threads) the process has used so far; -1 if unreadable.
double ProcessCpuSeconds(int pid) {
  if (pid <= 0) return -1;
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(f, line)) return -1;
  // Fields after the parenthesised command name: state is field 3; utime/stime are 14/15.
  auto close = line.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; i++) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

bool NeedEvent(uint16_t event, uint16_t new_idx, uint16_t old_idx) {
  return static_cast<uint16_t>(new_idx - event - 1) < static_cast<uint16_t>(new_idx - old_idx);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vhost-user-blk load generator (host-side front end)"};
  std::string socket, rw = "randread";
  uint64_t size = 0;
  unsigned qd = 32, bs = 4096;
  double seconds = 5;
  int backend_pid = 0;
  app.add_option("--socket", socket, "vhost-user-blk socket")->required();
  app.add_option("--size", size, "bytes of the disk to address")->required();
  app.add_option("--rw", rw, "randread or randwrite")->check(CLI::IsMember({"randread", "randwrite"}));
  app.add_option("--qd", qd, "requests kept in flight")->check(CLI::Range(1, 85));  // 3 descriptors each in a 256-entry ring
  app.add_option("--bs", bs, "request size in bytes (multiple of 4096, <= 1 MiB)")
      ->check(CLI::Range(4096, 1 << 20));
  app.add_option("--seconds", seconds, "run time");
  app.add_option("--backend-pid", backend_pid, "process whose CPU time is reported per request");
  CLI11_PARSE(app, argc, argv);
  if (bs % 4096 != 0 || size < bs) {
    std::fprintf(stderr, "vhost-load: --bs must be a multiple of 4096 and --size at least --bs\n");
    return 2;
  }

  // Each slot owns three fixed descriptors (header, data, status), as Linux virtio-blk lays out
  // a request, and a 4 KiB-aligned scratch area.
  const uint16_t ring = 256;
  const uint64_t slot_bytes = 8192 + bs;
  VhostClient c(VhostClient::kDataBase + qd * slot_bytes + (1 << 20), ring);
  if (auto s = c.Connect(socket); !s.ok()) {
    std::fprintf(stderr, "vhost-load: %s\n", s.ToString().c_str());
    return 1;
  }
  const uint64_t protocols = (1ull << vh::kPfMq) | (1ull << vh::kPfReplyAck) | (1ull << vh::kPfConfig);
  if (auto s = c.Setup(1, /*event_idx=*/true, false, protocols); !s.ok()) {
    std::fprintf(stderr, "vhost-load: set-up: %s\n", s.ToString().c_str());
    return 1;
  }
  const bool event_idx = c.acked_features() & (1ull << vh::kFRingEventIdx);
  auto& r = c.ring(0);
  const bool read = rw == "randread";
  const uint64_t blocks = size / bs;
  std::mt19937_64 rng(42);

  auto scratch = [&](unsigned slot) { return VhostClient::kDataBase + slot * slot_bytes; };
  for (unsigned i = 0; i < qd; i++) {
    uint64_t s = scratch(i);
    std::memset(c.ram().at(s + 4096), 0x5a, bs);
    r.ring.SetDesc(3 * i, s, sizeof(BlkOutHeader), vh::kDescFNext, 3 * i + 1);
    r.ring.SetDesc(3 * i + 1, s + 4096, bs, (read ? vh::kDescFWrite : 0) | vh::kDescFNext, 3 * i + 2);
    r.ring.SetDesc(3 * i + 2, s + 4096 + bs, 1, vh::kDescFWrite);
  }
  auto post = [&](unsigned slot) {
    uint64_t s = scratch(slot);
    BlkOutHeader h{read ? vh::kBlkTIn : vh::kBlkTOut, 0, (rng() % blocks) * (bs / 512)};
    std::memcpy(c.ram().at(s), &h, sizeof(h));
    c.ram().at(s + 4096 + bs)[0] = 0xff;
    r.ring.Post(static_cast<uint16_t>(3 * slot));
  };
  uint16_t kicked_at = r.ring.avail_idx();
  auto maybe_kick = [&] {
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    uint16_t now = r.ring.avail_idx();
    if (!event_idx || NeedEvent(r.ring.avail_event(), now, kicked_at)) c.Kick(0);
    kicked_at = now;
  };

  const double cpu0 = ProcessCpuSeconds(backend_pid);
  const auto t0 = std::chrono::steady_clock::now();
  const auto end = t0 + std::chrono::duration<double>(seconds);
  for (unsigned i = 0; i < qd; i++) post(i);
  c.Kick(0);
  kicked_at = r.ring.avail_idx();
  uint64_t ios = 0, failed = 0, in_flight = qd, interrupts = 0;
  bool stopping = false;
  while (in_flight > 0) {
    unsigned reaped = 0;
    while (r.ring.used_idx() != r.seen_used) {
      VringUsedElem e = r.ring.used(r.seen_used++);
      unsigned slot = e.id / 3;
      if (e.id % 3 != 0 || slot >= qd) {
        std::fprintf(stderr, "vhost-load: back end returned unknown head %u\n", e.id);
        return 1;
      }
      if (c.ram().at(scratch(slot) + 4096 + bs)[0] != vh::kBlkSOk) failed++;
      ios++;
      reaped++;
      in_flight--;
      if (!stopping) {
        post(slot);
        in_flight++;
      }
    }
    if (reaped > 0) {
      if (!stopping && std::chrono::steady_clock::now() >= end) stopping = true;
      maybe_kick();
      continue;
    }
    // Nothing new: ask for an interrupt at the next used entry, re-check, then sleep on it.
    r.ring.SetUsedEvent(r.seen_used);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (r.ring.used_idx() != r.seen_used) continue;
    pollfd p{r.call.get(), POLLIN, 0};
    if (::poll(&p, 1, 5000) != 1) {
      std::fprintf(stderr, "vhost-load: no completion for 5 s (%lu in flight)\n",
                   static_cast<unsigned long>(in_flight));
      return 1;
    }
    uint64_t v;
    (void)!::read(r.call.get(), &v, sizeof(v));
    interrupts++;
  }
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpu = backend_pid > 0 ? ProcessCpuSeconds(backend_pid) - cpu0 : -1;
  std::printf(
      "vhost-load rw=%s qd=%u bs=%u ios=%lu seconds=%.3f iops=%.0f mib_s=%.1f interrupts=%lu "
      "backend_cpu_s=%.2f backend_us_per_io=%.2f\n",
      rw.c_str(), qd, bs, static_cast<unsigned long>(ios), elapsed, ios / elapsed,
      ios * static_cast<double>(bs) / elapsed / (1 << 20),
      static_cast<unsigned long>(interrupts), cpu, cpu >= 0 ? cpu * 1e6 / ios : -1.0);
  if (failed > 0) {
    std::fprintf(stderr, "vhost-load: %lu requests failed\n", static_cast<unsigned long>(failed));
    return 1;
  }
  return 0;
}
