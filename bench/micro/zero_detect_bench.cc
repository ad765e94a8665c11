// Zero detection: the copy engine's per-4-KiB check (IsAllZero, AVX2) against the portable word
// loop, a byte loop, and the memcmp-against-itself trick; on all-zero blocks (worst case, full
// scan) and on data whose first non-zero byte is at the start or the end.
#include <benchmark/benchmark.h>

#include <cstring>
#include <vector>

#include "blockdev/aligned_buffer.h"
#include "blockdev/zero_detect.h"

namespace {

using vdisk::blockdev::AlignedBuffer;

bool ByteLoop(const unsigned char* p, size_t n) {
  unsigned char acc = 0;
  for (size_t i = 0; i < n; ++i) acc |= p[i];
  return acc == 0;
}

bool MemcmpTrick(const unsigned char* p, size_t n) {
  return n < 16 ? ByteLoop(p, n) : ByteLoop(p, 16) && std::memcmp(p, p + 16, n - 16) == 0;
}

enum Where { kAllZero = 0, kFirstByte = 1, kLastByte = 2 };

template <typename F>
void Run(benchmark::State& state, F check) {
  const size_t n = static_cast<size_t>(state.range(0));
  AlignedBuffer buf(n);
  if (state.range(1) == kFirstByte) buf.data()[0] = std::byte{1};
  if (state.range(1) == kLastByte) buf.data()[n - 1] = std::byte{1};
  for (auto _ : state) {
    benchmark::DoNotOptimize(buf.data());
    bool z = check(reinterpret_cast<const unsigned char*>(buf.data()), n);
    benchmark::DoNotOptimize(z);
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(n));
}

void BM_IsAllZero(benchmark::State& s) {
  Run(s, [](const unsigned char* p, size_t n) { return vdisk::blockdev::IsAllZero(p, n); });
}
void BM_Scalar(benchmark::State& s) {
  Run(s, [](const unsigned char* p, size_t n) { return vdisk::blockdev::IsAllZeroScalar(p, n); });
}
void BM_ByteLoop(benchmark::State& s) { Run(s, ByteLoop); }
void BM_MemcmpTrick(benchmark::State& s) { Run(s, MemcmpTrick); }

#define ARGS ->Args({4096, kAllZero})->Args({4096, kFirstByte})->Args({4096, kLastByte}) \
             ->Args({1 << 20, kAllZero})
BENCHMARK(BM_IsAllZero) ARGS;
BENCHMARK(BM_Scalar) ARGS;
BENCHMARK(BM_ByteLoop) ARGS;
BENCHMARK(BM_MemcmpTrick) ARGS;

}  // namespace
