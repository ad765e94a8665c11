#include "blockdev/vhost/virtqueue.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace vdisk::blockdev::vhost {

namespace {

// Guest-shared 16-bit fields are accessed atomically so a racing driver cannot tear them.
uint16_t LoadAcquire(const uint16_t* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
uint16_t LoadRelaxed(const uint16_t* p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
void StoreRelease(uint16_t* p, uint16_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
void StoreRelaxed(uint16_t* p, uint16_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }

bool NeedEvent(uint16_t event_idx, uint16_t new_idx, uint16_t old_idx) {
  return static_cast<uint16_t>(new_idx - event_idx - 1) < static_cast<uint16_t>(new_idx - old_idx);
}

}  // namespace

StatusOr<SplitVirtqueue> SplitVirtqueue::Create(const GuestMemory& mem, const VringConfig& c) {
  if (c.num == 0 || c.num > kMaxQueueSize) {
    return absl::InvalidArgumentError(absl::StrCat("virtqueue size ", c.num));
  }
  if (c.desc_va % 16 != 0 || c.avail_va % 2 != 0 || c.used_va % 4 != 0) {
    return absl::InvalidArgumentError("virtqueue ring addresses are misaligned");
  }
  uint64_t desc_bytes = uint64_t{16} * c.num;
  uint64_t avail_bytes = 4 + uint64_t{2} * c.num + 2;
  uint64_t used_bytes = 4 + uint64_t{8} * c.num + 2;
  SplitVirtqueue q;
  q.desc_ = reinterpret_cast<const VringDesc*>(mem.VaToHost(c.desc_va, desc_bytes));
  q.avail_ = reinterpret_cast<uint16_t*>(mem.VaToHost(c.avail_va, avail_bytes));
  q.used_ = mem.VaToHost(c.used_va, used_bytes);
  if (q.desc_ == nullptr || q.avail_ == nullptr || q.used_ == nullptr) {
    return absl::InvalidArgumentError("virtqueue rings are not inside guest memory");
  }
  q.mem_ = &mem;
  q.num_ = c.num;
  q.event_idx_ = c.event_idx;
  q.indirect_ = c.indirect;
  q.last_avail_idx_ = c.last_avail_idx;
  // The used index continues from what the ring holds (it survives a back-end restart).
  q.used_idx_ = LoadAcquire(reinterpret_cast<uint16_t*>(q.used_ + 2));
  q.published_used_idx_ = q.used_idx_;
  if (c.inflight != nullptr) {
    ASSIGN_OR_RETURN(InflightLog log, InflightLog::Attach(c.inflight, c.inflight_entries, c.num, q.used_idx_));
    // Every head taken was either used (counted in the used index) or is still in flight.
    q.resubmit_ = log.in_flight();
    q.last_avail_idx_ = static_cast<uint16_t>(q.used_idx_ + q.resubmit_.size());
    q.log_ = std::move(log);
  }
  return q;
}

uint16_t SplitVirtqueue::LoadAvailIdx() const { return LoadAcquire(&avail_[1]); }

StatusOr<uint16_t> SplitVirtqueue::Available() {
  uint16_t n = static_cast<uint16_t>(LoadAvailIdx() - last_avail_idx_);
  if (n > num_) {
    return absl::FailedPreconditionError(
        absl::StrCat("virtqueue corrupt: avail index is ", n, " entries ahead of a ring of ", num_));
  }
  return n;
}

StatusOr<uint16_t> SplitVirtqueue::PopHead() {
  uint16_t head = LoadRelaxed(&avail_[2 + last_avail_idx_ % num_]);
  if (head >= num_) {
    return absl::FailedPreconditionError(
        absl::StrCat("virtqueue corrupt: head ", head, " out of range (ring of ", num_, ")"));
  }
  last_avail_idx_++;
  if (log_) log_->Taken(head);
  return head;
}

Status SplitVirtqueue::ReadChain(uint16_t head, const ChainLimits& limits,
                                 DescChain* chain) const {
  chain->Clear();
  chain->head = head;
  const VringDesc* table = desc_;
  uint32_t table_size = num_;
  bool in_indirect = false;
  uint32_t budget = num_;  // descriptors we may still visit (loop guard)
  uint16_t idx = head;
  for (;;) {
    if (budget == 0) return absl::InvalidArgumentError("descriptor chain loops or is too long");
    budget--;
    VringDesc d;
    std::memcpy(&d, &table[idx], sizeof(d));  // one read of guest memory per descriptor
    if (d.flags & kDescFIndirect) {
      if (!indirect_) return absl::InvalidArgumentError("indirect descriptor not negotiated");
      if (in_indirect) return absl::InvalidArgumentError("nested indirect descriptor table");
      if (d.flags & kDescFNext) return absl::InvalidArgumentError("indirect descriptor with NEXT");
      if (d.len == 0 || d.len % sizeof(VringDesc) != 0 ||
          d.len / sizeof(VringDesc) > kMaxQueueSize) {
        return absl::InvalidArgumentError(absl::StrCat("bad indirect table length ", d.len));
      }
      const uint8_t* t = mem_->GpaToHost(d.addr, d.len);
      if (t == nullptr || reinterpret_cast<uintptr_t>(t) % alignof(VringDesc) != 0) {
        return absl::InvalidArgumentError("indirect table outside guest memory");
      }
      table = reinterpret_cast<const VringDesc*>(t);
      table_size = d.len / sizeof(VringDesc);
      budget = table_size;
      in_indirect = true;
      idx = 0;
      continue;
    }
    if (d.len > 0) {
      bool writable = d.flags & kDescFWrite;
      if (!writable && !chain->writable.empty()) {
        return absl::InvalidArgumentError("readable descriptor after a writable one");
      }
      uint64_t total = chain->readable_bytes + chain->writable_bytes + d.len;
      if (total > limits.max_bytes) {
        return absl::InvalidArgumentError(
            absl::StrCat("request larger than ", limits.max_bytes, " bytes"));
      }
      std::vector<iovec>* out = writable ? &chain->writable : &chain->readable;
      size_t other = writable ? chain->readable.size() : chain->writable.size();
      if (other >= limits.max_iovs ||
          !mem_->GpaToIovecs(d.addr, d.len, out, limits.max_iovs - other)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "descriptor buffer [", d.addr, ", +", d.len, ") outside guest memory or too fragmented"));
      }
      (writable ? chain->writable_bytes : chain->readable_bytes) += d.len;
    }
    if (!(d.flags & kDescFNext)) return Status();
    if (d.next >= table_size) {
      return absl::InvalidArgumentError(absl::StrCat("descriptor next ", d.next, " out of range"));
    }
    idx = d.next;
  }
}

void SplitVirtqueue::AddUsed(uint16_t head, uint32_t written_len) {
  VringUsedElem e{head, written_len};
  std::memcpy(used_ + 4 + sizeof(VringUsedElem) * (used_idx_ % num_), &e, sizeof(e));
  used_idx_++;
  if (log_) log_->Used(head);
}

bool SplitVirtqueue::PublishUsed() {
  if (used_idx_ == published_used_idx_) return false;
  StoreRelease(reinterpret_cast<uint16_t*>(used_ + 2), used_idx_);
  published_used_idx_ = used_idx_;
  if (log_) log_->Published(used_idx_);
  // Order the index store before reading the driver's suppression state.
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  if (!event_idx_) return !(LoadRelaxed(&avail_[0]) & kAvailFNoInterrupt);
  uint16_t old_idx = signalled_used_;
  bool valid = signalled_used_valid_;
  signalled_used_ = used_idx_;
  signalled_used_valid_ = true;
  if (!valid) return true;
  uint16_t used_event = LoadRelaxed(&avail_[2 + num_]);
  return NeedEvent(used_event, used_idx_, old_idx);
}

void SplitVirtqueue::DisarmKick() {
  if (!event_idx_) StoreRelaxed(reinterpret_cast<uint16_t*>(used_), kUsedFNoNotify);
}

bool SplitVirtqueue::ArmKick() {
  if (event_idx_) {
    StoreRelaxed(reinterpret_cast<uint16_t*>(used_ + 4 + sizeof(VringUsedElem) * num_),
                 last_avail_idx_);
  } else {
    StoreRelaxed(reinterpret_cast<uint16_t*>(used_), 0);  // clear VRING_USED_F_NO_NOTIFY
  }
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  return LoadAvailIdx() != last_avail_idx_;
}

}  // namespace vdisk::blockdev::vhost
