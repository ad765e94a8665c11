// libFuzzer target: the split virtqueue walk (blockdev/vhost/virtqueue.h) against a hostile
// guest: the input is the guest's RAM (descriptor table, avail and used rings, indirect tables,
// buffers) plus the ring configuration and an inflight region left by an earlier back end.
// Every iovec handed out must lie inside guest RAM; the walk must end (no loops) within limits.
//
// Input: 8 bytes of header, then up to 16 KiB of guest RAM (guest-physical 0, zero-filled
// beyond the input), then the inflight region's bytes.
//   [0] ring size 2^(b % 9)   [1] bit0 EVENT_IDX, bit1 INDIRECT_DESC, bit2 inflight tracking
//   [2..3] last_avail_idx (SET_VRING_BASE)   [4..5] inflight entries
#include <sys/uio.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "blockdev/vhost/guest_memory.h"
#include "blockdev/vhost/test_guest.h"
#include "blockdev/vhost/virtqueue.h"

using namespace vdisk::blockdev::vhost;

namespace {

constexpr uint64_t kRam = 16 << 10;

void CheckInside(const std::vector<iovec>& iovs, const uint8_t* base) {
  for (const iovec& v : iovs) {
    const auto* p = static_cast<const uint8_t*>(v.iov_base);
    if (p < base || v.iov_len > kRam || p + v.iov_len > base + kRam) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 8) return 0;
  static testing::FakeGuestRam* ram = new testing::FakeGuestRam(kRam);
  static std::unique_ptr<GuestMemory> mem = [] {
    std::vector<UniqueFd> fds;
    fds.emplace_back(::dup(ram->fd()));
    MemRegion r = ram->region();
    return std::move(GuestMemory::Map({&r, 1}, std::move(fds))).value();
  }();
  const uint16_t num = static_cast<uint16_t>(1u << (data[0] % 9));
  const uint8_t flags = data[1];
  uint16_t last_avail, entries;
  std::memcpy(&last_avail, data + 2, 2);
  std::memcpy(&entries, data + 4, 2);
  data += 8, size -= 8;

  std::memset(ram->at(0), 0, kRam);
  const size_t in_ram = std::min<size_t>(size, kRam);
  std::memcpy(ram->at(0), data, in_ram);
  data += in_ram, size -= in_ram;

  // The rings as a driver lays them out (virtio 2.7: desc 16-aligned, avail 2, used 4).
  const uint64_t desc = 0, avail = desc + 16ull * num, used = (avail + 6 + 2ull * num + 3) & ~3ull;
  VringConfig cfg;
  cfg.num = num;
  cfg.desc_va = ram->va_of(desc);
  cfg.avail_va = ram->va_of(avail);
  cfg.used_va = ram->va_of(used);
  cfg.last_avail_idx = last_avail;
  cfg.event_idx = flags & 1;
  cfg.indirect = flags & 2;
  std::vector<uint64_t> inflight;  // 8-byte aligned, like the mmap'd area
  if (flags & 4) {
    entries = static_cast<uint16_t>(entries % 1024);
    inflight.assign(InflightQueueStride(entries) / 8, 0);
    std::memcpy(inflight.data(), data, std::min<size_t>(size, inflight.size() * 8));
    cfg.inflight = reinterpret_cast<InflightQueueHeader*>(inflight.data());
    cfg.inflight_entries = entries;
  }

  auto q = SplitVirtqueue::Create(*mem, cfg);
  if (!q.ok()) return 0;
  ChainLimits limits;
  limits.max_iovs = 64;
  limits.max_bytes = 1 << 20;
  DescChain chain;
  auto serve = [&](uint16_t head) {
    chain.Clear();
    if (!q->ReadChain(head, limits, &chain).ok()) return;
    // The back end's own mapping of the guest RAM (not the harness's).
    const uint8_t* base = mem->GpaToHost(0, kRam);
    CheckInside(chain.readable, base);
    CheckInside(chain.writable, base);
    if (chain.readable.size() + chain.writable.size() > limits.max_iovs) __builtin_trap();
    uint8_t sum = 0;
    for (const iovec& v : chain.readable)
      for (size_t i = 0; i < v.iov_len; ++i) sum += static_cast<const uint8_t*>(v.iov_base)[i];
    for (const iovec& v : chain.writable) std::memset(v.iov_base, sum, v.iov_len);
    q->AddUsed(head, static_cast<uint32_t>(chain.writable_bytes));
  };
  for (uint16_t head : q->TakeResubmit()) serve(head);
  for (int round = 0; round < 4; ++round) {
    auto n = q->Available();
    if (!n.ok() || *n == 0) break;
    for (uint16_t i = 0; i < *n; ++i) {
      auto head = q->PopHead();
      if (!head.ok()) return 0;
      serve(*head);
    }
    (void)q->PublishUsed();
    if (!q->ArmKick()) q->DisarmKick();
  }
  return 0;
}
