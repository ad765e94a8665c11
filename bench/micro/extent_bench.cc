// Extent maps: normalizing / merging allocation lists and the FIEMAP reflink diff, at the sizes
// a fragmented multi-TiB volume produces (up to 1M extents).
#include <benchmark/benchmark.h>

#include <random>

#include "blockdev/extent.h"
#include "blockdev/uring/fiemap_diff.h"

namespace {

using vdisk::blockdev::Extent;
using vdisk::blockdev::ExtentList;
using vdisk::blockdev::uring::FileExtent;

ExtentList RandomExtents(size_t n, uint32_t seed) {
  std::mt19937_64 rng(seed);
  ExtentList out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) out.push_back({(rng() % (n * 64)) * 4096, (1 + rng() % 16) * 4096});
  return out;
}

void BM_Normalize(benchmark::State& state) {
  ExtentList in = RandomExtents(size_t(state.range(0)), 1);
  for (auto _ : state) benchmark::DoNotOptimize(vdisk::blockdev::Normalize(in));
  state.SetItemsProcessed(int64_t(state.iterations()) * state.range(0));
}
BENCHMARK(BM_Normalize)->Range(1 << 10, 1 << 20);

void BM_Union(benchmark::State& state) {
  ExtentList a = vdisk::blockdev::Normalize(RandomExtents(size_t(state.range(0)), 2));
  ExtentList b = vdisk::blockdev::Normalize(RandomExtents(size_t(state.range(0)), 3));
  for (auto _ : state) benchmark::DoNotOptimize(vdisk::blockdev::Union(a, b));
  state.SetItemsProcessed(int64_t(state.iterations()) * state.range(0) * 2);
}
BENCHMARK(BM_Union)->Range(1 << 10, 1 << 20);

// A snapshot and its volume after 10% of the extents were rewritten (COW to new blocks).
void BM_DiffExtentMaps(benchmark::State& state) {
  const size_t n = size_t(state.range(0));
  std::vector<FileExtent> base, target;
  std::mt19937_64 rng(4);
  uint64_t logical = 0;
  for (size_t i = 0; i < n; ++i) {
    uint64_t len = (1 + rng() % 16) * 4096;
    base.push_back({logical, 1000000000ull + logical, len, 0});
    target.push_back(rng() % 10 == 0 ? FileExtent{logical, 9000000000ull + logical, len, 0}
                                     : base.back());
    logical += len + (rng() % 4) * 4096;
  }
  for (auto _ : state)
    benchmark::DoNotOptimize(vdisk::blockdev::uring::DiffExtentMaps(base, target, logical));
  state.SetItemsProcessed(int64_t(state.iterations()) * int64_t(n));
}
BENCHMARK(BM_DiffExtentMaps)->Range(1 << 10, 1 << 20);

}  // namespace
