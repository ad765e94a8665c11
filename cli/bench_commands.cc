// `vdisk bench io`: an engine-level I/O benchmark over any device URI (file:, block device,
// rbd:, ...), driven by bench/suites/*.sh next to fio. One thread, one IoQueue at --qd: every
// completion immediately queues the next I/O (like fio's io_uring engine with
// iodepth_batch_complete_min=1), one submit+wait syscall per loop. Prints one result (JSON with
// --json): IOPS, bandwidth, mean / p50 / p99 completion latency, CPU time (user + system) per I/O.
//
// I/O buffers come from 2 MiB-aligned transparent huge pages (MADV_HUGEPAGE) unless
// --no-hugepages: with 4 KiB pages a 1 MiB O_DIRECT request is as many physical segments as the
// allocator happened to scatter its pages over, which on a virtio-blk disk without indirect
// descriptors decides how many requests fit in the ring at once (see docs/dataplane.md). The
// benchmark should measure the engine, not that luck; bench/suites/io.sh gives fio the same.
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "blockdev/aligned_buffer.h"
#include "blockdev/registry.h"
#include "cli/commands.h"

namespace vdisk::cli {

namespace {

[[noreturn]] void Fail(const std::string& msg, int code = 1) {
  std::cerr << "vdisk bench: " << msg << "\n";
  throw CLI::RuntimeError(code);
}

uint64_t ParseBytes(const std::string& s) {
  size_t pos = 0;
  double v = 0;
  try {
    v = std::stod(s, &pos);
  } catch (...) {
    Fail("bad size '" + s + "'", 2);
  }
  const std::string u = s.substr(pos);
  double m = 1;
  if (u == "k" || u == "K") m = 1 << 10;
  else if (u == "m" || u == "M") m = 1 << 20;
  else if (u == "g" || u == "G") m = double(1ull << 30);
  else if (!u.empty()) Fail("bad size unit in '" + s + "'", 2);
  return static_cast<uint64_t>(v * m);
}

// User + system CPU time of this process so far, in ns (the engine's cost per I/O).
uint64_t CpuNs() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  auto ns = [](const timeval& tv) { return uint64_t(tv.tv_sec) * 1000000000ull + uint64_t(tv.tv_usec) * 1000; };
  return ns(ru.ru_utime) + ns(ru.ru_stime);
}

inline uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

// Log-linear latency histogram (~1.5% resolution), no allocation while recording.
class Histogram {
 public:
  void Add(uint64_t ns) {
    ++count_;
    sum_ += ns;
    counts_[Bucket(ns)]++;
  }
  double MeanUs() const { return count_ ? double(sum_) / double(count_) / 1000 : 0; }
  double PercentileUs(double p) const {
    uint64_t want = static_cast<uint64_t>(std::ceil(p / 100 * double(count_)));
    uint64_t seen = 0;
    for (size_t b = 0; b < counts_.size(); ++b) {
      seen += counts_[b];
      if (seen >= want && counts_[b]) return double(Lower(b)) / 1000;
    }
    return 0;
  }

 private:
  static constexpr int kSub = 64;  // buckets per power of two
  static size_t Bucket(uint64_t ns) {
    if (ns < kSub) return ns;
    int msb = 63 - __builtin_clzll(ns);
    int shift = msb - 6;
    return size_t((shift + 1) * kSub + ((ns >> shift) - kSub));
  }
  static uint64_t Lower(size_t b) {
    if (b < kSub) return b;
    int shift = int(b / kSub) - 1;
    return (uint64_t(b % kSub) + kSub) << shift;
  }
  std::vector<uint64_t> counts_ = std::vector<uint64_t>(64 * 64, 0);
  uint64_t count_ = 0, sum_ = 0;
};

struct IoBenchFlags {
  std::string uri, rw = "randread", bs = "4k", size = "0", offset = "0";
  unsigned qd = 1;
  double runtime = 10, ramp = 0;
  bool json = false, no_register = false, no_hugepages = false;
};

// AnonHugePages of this process in KiB (0 if unknown): whether THP really backs the buffers.
uint64_t AnonHugeKib() {
  FILE* f = std::fopen("/proc/self/smaps_rollup", "r");
  if (!f) return 0;
  char line[256];
  unsigned long long kib = 0;
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "AnonHugePages: %llu kB", &kib) == 1) break;
  std::fclose(f);
  return kib;
}

