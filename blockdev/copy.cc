#include "blockdev/copy.h"

#include <openssl/sha.h>
#include <poll.h>
#include <sys/mman.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <type_traits>
#include <cstring>
#include <filesystem>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "blockdev/aligned_buffer.h"
#include "blockdev/zero_detect.h"
#include "common/fs.h"

// The checkpoint stores the raw SHA256_CTX so a resumed copy continues the same digest; the
// low-level SHA-256 API is deprecated in OpenSSL 3 but is the only one with a copyable state.
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace vdisk::blockdev {

namespace {

using Clock = std::chrono::steady_clock;

constexpr uint64_t kReadThroughGap = 64 * 1024;  // holes smaller than this inside a chunk are read
constexpr uint64_t kMaxHoleUnit = 1ull << 30;    // progress / checkpoint granularity over holes
constexpr uint64_t kMaxDiscard = 1ull << 30;
constexpr size_t kZeroBytes = 1 << 20;
constexpr const char* kCheckpointMagic = "vdisk-copy-checkpoint 1";

static_assert(std::is_trivially_copyable_v<SHA256_CTX>);

bool IsPowerOfTwo(uint64_t v) { return v && !(v & (v - 1)); }

// Pieces of the normalized list `list` inside [offset, offset + length).
void Intersect(const ExtentList& list, uint64_t offset, uint64_t length, ExtentList* out) {
  const uint64_t end = offset + length;
  auto it = std::upper_bound(list.begin(), list.end(), offset,
                             [](uint64_t off, const Extent& e) { return off < e.end(); });
  for (; it != list.end() && it->offset < end; ++it) {
    uint64_t s = std::max(it->offset, offset), t = std::min(it->end(), end);
    if (s < t) out->push_back({s, t - s});
  }
}

struct Checkpoint {
  std::string src, dst;
  uint64_t size = 0;
  bool checksum = false;
  uint64_t done = 0, bytes_read = 0, bytes_written = 0, bytes_zero = 0, bytes_discarded = 0;
  std::string sha_state;  // raw SHA256_CTX
};

std::string Serialize(const Checkpoint& c) {
  return absl::StrCat(kCheckpointMagic, "\nsrc=", c.src, "\ndst=", c.dst, "\nsize=", c.size,
                      "\nchecksum=", c.checksum ? 1 : 0, "\ndone=", c.done,
                      "\nbytes_read=", c.bytes_read, "\nbytes_written=", c.bytes_written,
                      "\nbytes_zero=", c.bytes_zero, "\nbytes_discarded=", c.bytes_discarded,
                      "\nsha_state=", absl::BytesToHexString(c.sha_state), "\n");
}

StatusOr<Checkpoint> Parse(const std::string& text, const std::string& path) {
  std::vector<std::string> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
  auto bad = [&](const std::string& why) {
    return absl::DataLossError(absl::StrCat("copy checkpoint ", path, " is unreadable: ", why));
  };
  if (lines.empty() || lines[0] != kCheckpointMagic) return bad("bad header");
  Checkpoint c;
  for (size_t i = 1; i < lines.size(); ++i) {
    auto eq = lines[i].find('=');
    if (eq == std::string::npos) return bad(absl::StrCat("line '", lines[i], "'"));
    std::string k = lines[i].substr(0, eq), v = lines[i].substr(eq + 1);
    uint64_t n = 0;
    auto num = [&](uint64_t* dst) { return absl::SimpleAtoi(v, dst); };
    if (k == "src") c.src = v;
    else if (k == "dst") c.dst = v;
    else if (k == "sha_state") c.sha_state = absl::HexStringToBytes(v);
    else if (k == "checksum" && num(&n)) c.checksum = n != 0;
    else if (k == "size" && num(&c.size)) {}
    else if (k == "done" && num(&c.done)) {}
    else if (k == "bytes_read" && num(&c.bytes_read)) {}
    else if (k == "bytes_written" && num(&c.bytes_written)) {}
    else if (k == "bytes_zero" && num(&c.bytes_zero)) {}
    else if (k == "bytes_discarded" && num(&c.bytes_discarded)) {}
    else return bad(absl::StrCat("line '", lines[i], "'"));
  }
  return c;
}

// The chunk buffers: anonymous memory on 2 MiB boundaries, asked to be transparent huge pages
// and populated by the kernel in one call. (Zero-filling a heap buffer page by page from user
// space costs ~15 us per 4 KiB fault in a VM: ~140 ms for the default 32 MiB, before any I/O.)
class PoolMemory {
 public:
  PoolMemory() = default;
  explicit PoolMemory(size_t size) {
    constexpr size_t kHuge = 2 << 20;
    size_ = (size + kHuge - 1) / kHuge * kHuge;
    map_size_ = size_ + kHuge;
    void* p = ::mmap(nullptr, map_size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    map_ = static_cast<std::byte*>(p);
    data_ = map_ + (kHuge - reinterpret_cast<uintptr_t>(map_) % kHuge) % kHuge;
    (void)::madvise(data_, size_, MADV_HUGEPAGE);
#ifdef MADV_POPULATE_WRITE
    (void)::madvise(data_, size_, MADV_POPULATE_WRITE);  // 5.14+; else faulted in on first use
#endif
  }
  ~PoolMemory() {
    if (map_) ::munmap(map_, map_size_);
  }
  PoolMemory& operator=(PoolMemory&& o) noexcept {
    std::swap(map_, o.map_);
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    std::swap(map_size_, o.map_size_);
    return *this;
  }
  PoolMemory(const PoolMemory&) = delete;
  std::byte* data() { return data_; }
  size_t size() const { return size_; }

 private:
  std::byte* map_ = nullptr;
  std::byte* data_ = nullptr;
  size_t size_ = 0, map_size_ = 0;
};

// One piece of the source address space in flight: a chunk with data (read into a buffer,
// zero-scanned, written) or a hole (at most discards on the destination).
struct Unit {
  uint64_t offset = 0, length = 0;
  int buffer = -1;  // >= 0 for data units
  ExtentList reads, writes, discards;
  std::vector<struct iovec> iovs;  // reads then writes; capacity reserved once, never moves
  size_t next_read = 0, next_write = 0, next_discard = 0;
  unsigned src_pending = 0, dst_pending = 0;
  bool scanned = false;
};

class Copier {
 public:
  Copier(Device& src, Device& dst, const CopyOptions& o) : src_(src), dst_(dst), o_(o) {}
  ~Copier() {
    // A failed run may leave a checkpoint flush in flight: its callback starts the writer.
    while (dq_ && dq_->in_flight() > 0)
      if (!dq_->poll(1, -1).ok()) break;
    if (writer_.joinable()) writer_.join();
  }
  StatusOr<CopyResult> Run();

 private:
  Status Setup();
  Status LoadCheckpoint();
  bool MakeUnit();
  void Issue();
  void ScanUnit(Unit& u);
  void Retire();
  Status Wait();
  void MaybeCheckpoint(bool force);
  void ReapCheckpoint(bool wait);
  void WriteCheckpoint(uint64_t done, const std::string& sha_state, uint64_t r, uint64_t w,
                       uint64_t z, uint64_t d);
  void Report(bool final);
  void Fail(Status s) {
    if (error_.ok()) error_ = std::move(s);
  }
  bool Stopping() const {
    return !error_.ok() || (o_.cancel && o_.cancel->load(std::memory_order_relaxed));
  }
  Unit& At(size_t i) { return units_[(head_ + i) % units_.size()]; }

  Device& src_;
  Device& dst_;
  const CopyOptions& o_;
  uint64_t size_ = 0, chunk_ = 0, granule_ = 0;
  std::unique_ptr<IoQueue> sq_, dq_;
  unsigned src_depth_ = 0, dst_depth_ = 0;
  ExtentList src_alloc_, dst_alloc_;
  size_t alloc_index_ = 0;
  uint64_t pos_ = 0;   // next byte not yet assigned to a unit
  uint64_t done_ = 0;  // every byte below has been written (watermark)
  uint64_t start_done_ = 0;
  std::vector<Unit> units_;
  size_t head_ = 0, count_ = 0;
  PoolMemory buffers_;
  std::vector<int> free_buffers_;
  AlignedBuffer zeroes_;
  SHA256_CTX sha_{};
  CopyResult result_;
  Status error_;
  Clock::time_point start_, last_report_, last_checkpoint_time_;
  uint64_t last_checkpoint_done_ = 0;
  uint64_t last_checkpoint_read_ = 0;  // result_.bytes_read at the last checkpoint
  // A checkpoint is pending from its destination flush until its file is durable; the file is
  // written (fsync, rename, fsync of the directory) on a helper thread so the copy goes on.
  bool flush_pending_ = false;
  std::thread writer_;
  std::atomic<bool> writer_done_{false};
  Status writer_status_;
  uint64_t writer_done_offset_ = 0, writer_read_ = 0;
};

Status Copier::Setup() {
  size_ = src_.size();
  if (dst_.read_only())
    return absl::PermissionDeniedError(
        absl::StrCat("copy: destination ", dst_.describe(), " is read-only"));
  if (dst_.size() < size_)
    return absl::OutOfRangeError(absl::StrCat("copy: destination ", dst_.describe(), " (",
                                              dst_.size(), " bytes) is smaller than the source ",
                                              src_.describe(), " (", size_, " bytes)"));
  const uint64_t block = std::max(src_.block_size(), dst_.block_size());
  granule_ = std::max<uint64_t>(o_.zero_granularity, block);
  if (!IsPowerOfTwo(granule_) || !IsPowerOfTwo(block))
    return absl::InvalidArgumentError(
        absl::StrCat("copy: zero_granularity and block sizes must be powers of two (",
                     o_.zero_granularity, ", ", block, ")"));
  if (size_ % src_.block_size() != 0 || size_ % dst_.block_size() != 0) {
    // Only a destination of exactly the same size may take an unaligned tail.
    if (dst_.size() != size_ || size_ % std::min(src_.block_size(), dst_.block_size()) != 0)
      return absl::InvalidArgumentError(absl::StrCat(
          "copy: source size ", size_, " is not a multiple of the block sizes (",
          src_.block_size(), ", ", dst_.block_size(), ")"));
  }
  if (o_.queue_depth == 0 || o_.queue_depth > 1024 || o_.chunk_bytes == 0)
    return absl::InvalidArgumentError("copy: queue_depth must be 1..1024, chunk_bytes > 0");
  chunk_ = std::max<uint64_t>(granule_, (o_.chunk_bytes + granule_ - 1) / granule_ * granule_);

  // A source that can only map its allocation by reading (NFSv3) is read once, here, with
  // zero detection, rather than twice.
  ExtentList alloc = {{0, size_}};
  if (!src_.allocation_requires_read()) {
    ASSIGN_OR_RETURN(alloc, src_.allocated(0, size_));
  }
  src_alloc_ = Clip(AlignOut(alloc, granule_), 0, size_);
  if (o_.discard_holes) {
    ASSIGN_OR_RETURN(ExtentList dalloc, dst_.allocated(0, size_));
    dst_alloc_ = Clip(AlignOut(dalloc, granule_), 0, size_);
  }

  const unsigned qd = o_.queue_depth;
  src_depth_ = std::min(4096u, 2 * qd);
  dst_depth_ = std::min(4096u, 2 * qd + 2);
  ASSIGN_OR_RETURN(sq_, src_.open_queue(src_depth_));
  ASSIGN_OR_RETURN(dq_, dst_.open_queue(dst_depth_));

  const size_t align = std::max<size_t>({4096, src_.buffer_alignment(), dst_.buffer_alignment()});
  if (align > (2u << 20))
    return absl::InvalidArgumentError(absl::StrCat("copy: buffer alignment ", align, " > 2 MiB"));
  buffers_ = PoolMemory(static_cast<size_t>(qd) * chunk_);
  for (int i = static_cast<int>(qd) - 1; i >= 0; --i) free_buffers_.push_back(i);
  // Fixed buffers on both rings (one region: the whole pool). Optional: ignore failure.
  iovec region{buffers_.data(), buffers_.size()};
  (void)sq_->register_buffers(&region, 1);
  (void)dq_->register_buffers(&region, 1);

  units_.resize(2 * qd + 2);
  const size_t max_ops = chunk_ / granule_ + 2;
  for (Unit& u : units_) {
    u.reads.reserve(max_ops);
    u.writes.reserve(max_ops);
    u.discards.reserve(max_ops);
    u.iovs.reserve(max_ops);
  }
  if (o_.checksum) {
    SHA256_Init(&sha_);
    zeroes_ = AlignedBuffer(kZeroBytes);
  }
  return Status();
}

Status Copier::LoadCheckpoint() {
  if (o_.checkpoint_path.empty()) return Status();
  auto text = fs::ReadFile(o_.checkpoint_path);
  if (!text.ok()) {
    if (absl::IsNotFound(text.status())) return Status();
    return text.status();
  }
  ASSIGN_OR_RETURN(Checkpoint c, Parse(*text, o_.checkpoint_path));
  if (c.src != src_.describe() || c.dst != dst_.describe() || c.size != size_ ||
      c.checksum != o_.checksum || c.done > size_ ||
      (c.checksum && c.sha_state.size() != sizeof(SHA256_CTX)))
    return absl::FailedPreconditionError(absl::StrCat(
        "copy checkpoint ", o_.checkpoint_path, " belongs to another copy (", c.src, " -> ",
        c.dst, ", ", c.size, " bytes, checksum=", c.checksum, "); remove it to start over"));
  pos_ = done_ = start_done_ = last_checkpoint_done_ = c.done;
  result_.bytes_read = c.bytes_read;
  result_.bytes_written = c.bytes_written;
  result_.bytes_zero = c.bytes_zero;
  result_.bytes_discarded = c.bytes_discarded;
  result_.resumed = true;
  result_.resumed_from = c.done;
  if (c.checksum) std::memcpy(&sha_, c.sha_state.data(), sizeof sha_);
  return Status();
}

// Appends the next unit at pos_ if there is room (and a buffer for a data unit).
bool Copier::MakeUnit() {
  if (pos_ >= size_ || count_ == units_.size()) return false;
  while (alloc_index_ < src_alloc_.size() && src_alloc_[alloc_index_].end() <= pos_)
    ++alloc_index_;
  const bool data = alloc_index_ < src_alloc_.size() && src_alloc_[alloc_index_].offset <= pos_;
  if (data && free_buffers_.empty()) return false;
  Unit& u = At(count_);
  u.reads.clear();
  u.writes.clear();
  u.discards.clear();
  u.iovs.clear();
  u.next_read = u.next_write = u.next_discard = 0;
  u.src_pending = u.dst_pending = 0;
  u.scanned = false;
  u.buffer = -1;
  u.offset = pos_;
  if (!data) {
    uint64_t end = alloc_index_ < src_alloc_.size() ? src_alloc_[alloc_index_].offset : size_;
    end = std::min(end, pos_ + kMaxHoleUnit);
    u.length = end - pos_;
    u.scanned = true;
    if (o_.discard_holes) {
      ExtentList pieces;
      Intersect(dst_alloc_, u.offset, u.length, &pieces);
      for (const Extent& e : pieces)
        for (uint64_t off = e.offset; off < e.end(); off += kMaxDiscard)
          u.discards.push_back({off, std::min(kMaxDiscard, e.end() - off)});
    }
  } else {
    const uint64_t end = std::min((pos_ / chunk_ + 1) * chunk_, size_);
    u.length = end - pos_;
    u.buffer = free_buffers_.back();
    free_buffers_.pop_back();
    for (size_t i = alloc_index_; i < src_alloc_.size() && src_alloc_[i].offset < end; ++i) {
      uint64_t s = std::max(src_alloc_[i].offset, pos_), t = std::min(src_alloc_[i].end(), end);
      if (!u.reads.empty() && s - u.reads.back().end() < kReadThroughGap)
        u.reads.back().length = t - u.reads.back().offset;
      else
        u.reads.push_back({s, t - s});
    }
  }
  pos_ += u.length;
  ++count_;
  return true;
}

void Copier::Issue() {
  if (!error_.ok()) return;  // let what is in flight finish, start nothing new
  for (size_t i = 0; i < count_; ++i) {
    Unit& u = At(i);
    const uint32_t slot = static_cast<uint32_t>((head_ + i) % units_.size());
    std::byte* base = u.buffer >= 0 ? buffers_.data() + static_cast<size_t>(u.buffer) * chunk_
                                    : nullptr;
    while (u.next_read < u.reads.size() && sq_->in_flight() < src_depth_) {
      const uint32_t idx = static_cast<uint32_t>(u.next_read++);
      const Extent& r = u.reads[idx];
      u.iovs.push_back({base + (r.offset - u.offset), r.length});
      ++u.src_pending;
      // Captures fit the callback's inline storage (16 bytes): no allocation per I/O.
      sq_->readv(r.offset, &u.iovs.back(), 1, [this, slot, idx](Status s) {
        Unit& unit = units_[slot];
        --unit.src_pending;
        if (!s.ok()) return Fail(std::move(s));
        result_.bytes_read += unit.reads[idx].length;
        if (unit.src_pending == 0 && unit.next_read == unit.reads.size()) ScanUnit(unit);
      });
    }
    // Leave one destination slot for checkpoint flushes.
    while (u.next_write < u.writes.size() && dq_->in_flight() + 1 < dst_depth_) {
      const uint32_t idx = static_cast<uint32_t>(u.next_write++);
      const Extent& w = u.writes[idx];
      u.iovs.push_back({base + (w.offset - u.offset), w.length});
      ++u.dst_pending;
      dq_->writev(w.offset, &u.iovs.back(), 1, [this, slot, idx](Status s) {
        Unit& unit = units_[slot];
        --unit.dst_pending;
        if (!s.ok()) return Fail(std::move(s));
        result_.bytes_written += unit.writes[idx].length;
      });
    }
    while (u.next_discard < u.discards.size() && dq_->in_flight() + 1 < dst_depth_) {
      const uint32_t idx = static_cast<uint32_t>(u.next_discard++);
      const Extent& d = u.discards[idx];
      ++u.dst_pending;
      dq_->discard(d.offset, d.length, [this, slot, idx](Status s) {
        Unit& unit = units_[slot];
        --unit.dst_pending;
        if (!s.ok()) return Fail(std::move(s));
        result_.bytes_discarded += unit.discards[idx].length;
      });
    }
  }
}

// All reads of `u` are in: split it into runs of data (written) and zeroes (discarded where the
// destination may hold data).
void Copier::ScanUnit(Unit& u) {
  std::byte* base = buffers_.data() + static_cast<size_t>(u.buffer) * chunk_;
  const uint64_t end = u.offset + u.length;
  size_t ri = 0;
  uint64_t run_start = u.offset;
  bool run_zero = true;
  auto close_run = [&](uint64_t stop) {
    if (stop <= run_start) return;
    if (!run_zero) {
      u.writes.push_back({run_start, stop - run_start});
    } else if (o_.discard_holes) {
      Intersect(dst_alloc_, run_start, stop - run_start, &u.discards);
    }
  };
  for (uint64_t g = u.offset; g < end; g += granule_) {
    const uint64_t glen = std::min(granule_, end - g);
    while (ri < u.reads.size() && u.reads[ri].end() <= g) ++ri;
    const bool was_read = ri < u.reads.size() && u.reads[ri].offset <= g;
    bool zero = true;
    if (was_read) {
      zero = IsAllZero(base + (g - u.offset), glen);
      if (zero) result_.bytes_zero += glen;
    } else if (o_.checksum) {
      std::memset(base + (g - u.offset), 0, glen);  // hashed as the zeroes it reads as
    }
    if (zero != run_zero) {
      close_run(g);
      run_start = g;
      run_zero = zero;
    }
  }
  close_run(end);
  u.scanned = true;
}

void Copier::Retire() {
  bool progressed = false;
  while (count_ > 0) {
    Unit& u = At(0);
    if (!u.scanned || u.src_pending || u.dst_pending || u.next_write < u.writes.size() ||
        u.next_discard < u.discards.size())
      break;
    if (o_.checksum) {
      if (u.buffer >= 0) {
        SHA256_Update(&sha_, buffers_.data() + static_cast<size_t>(u.buffer) * chunk_, u.length);
      } else {
        for (uint64_t left = u.length; left > 0;) {
          size_t n = static_cast<size_t>(std::min<uint64_t>(left, zeroes_.size()));
          SHA256_Update(&sha_, zeroes_.data(), n);
          left -= n;
        }
      }
    }
    if (u.buffer >= 0) free_buffers_.push_back(u.buffer);
    u.buffer = -1;
    done_ = u.offset + u.length;
    head_ = (head_ + 1) % units_.size();
    --count_;
    progressed = true;
  }
  if (progressed) {
    MaybeCheckpoint(false);
    Report(false);
  }
}

void Copier::WriteCheckpoint(uint64_t done, const std::string& sha_state, uint64_t r, uint64_t w,
                             uint64_t z, uint64_t d) {
  // Runs on writer_; the main thread only looks at writer_status_ after writer_done_.
  Checkpoint c{src_.describe(), dst_.describe(), size_, o_.checksum, done, r, w, z, d, sha_state};
  Status s = fs::WriteFileAtomic(o_.checkpoint_path, Serialize(c), 0600);
  writer_status_ = s.ok() ? Status() : Annotate(s, "copy: writing checkpoint");
  writer_done_offset_ = done;
  writer_read_ = r;
  writer_done_.store(true, std::memory_order_release);
}

// Collects a finished checkpoint writer (with `wait`: waits for a pending one, flush included).
void Copier::ReapCheckpoint(bool wait) {
  if (wait) {
    while (flush_pending_ && !writer_.joinable() && dq_->in_flight() > 0) {
      if (!dq_->poll(1, -1).ok()) break;
    }
  }
  if (!writer_.joinable()) return;
  if (!wait && !writer_done_.load(std::memory_order_acquire)) return;
  writer_.join();
  writer_done_.store(false, std::memory_order_relaxed);
  flush_pending_ = false;
  if (!writer_status_.ok()) return Fail(std::move(writer_status_));
  last_checkpoint_done_ = writer_done_offset_;
  last_checkpoint_read_ = writer_read_;
}

// Flushes the destination and, once that completes, records the watermark as of now.
// Due after checkpoint_every_bytes read from the source (the data a resumed copy would redo;
// skipping holes again is cheap) or checkpoint_every_seconds, whichever comes first.
void Copier::MaybeCheckpoint(bool force) {
  if (o_.checkpoint_path.empty()) return;
  ReapCheckpoint(false);
  if (flush_pending_ || done_ == last_checkpoint_done_) return;
  const auto now = Clock::now();
  const bool due =
      force || result_.bytes_read - last_checkpoint_read_ >= o_.checkpoint_every_bytes ||
      std::chrono::duration<double>(now - last_checkpoint_time_).count() >=
          o_.checkpoint_every_seconds;
  if (!due) return;
  std::string sha_state;
  if (o_.checksum) sha_state.assign(reinterpret_cast<const char*>(&sha_), sizeof sha_);
  flush_pending_ = true;
  last_checkpoint_time_ = now;
  dq_->flush([this, done = done_, sha_state = std::make_shared<std::string>(std::move(sha_state)),
              counters = std::make_shared<std::array<uint64_t, 4>>(std::array<uint64_t, 4>{
                  result_.bytes_read, result_.bytes_written, result_.bytes_zero,
                  result_.bytes_discarded})](Status s) {
    if (!s.ok()) {
      flush_pending_ = false;
      return Fail(Annotate(s, "copy: flush before checkpoint"));
    }
    writer_ = std::thread([this, done, sha_state, counters] {
      WriteCheckpoint(done, *sha_state, (*counters)[0], (*counters)[1], (*counters)[2],
                      (*counters)[3]);
    });
  });
}

void Copier::Report(bool final) {
  if (!o_.progress) return;
  const auto now = Clock::now();
  if (!final && now - last_report_ < std::chrono::milliseconds(100)) return;
  last_report_ = now;
  CopyProgress p;
  p.bytes_done = done_;
  p.bytes_total = size_;
  p.bytes_read = result_.bytes_read;
  p.bytes_written = result_.bytes_written;
  p.elapsed_s = std::chrono::duration<double>(now - start_).count();
  p.rate_bytes_per_s = p.elapsed_s > 0 ? static_cast<double>(done_ - start_done_) / p.elapsed_s : 0;
  o_.progress(p);
}

Status Copier::Wait() {
  const unsigned s_in = sq_->in_flight(), d_in = dq_->in_flight();
  if (s_in + d_in == 0) return Status();
  unsigned got = 0;
  if (s_in) {
    ASSIGN_OR_RETURN(unsigned n, sq_->poll(0, 0));
    got += n;
  }
  if (d_in) {
    ASSIGN_OR_RETURN(unsigned n, dq_->poll(0, 0));
    got += n;
  }
  if (got) return Status();
  if (!d_in) return sq_->poll(1, 500).status();
  if (!s_in) return dq_->poll(1, 500).status();
  const int sfd = sq_->completion_fd(), dfd = dq_->completion_fd();
  if (sfd >= 0 && dfd >= 0) {
    struct pollfd fds[2] = {{sfd, POLLIN, 0}, {dfd, POLLIN, 0}};
    ::poll(fds, 2, 500);
    return Status();
  }
  // An engine without a completion fd: alternate short waits.
  RETURN_IF_ERROR(sq_->poll(1, 1).status());
  return dq_->poll(0, 0).status();
}

StatusOr<CopyResult> Copier::Run() {
  RETURN_IF_ERROR(Setup());
  RETURN_IF_ERROR(LoadCheckpoint());
  start_ = last_checkpoint_time_ = Clock::now();
  last_report_ = start_ - std::chrono::seconds(1);
  while (true) {
    if (!Stopping())
      while (MakeUnit()) {
      }
    Issue();
    Status s = sq_->submit();
    if (s.ok()) s = dq_->submit();
    if (!s.ok()) Fail(s);
    Retire();
    const bool idle = sq_->in_flight() == 0 && dq_->in_flight() == 0;
    if (idle && (count_ == 0 || Stopping())) {
      if (count_ == 0 && pos_ >= size_) break;  // finished
      if (Stopping()) break;
    }
    s = Wait();
    if (!s.ok()) {
      Fail(s);
      // The engine itself failed: completions cannot be trusted to arrive. Stop here.
      break;
    }
  }
  // Units issued but unfinished when stopping are simply redone by a resumed copy.
  if (!o_.checkpoint_path.empty() && error_.ok() && done_ < size_) {
    // Cancelled: make the last progress durable so a re-run resumes from here.
    ReapCheckpoint(true);
    MaybeCheckpoint(true);
    while (dq_->in_flight() > 0) {
      auto n = dq_->poll(1, -1);
      if (!n.ok()) break;
    }
  }
  ReapCheckpoint(true);
  Report(true);
  if (!error_.ok()) return error_;
  if (done_ < size_)
    return absl::CancelledError(absl::StrCat(
        "copy cancelled at ", done_, " of ", size_, " bytes",
        o_.checkpoint_path.empty() ? "" : "; re-run with the same checkpoint to resume"));
  if (o_.flush_at_end) {
    Status fs;
    bool flushed = false;
    dq_->flush([&](Status s) {
      fs = std::move(s);
      flushed = true;
    });
    RETURN_IF_ERROR(dq_->drain());
    if (flushed) RETURN_IF_ERROR(Annotate(fs, "copy: final flush"));
  }
  if (!o_.checkpoint_path.empty()) {
    std::error_code ec;
    std::filesystem::remove(o_.checkpoint_path, ec);
  }
  if (o_.checksum) {
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256_Final(md, &sha_);
    result_.sha256_hex = absl::BytesToHexString(
        absl::string_view(reinterpret_cast<const char*>(md), sizeof md));
  }
  return result_;
}

}  // namespace

StatusOr<CopyResult> CopyDevice(Device& src, Device& dst, const CopyOptions& options) {
  Copier copier(src, dst, options);
  return copier.Run();
}

}  // namespace vdisk::blockdev
