#include "blockdev/vhost/inflight.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace vdisk::blockdev::vhost {

namespace {

bool ValidQueueSize(uint16_t n) { return n > 0 && n <= kMaxQueueSize && (n & (n - 1)) == 0; }

template <typename T>
T Load(const T* p) {
  return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
template <typename T>
void Store(T* p, T v) {
  __atomic_store_n(p, v, __ATOMIC_RELEASE);
}

}  // namespace

StatusOr<UniqueFd> InflightArea::Create(uint16_t num_queues, uint16_t queue_size,
                                        InflightPayload* reply) {
  if (num_queues == 0 || !ValidQueueSize(queue_size)) {
    return absl::InvalidArgumentError(
        absl::StrCat("inflight area for ", num_queues, " queue(s) of ", queue_size, " entries"));
  }
  const uint64_t size = InflightQueueStride(queue_size) * num_queues;
  UniqueFd fd(::memfd_create("vdisk-vhost-inflight", MFD_CLOEXEC));
  if (!fd.valid()) return LastErrnoStatus("memfd_create (inflight area)");
  if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
    return LastErrnoStatus("ftruncate (inflight area)");
  }
  *reply = InflightPayload{size, 0, num_queues, queue_size, 0};
  return fd;
}

StatusOr<std::unique_ptr<InflightArea>> InflightArea::Map(const InflightPayload& p, UniqueFd fd) {
  if (p.num_queues == 0 || !ValidQueueSize(p.queue_size)) {
    return absl::InvalidArgumentError(absl::StrCat("SET_INFLIGHT_FD for ", p.num_queues,
                                                   " queue(s) of ", p.queue_size, " entries"));
  }
  const uint64_t need = InflightQueueStride(p.queue_size) * p.num_queues;
  uint64_t end;
  if (p.mmap_size < need || __builtin_add_overflow(p.mmap_offset, p.mmap_size, &end)) {
    return absl::InvalidArgumentError(absl::StrCat("SET_INFLIGHT_FD area of ", p.mmap_size,
                                                   " bytes; ", need, " needed"));
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return LastErrnoStatus("fstat (inflight area)");
  if (st.st_size < 0 || static_cast<uint64_t>(st.st_size) < end) {
    return absl::InvalidArgumentError(absl::StrCat("SET_INFLIGHT_FD area ends at ", end,
                                                   " past the end of its fd (", st.st_size, ")"));
  }
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  const uint64_t start = p.mmap_offset / page * page;
  std::unique_ptr<InflightArea> a(new InflightArea);
  a->map_size_ = end - start;
  void* m = ::mmap(nullptr, a->map_size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(),
                   static_cast<off_t>(start));
  if (m == MAP_FAILED) return LastErrnoStatus("mmap (inflight area)");
  a->map_base_ = m;
  a->area_ = static_cast<uint8_t*>(m) + (p.mmap_offset - start);
  a->num_queues_ = p.num_queues;
  a->queue_size_ = p.queue_size;
  return a;  // the mapping outlives the fd
}

InflightArea::~InflightArea() {
  if (map_base_ != nullptr) ::munmap(map_base_, map_size_);
}

InflightQueueHeader* InflightArea::queue(unsigned index) const {
  if (index >= num_queues_) return nullptr;
  return reinterpret_cast<InflightQueueHeader*>(area_ + InflightQueueStride(queue_size_) * index);
}

StatusOr<InflightLog> InflightLog::Attach(InflightQueueHeader* region, uint16_t entries, uint16_t num,
                                          uint16_t used_idx) {
  if (region == nullptr || num == 0 || num > entries) {
    return absl::InvalidArgumentError(absl::StrCat("inflight region of ", entries,
                                                   " entries for a ring of ", num));
  }
  InflightLog log;
  log.hdr_ = region;
  log.desc_ = reinterpret_cast<InflightDescSplit*>(region + 1);
  if (Load(&region->version) == 0) {
    // Fresh: nothing was ever in flight in it.
    std::memset(log.desc_, 0, sizeof(InflightDescSplit) * entries);
    region->features = 0;
    Store(&region->desc_num, entries);
    Store(&region->last_batch_head, uint16_t{0});
    Store(&region->used_idx, used_idx);
    Store(&region->version, kInflightVersion);
    return log;
  }
  if (Load(&region->version) != kInflightVersion || Load(&region->desc_num) < num) {
    return absl::InvalidArgumentError(absl::StrCat(
        "inflight region version ", Load(&region->version), " with ", Load(&region->desc_num),
        " entries for a ring of ", num));
  }
  // The back end died after publishing a used index but before clearing that batch: the
  // driver already has those completions, they are not in flight any more.
  const uint16_t logged_used = Load(&region->used_idx);
  const uint16_t unlogged = static_cast<uint16_t>(used_idx - logged_used);
  if (unlogged > num) {
    return absl::InvalidArgumentError(absl::StrCat("inflight region used index ", logged_used,
                                                   " is ", unlogged, " behind the ring's ", used_idx));
  }
  uint16_t h = Load(&region->last_batch_head);
  for (uint16_t i = 0; i < unlogged; i++) {
    if (h >= num) {
      return absl::InvalidArgumentError(absl::StrCat("inflight batch list reaches head ", h));
    }
    Store(&log.desc_[h].inflight, uint8_t{0});
    h = Load(&log.desc_[h].next);
  }
  Store(&region->used_idx, used_idx);

  std::vector<std::pair<uint64_t, uint16_t>> taken;  // (counter, head)
  for (uint16_t i = 0; i < num; i++) {
    if (Load(&log.desc_[i].inflight) != 0) taken.emplace_back(Load(&log.desc_[i].counter), i);
  }
  std::sort(taken.begin(), taken.end());
  for (const auto& [counter, head] : taken) log.resubmit_.push_back(head);
  log.counter_ = taken.empty() ? 0 : taken.back().first + 1;
  return log;
}

void InflightLog::Taken(uint16_t head) {
  Store(&desc_[head].counter, counter_++);
  Store(&desc_[head].inflight, uint8_t{1});
}

void InflightLog::Used(uint16_t head) {
  Store(&desc_[head].next, Load(&hdr_->last_batch_head));
  Store(&hdr_->last_batch_head, head);
  batch_.push_back(head);
}

void InflightLog::Published(uint16_t used_idx) {
  for (uint16_t head : batch_) Store(&desc_[head].inflight, uint8_t{0});
  batch_.clear();
  Store(&hdr_->used_idx, used_idx);
}

}  // namespace vdisk::blockdev::vhost