// Anonymous memory for the I/O buffers, 2 MiB aligned and advised MADV_HUGEPAGE (so a
// registered region coalesces into huge-page segments), zero-filled. Falls back to 4 KiB pages
// when THP is off or the advice is refused (the JSON reports AnonHugePages as "hugepages_kib").
class BenchBuffers {
 public:
  static constexpr size_t kHuge = 2u << 20;
  BenchBuffers(size_t size, bool huge) : size_(size) {
    if (huge) {
      mapped_ = (size + kHuge - 1) / kHuge * kHuge + kHuge;
      void* p = ::mmap(nullptr, mapped_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p != MAP_FAILED) {
        map_ = static_cast<std::byte*>(p);
        auto aligned = (reinterpret_cast<uintptr_t>(p) + kHuge - 1) / kHuge * kHuge;
        data_ = reinterpret_cast<std::byte*>(aligned);
        huge_ = ::madvise(data_, mapped_ - kHuge, MADV_HUGEPAGE) == 0;
        return;
      }
      mapped_ = 0;
    }
    fallback_ = blockdev::AlignedBuffer(size, 4096);
    data_ = fallback_.data();
  }
  ~BenchBuffers() {
    if (map_) ::munmap(map_, mapped_);
  }
  BenchBuffers(const BenchBuffers&) = delete;
  BenchBuffers& operator=(const BenchBuffers&) = delete;
  std::byte* data() { return data_; }
  size_t size() const { return size_; }
  // The region to register: whole huge pages when huge (the kernel coalesces only regions made
  // of complete folios of one size).
  size_t register_size() const { return map_ ? mapped_ - kHuge : size_; }
  bool huge_advised() const { return huge_; }

 private:
  size_t size_, mapped_ = 0;
  std::byte* map_ = nullptr;
  std::byte* data_ = nullptr;
  bool huge_ = false;
  blockdev::AlignedBuffer fallback_;
};

class IoBench {
 public:
  IoBench(blockdev::IoQueue& q, const IoBenchFlags& f, uint64_t bs, uint64_t base, uint64_t span)
      : q_(q), bs_(bs), base_(base), blocks_(span / bs), random_(f.rw.starts_with("rand")),
        write_(f.rw.ends_with("write")), slots_(f.qd) {}

  void Start(std::byte* buffers) {
    for (size_t i = 0; i < slots_.size(); ++i) {
      slots_[i].iov = {buffers + i * bs_, bs_};
      Issue(static_cast<uint32_t>(i));
    }
  }
  void Issue(uint32_t i) {
    Slot& s = slots_[i];
    uint64_t block;
    if (random_) {
      rng_ ^= rng_ << 13;
      rng_ ^= rng_ >> 7;
      rng_ ^= rng_ << 17;
      block = rng_ % blocks_;
    } else {
      block = next_block_;
      if (++next_block_ == blocks_) next_block_ = 0;
    }
    s.start_ns = NowNs();
    auto done = [this, i](Status st) { Complete(i, std::move(st)); };
    if (write_) q_.writev(base_ + block * bs_, &s.iov, 1, std::move(done));
    else q_.readv(base_ + block * bs_, &s.iov, 1, std::move(done));
  }
  void Complete(uint32_t i, Status st) {
    if (!st.ok()) {
      if (error_.ok()) error_ = std::move(st);
      return;
    }
    const uint64_t now = NowNs();
    if (measuring_) {
      hist_.Add(now - slots_[i].start_ns);
      ++ops_;
    }
    if (!stopping_) Issue(i);
  }

  bool measuring_ = false, stopping_ = false;
  uint64_t ops_ = 0;
  Histogram hist_;
  Status error_;

 private:
  struct Slot {
    iovec iov{};
    uint64_t start_ns = 0;
  };
  blockdev::IoQueue& q_;
  uint64_t bs_, base_, blocks_;
  bool random_, write_;
  std::vector<Slot> slots_;
  uint64_t next_block_ = 0;
  uint64_t rng_ = 0x9E3779B97F4A7C15ull;
};

