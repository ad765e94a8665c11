#include "backup/pipeline/restore.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "backup/pipeline/chunk_fetcher.h"
#include "backup/util/work_queue.h"
#include "blockdev/aligned_buffer.h"
#include "blockdev/registry.h"
#include "blockdev/sync_io.h"
#include "blockdev/zero_detect.h"
#include "common/fs.h"
#include "spdlog/spdlog.h"

namespace vdisk::backup {

namespace {

using blockdev::AlignedBuffer;
using blockdev::Device;
using Clock = std::chrono::steady_clock;

bool HasScheme(const std::string& uri) {
  auto colon = uri.find(':');
  auto slash = uri.find('/');
  return colon != std::string::npos && colon > 0 && (slash == std::string::npos || colon < slash);
}

// The opened target and how to finish it.
struct Target {
  std::unique_ptr<Device> device;
  std::shared_ptr<blockdev::Pool> pool;
  std::string volume_id;
  std::string partial_path;  // new file: rename partial_path -> final_path at the end
  std::string final_path;
  std::string description;
  bool fresh = false;  // known to read as zeroes everywhere: holes need no discard
  bool preallocated = false;  // fresh, with its data ranges reserved by fallocate
  bool created = false;
};

Status ResizeRegularFile(const std::string& path, uint64_t size) {
  if (::truncate(path.c_str(), static_cast<off_t>(size)) != 0)
    return LastErrnoStatus(absl::StrCat("resize ", path));
  return Status();
}

// Reserves the data ranges of a new file up front, so it is laid out in few extents rather
// than in the order parallel writes land (best effort: not every file system can).
bool Preallocate(const std::string& path, const blockdev::ExtentList& data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = true;
  for (const auto& e : data) {
    if (::fallocate(fd, 0, static_cast<off_t>(e.offset), static_cast<off_t>(e.length)) != 0) {
      ok = false;
      break;
    }
  }
  ::close(fd);
  return ok;
}

StatusOr<Target> OpenTarget(const RestoreOptions& o, const DiskBackup& disk,
                            const blockdev::ExtentList& data) {
  Target t;
  if (!o.pool.kind.empty()) {
    if (o.volume_name.empty())
      return absl::InvalidArgumentError("restoring into a pool needs a volume name");
    const blockdev::PoolConfig& cfg = o.pool;
    blockdev::PoolSet set;
    RETURN_IF_ERROR(set.Add(cfg));
    ASSIGN_OR_RETURN(t.pool, set.Get(cfg.name));
    ASSIGN_OR_RETURN(auto existing, t.pool->find_volume_by_name(o.volume_name));
    blockdev::Volume vol;
    if (existing) {
      if (!existing->pending)
        return absl::AlreadyExistsError(absl::StrCat("volume '", o.volume_name, "' exists in pool ",
                                                     cfg.name, " (restore into it by device URI)"));
      vol = *existing;  // an interrupted restore: finish it
    } else {
      const uint64_t g = std::max<uint64_t>(1, t.pool->capabilities().size_granularity);
      blockdev::VolumeRequest req;
      req.name = o.volume_name;
      req.size_bytes = (disk.size_bytes + g - 1) / g * g;
      req.mode = blockdev::VolumeMode::kBlock;
      req.access_modes = {blockdev::AccessMode::kSingleNodeWriter};
      req.pending = true;
      ASSIGN_OR_RETURN(vol, t.pool->create_volume(req));
      t.fresh = true;
      t.created = true;
    }
    t.volume_id = vol.id;
    ASSIGN_OR_RETURN(t.device, t.pool->open_volume(vol.id, /*read_only=*/false));
    t.description = absl::StrCat("pool ", cfg.name, " volume ", vol.id);
    return t;
  }
  if (o.target.empty()) return absl::InvalidArgumentError("no restore target given");
  struct stat st;
  if (!HasScheme(o.target) && ::stat(o.target.c_str(), &st) != 0) {
    if (errno != ENOENT) return LastErrnoStatus(absl::StrCat("stat ", o.target));
    // A new file, built under a temporary name.
    t.final_path = o.target;
    t.partial_path = o.target + ".vdisk-partial";
    int fd = ::open(t.partial_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0) {
      t.fresh = true;
      ::close(fd);
    } else if (errno != EEXIST) {
      return LastErrnoStatus(absl::StrCat("create ", t.partial_path));
    }  // EEXIST: an interrupted restore's file; overwrite it in place
    RETURN_IF_ERROR(ResizeRegularFile(t.partial_path, disk.size_bytes));
    if (t.fresh) t.preallocated = Preallocate(t.partial_path, data);
    t.created = true;
    ASSIGN_OR_RETURN(t.device, blockdev::OpenDeviceUri(t.partial_path, false));
    t.description = t.final_path;
    return t;
  }
  if (!HasScheme(o.target) && S_ISREG(st.st_mode))
    RETURN_IF_ERROR(ResizeRegularFile(o.target, disk.size_bytes));
  ASSIGN_OR_RETURN(t.device, blockdev::OpenDeviceUri(o.target, false));
  t.description = t.device->describe();
  if (t.device->size() < disk.size_bytes)
    return absl::OutOfRangeError(absl::StrCat(t.description, " holds ", t.device->size(),
                                              " bytes; the disk needs ", disk.size_bytes));
  return t;
}

enum class HoleMode { kWriteAll, kSkip, kPunch };

// A chunk split into runs of all-zero and non-zero blocks of `granularity` bytes.
struct Run {
  uint32_t offset = 0;
  uint32_t length = 0;
  bool zero = false;
};

std::vector<Run> SplitRuns(const std::byte* data, uint32_t length, uint32_t granularity) {
  std::vector<Run> runs;
  for (uint32_t off = 0; off < length; off += granularity) {
    uint32_t len = std::min(granularity, length - off);
    bool zero = blockdev::IsAllZero(data + off, len);
    if (!runs.empty() && runs.back().zero == zero) runs.back().length += len;
    else runs.push_back({off, len, zero});
  }
  return runs;
}

struct WriteJob {
  AlignedBuffer* buffer = nullptr;
  uint32_t length = 0;
  std::vector<uint32_t> indexes;  // chunk indexes that hold this content
};

struct BadChunk {
  uint64_t offset;
  std::string message;
};

}  // namespace

StatusOr<RestoreResult> Restore(const Repository& repo, const RestoreOptions& options) {
  const auto start = Clock::now();
  blockdev::RegisterBuiltinBackends();
  ASSIGN_OR_RETURN(auto lock, RepoLock::Acquire(repo.store(), RepoLock::Mode::kShared,
                                                "backup restore", options.lock));
  ASSIGN_OR_RETURN(std::string id, repo.ResolveBackupId(options.backup, options.group));
  ASSIGN_OR_RETURN(Manifest m, repo.ReadManifest(id));
  const DiskBackup* disk = nullptr;
  if (options.disk.empty()) {
    if (m.disks.size() != 1)
      return absl::InvalidArgumentError(absl::StrCat("backup ", id, " holds ", m.disks.size(),
                                                     " disks: name one with --disk"));
    disk = &m.disks[0];
  } else {
    disk = m.disk(options.disk);
    if (!disk)
      return absl::NotFoundError(absl::StrCat("backup ", id, " has no disk '", options.disk, "'"));
  }
  ASSIGN_OR_RETURN(LoadedIndex loaded, repo.LoadIndex(/*adopt_unindexed=*/false));
  const uint32_t cs = disk->chunk_size;
  const uint64_t size = disk->size_bytes;
  // Data ranges (merged runs of data chunks) and holes (everything else).
  std::vector<bool> is_data(disk->chunk_count(), false);
  for (const auto& ref : disk->chunks)
    if (ref.index < is_data.size()) is_data[ref.index] = true;
  blockdev::ExtentList holes, data_ranges;
  for (uint64_t c = 0; c < is_data.size(); ++c) {
    uint64_t off = c * cs, len = std::min<uint64_t>(cs, size - off);
    auto& list = is_data[c] ? data_ranges : holes;
    if (!list.empty() && list.back().end() == off) list.back().length += len;
    else list.push_back({off, len});
  }
  ASSIGN_OR_RETURN(Target target, OpenTarget(options, *disk, data_ranges));
  Device& dev = *target.device;

  RestoreResult result;
  result.backup_id = id;
  result.disk = disk->name;
  result.target = target.description;
  result.size_bytes = size;
  result.created = target.created;

  // Group the disk's chunk indexes by content; note missing chunks.
  std::mutex bad_mu;
  std::vector<BadChunk> bad;
  std::map<ChunkId, std::vector<uint32_t>> by_id;
  for (const auto& ref : disk->chunks) by_id[ref.id].push_back(ref.index);
  std::vector<FetchItem> items;
  std::vector<std::vector<uint32_t>> item_indexes;
  for (auto& [cid, idxs] : by_id) {
    const ChunkLocation* loc = loaded.index.Find(cid);
    if (!loc) {
      for (uint32_t i : idxs)
        bad.push_back({static_cast<uint64_t>(i) * cs,
                       absl::StrCat("chunk ", cid.hex().substr(0, 16), " is missing from the repository")});
      continue;
    }
    items.push_back({cid, *loc, item_indexes.size()});
    item_indexes.push_back(idxs);
  }
  // Fetch in disk order.
  std::sort(items.begin(), items.end(), [&](const FetchItem& a, const FetchItem& b) {
    return item_indexes[a.tag].front() < item_indexes[b.tag].front();
  });

  std::atomic<uint64_t> bytes_done{0}, bytes_written{0}, bytes_fetched{0};
  ProgressTicker ticker(options.progress, [&] {
    Progress p;
    p.phase = "restore";
    p.item = disk->name;
    p.bytes_total = size;
    p.bytes_done = bytes_done;
    p.bytes_transferred = bytes_fetched;
    p.elapsed_seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return p;
  });
  if (!target.fresh) {
    for (const auto& h : holes) {
      for (uint64_t off = h.offset; off < h.end(); off += 1ull << 30) {
        uint64_t len = std::min<uint64_t>(1ull << 30, h.end() - off);
        Status s = blockdev::Discard(dev, off, len);
        if (!s.ok()) s = blockdev::WriteZeroes(dev, off, len);
        if (!s.ok()) return Annotate(s, absl::StrCat("clearing ", target.description, " at ", off));
        bytes_done += len;
      }
    }
  } else {
    bytes_done += blockdev::TotalBytes(holes);
  }
  result.bytes_holes = blockdev::TotalBytes(holes);

  // Fetch + decode on fetcher threads; write on this thread.
  const unsigned depth = std::max(1u, options.write_depth);
  const size_t nbuf = depth + 8;
  std::vector<AlignedBuffer> buffers;
  buffers.reserve(nbuf);
  WorkQueue<AlignedBuffer*> free_buffers(nbuf);
  for (size_t i = 0; i < nbuf; ++i) {
    buffers.emplace_back(cs, std::max<uint32_t>(4096, dev.buffer_alignment()));
    free_buffers.Push(&buffers.back());
  }
  WorkQueue<WriteJob> writes(nbuf);
  FetchOptions fo;
  fo.parallel = options.parallel ? options.parallel : repo.store().parallelism();
  Status fetch_status;
  std::thread fetcher([&] {
    fetch_status = FetchChunks(
        repo, loaded.index, items, fo,
        [&](const FetchItem& item, Status st, std::string& data) -> Status {
          const auto& idxs = item_indexes[item.tag];
          if (!st.ok()) {
            std::lock_guard l(bad_mu);
            for (uint32_t i : idxs) bad.push_back({static_cast<uint64_t>(i) * cs, std::string(st.message())});
            return Status();
          }
          auto buf = free_buffers.Pop();
          if (!buf) return absl::CancelledError("restore stopped");
          std::memcpy((*buf)->data(), data.data(), data.size());
          if (!writes.Push(WriteJob{*buf, static_cast<uint32_t>(data.size()), idxs}))
            return absl::CancelledError("restore stopped");
          return Status();
        },
        &bytes_fetched, options.cancel);
    writes.Close();
  });

  const HoleMode hole_mode = !target.fresh ? HoleMode::kWriteAll
                            : target.preallocated ? HoleMode::kPunch : HoleMode::kSkip;
  const uint32_t granularity =
      (size % 4096 == 0 && cs % 4096 == 0) ? std::max<uint32_t>(4096, dev.block_size()) : dev.block_size();
  Status write_status = [&]() -> Status {
    ASSIGN_OR_RETURN(auto queue, dev.open_queue(depth));
    Status io_error;
    auto finish_all = [&]() -> Status {
      RETURN_IF_ERROR(queue->drain());
      return io_error;
    };
    while (true) {
      std::optional<WriteJob> job = queue->in_flight() > 0 ? writes.TryPop() : writes.Pop();
      if (!job) {
        if (queue->in_flight() == 0) break;  // closed and drained
        RETURN_IF_ERROR(queue->submit());
        auto polled = queue->poll(1, 50);
        if (!polled.ok()) return polled.status();
        continue;
      }
      AlignedBuffer* b = job->buffer;
      // A fresh target keeps zero blocks as holes: they are skipped (or punched, where the file
      // was preallocated); an existing target gets every byte.
      std::vector<Run> runs = hole_mode == HoleMode::kWriteAll
                                  ? std::vector<Run>{{0, job->length, false}}
                                  : SplitRuns(b->data(), job->length, granularity);
      auto remaining = std::make_shared<size_t>(1);  // +1 until every op is queued
      auto done_one = [&free_buffers, remaining, b] {
        if (--*remaining == 0) free_buffers.Push(b);
      };
      for (uint32_t idx : job->indexes) {
        const uint64_t base = static_cast<uint64_t>(idx) * cs;
        for (const Run& run : runs) {
          if (run.zero && hole_mode == HoleMode::kSkip) {
            bytes_done += run.length;
            continue;
          }
          while (queue->in_flight() >= depth) {
            RETURN_IF_ERROR(queue->submit());
            auto polled = queue->poll(1, -1);
            if (!polled.ok()) return polled.status();
          }
          const uint64_t off = base + run.offset;
          const uint32_t len = run.length;
          ++*remaining;
          auto cb = [&, done_one, len, off, zero = run.zero](Status s) {
            if (!s.ok() && io_error.ok())
              io_error = Annotate(s, absl::StrCat(zero ? "punching " : "writing ",
                                                  target.description, " at ", off));
            if (!zero) bytes_written += len;
            bytes_done += len;
            done_one();
          };
          if (run.zero) queue->discard(off, len, std::move(cb));
          else queue->write(off, std::span<const std::byte>(b->data() + run.offset, len), std::move(cb));
        }
      }
      done_one();  // drop the guard
      RETURN_IF_ERROR(queue->submit());
      if (!io_error.ok()) break;
    }
    RETURN_IF_ERROR(finish_all());
    ASSIGN_OR_RETURN(auto fq, dev.open_queue(1));
    Status flushed;
    fq->flush([&](Status s) { flushed = s; });
    RETURN_IF_ERROR(fq->drain());
    return flushed;
  }();
  if (!write_status.ok()) {
    // Unblock the fetchers: they may wait for buffers or queue room.
    writes.Close();
    free_buffers.Close();
  }
  fetcher.join();
  ticker.Stop();
  RETURN_IF_ERROR(write_status);
  RETURN_IF_ERROR(fetch_status);

  result.bytes_written = bytes_written;
  result.bytes_fetched = bytes_fetched;
  result.chunks = disk->chunks.size();
  if (!bad.empty()) {
    std::sort(bad.begin(), bad.end(), [](const BadChunk& a, const BadChunk& b) { return a.offset < b.offset; });
    std::string msg = absl::StrCat(bad.size(), " chunk(s) of disk '", disk->name, "' in backup ", id,
                                   " could not be restored");
    for (size_t i = 0; i < bad.size() && i < 5; ++i)
      absl::StrAppend(&msg, i ? "; " : ": ", "offset ", bad[i].offset, ": ", bad[i].message);
    if (!target.partial_path.empty())
      absl::StrAppend(&msg, " (incomplete data left in ", target.partial_path, ")");
    return absl::DataLossError(msg);
  }
  target.device.reset();
  if (!target.partial_path.empty()) {
    if (::rename(target.partial_path.c_str(), target.final_path.c_str()) != 0)
      return LastErrnoStatus(absl::StrCat("rename ", target.partial_path));
    auto slash = target.final_path.find_last_of('/');
    RETURN_IF_ERROR(fs::SyncDir(slash == std::string::npos ? "." : target.final_path.substr(0, slash)));
  }
  if (target.pool) {
    RETURN_IF_ERROR(target.pool->complete_volume(target.volume_id));
    result.target = target.volume_id;
  }
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return result;
}

}  // namespace vdisk::backup