void RunIoBench(const IoBenchFlags& f) {
  static const char* kModes[] = {"randread", "randwrite", "read", "write"};
  if (std::find(std::begin(kModes), std::end(kModes), f.rw) == std::end(kModes))
    Fail("--rw must be randread, randwrite, read or write", 2);
  if (f.qd == 0 || f.qd > 4096) Fail("--qd must be 1..4096", 2);
  const bool write = f.rw.ends_with("write");
  blockdev::RegisterBuiltinBackends();
  auto dev = blockdev::OpenDeviceUri(f.uri, /*read_only=*/!write);
  if (!dev.ok()) Fail(std::string(dev.status().message()));
  const uint64_t bs = ParseBytes(f.bs);
  if (bs == 0 || bs % (*dev)->block_size() != 0)
    Fail(absl::StrCat("--bs must be a multiple of the device block size ", (*dev)->block_size()), 2);
  const uint64_t base = ParseBytes(f.offset);
  uint64_t span = ParseBytes(f.size);
  if (base >= (*dev)->size()) Fail("--offset beyond the device", 2);
  if (span == 0 || span > (*dev)->size() - base) span = (*dev)->size() - base;
  span -= span % bs;
  if (span < bs) Fail("--size smaller than one block", 2);

  auto q = (*dev)->open_queue(f.qd);
  if (!q.ok()) Fail(std::string(q.status().message()));
  if ((*dev)->buffer_alignment() > 4096) Fail("device buffer alignment above 4096 is not supported");
  BenchBuffers buffers(size_t(f.qd) * bs, !f.no_hugepages);
  std::mt19937_64 rng(42);
  for (size_t i = 0; i + 8 <= buffers.register_size(); i += 8) {  // also faults every page in
    uint64_t v = rng();
    std::memcpy(buffers.data() + i, &v, 8);
  }
  if (!f.no_register) {
    iovec region{buffers.data(), buffers.register_size()};
    Status s = (*q)->register_buffers(&region, 1);
    if (!s.ok()) std::cerr << "vdisk bench: registered buffers unavailable: " << s << "\n";
  }
  const uint64_t huge_kib = AnonHugeKib();
  if (!f.no_hugepages && huge_kib == 0)
    std::cerr << "vdisk bench: I/O buffers are not on huge pages (THP off?)\n";
  IoBench b(**q, f, bs, base, span);
  b.Start(buffers.data());
  const uint64_t t0 = NowNs();
  const uint64_t ramp_end = t0 + uint64_t(f.ramp * 1e9);
  const uint64_t end = ramp_end + uint64_t(f.runtime * 1e9);
  uint64_t measure_start = t0;
  uint64_t cpu_start = CpuNs();
  b.measuring_ = f.ramp <= 0;
  while (true) {
    auto n = (*q)->poll(1, -1);
    if (!n.ok()) Fail(std::string(n.status().message()));
    if (!b.error_.ok()) Fail(std::string(b.error_.message()));
    const uint64_t now = NowNs();
    if (!b.measuring_ && now >= ramp_end) {
      b.measuring_ = true;
      measure_start = now;
      cpu_start = CpuNs();
    }
    if (now >= end) break;
  }
  const uint64_t measured_ns = NowNs() - measure_start;
  const double cpu_us_per_io = b.ops_ ? double(CpuNs() - cpu_start) / 1000 / double(b.ops_) : 0;
  b.stopping_ = true;
  Status drained = (*q)->drain();
  if (!drained.ok()) Fail(std::string(drained.message()));
  const double secs = double(measured_ns) / 1e9;
  const double iops = double(b.ops_) / secs;
  const double bw = iops * double(bs);
  if (f.json) {
    nlohmann::json j = {{"device", (*dev)->describe()}, {"rw", f.rw}, {"bs", bs},
                        {"qd", f.qd}, {"runtime_s", secs}, {"ops", b.ops_},
                        {"hugepages_kib", huge_kib},
                        {"iops", iops}, {"bw_bytes_per_s", bw}, {"bw_mib_s", bw / (1 << 20)},
                        {"lat_mean_us", b.hist_.MeanUs()}, {"lat_p50_us", b.hist_.PercentileUs(50)},
                        {"lat_p99_us", b.hist_.PercentileUs(99)},
                        {"cpu_us_per_io", cpu_us_per_io}};
    std::cout << j.dump() << std::endl;
  } else {
    std::printf("%s %s bs=%llu qd=%u: %.0f IOPS, %.1f MiB/s, lat mean %.1f us p50 %.1f us p99 %.1f us, "
                "%.2f us CPU/IO (%.1f s)\n",
                (*dev)->describe().c_str(), f.rw.c_str(), (unsigned long long)bs, f.qd, iops,
                bw / (1 << 20), b.hist_.MeanUs(), b.hist_.PercentileUs(50),
                b.hist_.PercentileUs(99), cpu_us_per_io, secs);
  }
}

}  // namespace

void AddBenchCommands(CLI::App& app) {
  auto* bench = app.add_subcommand("bench", "Engine-level benchmark drivers (used by bench/run.sh)");
  bench->require_subcommand(1);
  auto* io = bench->add_subcommand("io", "Random/sequential I/O on any device URI at a queue depth");
  static IoBenchFlags f;
  io->add_option("--uri", f.uri, "Device URI or path (file:, /dev/loopN, rbd:, ...)")->required();
  io->add_option("--rw", f.rw, "randread|randwrite|read|write")->capture_default_str();
  io->add_option("--bs", f.bs, "Block size per I/O (e.g. 4k, 1M)")->capture_default_str();
  io->add_option("--qd", f.qd, "Queue depth (I/Os in flight)")->capture_default_str();
  io->add_option("--runtime", f.runtime, "Seconds to measure")->capture_default_str();
  io->add_option("--ramp", f.ramp, "Seconds to run before measuring")->capture_default_str();
  io->add_option("--size", f.size, "Bytes of the device to use from --offset (0 = all)")
      ->capture_default_str();
  io->add_option("--offset", f.offset, "Start of the region")->capture_default_str();
  io->add_flag("--no-register-buffers", f.no_register, "Do not register buffers with the engine");
  io->add_flag("--no-hugepages", f.no_hugepages,
               "I/O buffers on 4 KiB pages instead of transparent huge pages");
  io->add_flag("--json", f.json, "One JSON object on stdout");
  io->callback([] { RunIoBench(f); });
}

}  // namespace vdisk::cli
