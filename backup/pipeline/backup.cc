#include "backup/pipeline/backup.h"

#include <unistd.h>

#include <chrono>
#include <future>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_set>

#include "absl/strings/str_cat.h"
#include "backup/pipeline/source_plan.h"
#include "backup/repo/chunk_codec.h"
#include "backup/repo/pack_writer.h"
#include "backup/util/work_queue.h"
#include "blockdev/aligned_buffer.h"
#include "blockdev/registry.h"
#include "blockdev/zero_detect.h"
#include "snapshot/changed_blocks.h"
#include "spdlog/spdlog.h"

namespace vdisk::backup {

namespace {

using blockdev::AlignedBuffer;
using blockdev::Device;
using blockdev::ExtentList;
using Clock = std::chrono::steady_clock;

std::string Hostname() {
  char buf[256] = {};
  ::gethostname(buf, sizeof buf - 1);
  return buf;
}

// One disk, opened and planned, ready to run.
struct PreparedDisk {
  const DiskSource* source = nullptr;
  std::shared_ptr<blockdev::Pool> pool;  // keeps the pool alive while the device is open
  std::unique_ptr<Device> device;
  const DiskBackup* parent = nullptr;
  SourcePlan plan;
  DiskBackup record;
  uint64_t bytes_to_read = 0;
  ExtentList allocated;
  bool allocation_known = false;
  std::optional<ExtentList> changed;
  std::string change_note;
};

// Shared state of one backup run.
struct Run {
  Run(const Repository& r, const BackupOptions& o, const ChunkIndex& i, PackWriter& p)
      : repo(r), options(o), index(i), packs(p) {}
  const Repository& repo;
  const BackupOptions& options;
  const ChunkIndex& index;
  PackWriter& packs;
  std::mutex session_mu;
  std::unordered_set<ChunkId, ChunkIdHash> session;  // chunks queued for upload this run
  std::atomic<uint64_t> bytes_read{0};
  std::atomic<uint64_t> bytes_uploaded{0};
  std::atomic<uint64_t> packs_written{0};
  std::mutex error_mu;
  Status error;

  void Fail(Status s) {
    std::lock_guard lock(error_mu);
    if (error.ok()) error = std::move(s);
  }
  bool failed() {
    std::lock_guard lock(error_mu);
    return !error.ok();
  }
  Status first_error() {
    std::lock_guard lock(error_mu);
    return error;
  }
  bool cancelled() const { return options.cancel && options.cancel->load(); }
};

enum ChunkKind : uint8_t { kNotRead = 0, kData = 1, kZero = 2 };

struct ReadJob {
  uint32_t index = 0;
  uint32_t length = 0;
  AlignedBuffer* buffer = nullptr;
};

// Per-disk results, written by workers at distinct indexes (no locking needed).
struct DiskResults {
  std::vector<ChunkId> ids;
  std::vector<uint8_t> kind;
  std::atomic<uint64_t> chunks_new{0}, chunks_reused{0}, chunks_zero{0};
  std::atomic<uint64_t> bytes_new{0}, bytes_stored_new{0};
};

void ProcessChunk(Run& run, DiskResults& out, const ReadJob& job) {
  std::string_view data(reinterpret_cast<const char*>(job.buffer->data()), job.length);
  if (blockdev::IsAllZero(data.data(), data.size())) {
    out.kind[job.index] = kZero;
    out.chunks_zero++;
    return;
  }
  const ChunkId id = ComputeChunkId(run.repo.keys(), data);
  out.ids[job.index] = id;
  out.kind[job.index] = kData;
  if (run.index.Find(id)) {
    out.chunks_reused++;
    return;
  }
  {
    std::lock_guard lock(run.session_mu);
    if (!run.session.insert(id).second) {
      out.chunks_reused++;
      return;
    }
  }
  thread_local std::string blob;
  blob.clear();
  EncodeChunk(run.repo.keys(), id, data, run.repo.config().zstd_level, &blob);
  Status s = run.packs.Add(id, blob, job.length);
  if (!s.ok()) {
    run.Fail(s);
    return;
  }
  out.chunks_new++;
  out.bytes_new += job.length;
  out.bytes_stored_new += blob.size();
}

// Reads the planned chunks of one disk with `read_depth` reads in flight and hands them to
// `workers` threads. Returns when every chunk is processed or on the first error.
Status BackupDisk(Run& run, PreparedDisk& disk) {
  Device& dev = *disk.device;
  const uint32_t cs = run.repo.config().chunk_size;
  const uint64_t size = dev.size();
  const uint64_t n = disk.record.chunk_count();
  DiskResults results;
  results.ids.resize(n);
  results.kind.assign(n, kNotRead);

  unsigned workers = run.options.workers ? run.options.workers
                                         : std::max(2u, std::thread::hardware_concurrency());
  const unsigned depth = std::max(1u, run.options.read_depth);
  const size_t nbuf = depth + 2 * workers;
  std::vector<AlignedBuffer> buffers;
  buffers.reserve(nbuf);
  WorkQueue<AlignedBuffer*> free_buffers(nbuf);
  for (size_t i = 0; i < nbuf; ++i) {
    buffers.emplace_back(cs, std::max<uint32_t>(4096, dev.buffer_alignment()));
    free_buffers.Push(&buffers.back());
  }
  WorkQueue<ReadJob> work(nbuf);

  std::vector<std::thread> threads;
  for (unsigned i = 0; i < workers; ++i) {
    threads.emplace_back([&] {
      while (auto job = work.Pop()) {
        if (!run.failed()) ProcessChunk(run, results, *job);
        free_buffers.Push(job->buffer);
      }
    });
  }

  Status read_status = [&]() -> Status {
    ASSIGN_OR_RETURN(auto queue, dev.open_queue(depth));
    size_t next = 0;
    const auto& todo = disk.plan.read;
    while (next < todo.size() || queue->in_flight() > 0) {
      if (run.cancelled()) run.Fail(absl::CancelledError("backup cancelled"));
      if (run.failed()) break;
      while (next < todo.size() && queue->in_flight() < depth) {
        auto buf = free_buffers.TryPop();
        if (!buf && queue->in_flight() == 0) buf = free_buffers.Pop();  // wait for a worker
        if (!buf) break;
        const uint32_t idx = todo[next++];
        const uint64_t off = static_cast<uint64_t>(idx) * cs;
        const uint32_t len = static_cast<uint32_t>(std::min<uint64_t>(cs, size - off));
        AlignedBuffer* b = *buf;
        queue->read(off, std::span<std::byte>(b->data(), len),
                    [&run, &work, &free_buffers, b, idx, len, off, &dev](Status s) {
                      if (!s.ok()) {
                        run.Fail(Annotate(s, absl::StrCat("reading ", dev.describe(), " at ", off)));
                        free_buffers.Push(b);
                        return;
                      }
                      run.bytes_read += len;
                      work.Push(ReadJob{idx, len, b});
                    });
      }
      RETURN_IF_ERROR(queue->submit());
      if (queue->in_flight() > 0) {
        auto polled = queue->poll(1, 100);
        if (!polled.ok()) return polled.status();
      }
    }
    return queue->drain();
  }();
  work.Close();
  for (auto& t : threads) t.join();
  if (!read_status.ok()) return read_status;
  RETURN_IF_ERROR(run.first_error());

  // Assemble the chunk map: inherited + read data chunks, by index.
  DiskBackup& rec = disk.record;
  rec.chunks = disk.plan.inherited;
  for (uint64_t i = 0; i < n; ++i)
    if (results.kind[i] == kData) rec.chunks.push_back({static_cast<uint32_t>(i), results.ids[i]});
  std::sort(rec.chunks.begin(), rec.chunks.end(),
            [](const ChunkRef& a, const ChunkRef& b) { return a.index < b.index; });
  rec.stats.bytes_read = disk.bytes_to_read;
  rec.stats.chunks_new = results.chunks_new;
  rec.stats.chunks_reused = results.chunks_reused;
  rec.stats.chunks_zero = results.chunks_zero;
  rec.stats.chunks_unchanged = disk.plan.inherited.size();
  rec.stats.bytes_new = results.bytes_new;
  rec.stats.bytes_stored_new = results.bytes_stored_new;
  return Status();
}

Status ValidateOptions(const BackupOptions& o) {
  if (o.disks.empty()) return absl::InvalidArgumentError("no disks to back up");
  std::set<std::string> names;
  for (const auto& d : o.disks) {
    if (d.name.empty() || d.name.find_first_of("/\\\n\t ") != std::string::npos)
      return absl::InvalidArgumentError(
          absl::StrCat("disk name '", d.name, "' must be non-empty without spaces or slashes"));
    if (!names.insert(d.name).second)
      return absl::InvalidArgumentError(absl::StrCat("disk name '", d.name, "' given twice"));
    if (d.pool_snapshot.empty() && d.uri.empty())
      return absl::InvalidArgumentError(absl::StrCat("disk '", d.name, "' has no source"));
    if (!d.pool_snapshot.empty() && d.pool.kind.empty())
      return absl::InvalidArgumentError(
          absl::StrCat("disk '", d.name, "': a pool snapshot needs --pool"));
  }
  return Status();
}

std::string DefaultGroup(const BackupOptions& o) {
  if (!o.group.empty()) return o.group;
  for (const auto& k : o.kubernetes)
    if (k.kind == "VirtualMachine" && !k.name.empty())
      return k.namespace_.empty() ? k.name : absl::StrCat(k.namespace_, "/", k.name);
  return "default";
}

StatusOr<std::optional<Manifest>> ResolveParent(const Repository& repo, const BackupOptions& o,
                                                const std::string& group) {
  if (o.parent.empty()) return std::optional<Manifest>();
  if (o.parent != "auto") {
    ASSIGN_OR_RETURN(std::string id, repo.ResolveBackupId(o.parent));
    ASSIGN_OR_RETURN(Manifest m, repo.ReadManifest(id));
    return std::optional<Manifest>(std::move(m));
  }
  ASSIGN_OR_RETURN(auto ids, repo.ListBackups());
  for (auto it = ids.rbegin(); it != ids.rend(); ++it) {
    auto m = repo.ReadManifest(*it);
    if (!m.ok()) {
      spdlog::warn("skipping unreadable backup {} as parent: {}", *it, m.status().ToString());
      continue;
    }
    if (m->group != group) continue;
    bool has_all = true;
    for (const auto& d : o.disks) has_all = has_all && m->disk(d.name) != nullptr;
    if (has_all) return std::optional<Manifest>(std::move(*m));
  }
  return std::optional<Manifest>();
}

// Geometry and allocation map of the opened device.
Status ReadAllocation(PreparedDisk* out) {
  Device& dev = *out->device;
  DiskBackup& rec = out->record;
  rec.source = dev.describe();
  rec.size_bytes = dev.size();
  rec.block_size = dev.block_size();
  if (rec.size_bytes == 0) return absl::InvalidArgumentError(absl::StrCat(rec.source, " is empty"));
  // A device that can only map its allocation by reading it (NFSv3) is read once, whole; zero
  // chunks are dropped on the way anyway.
  auto alloc = dev.allocation_requires_read()
                   ? StatusOr<blockdev::ExtentList>(absl::UnimplementedError("read to map"))
                   : dev.allocated(0, rec.size_bytes);
  out->allocation_known = alloc.ok();
  if (alloc.ok()) {
    out->allocated = blockdev::Normalize(std::move(*alloc));
  } else if (dev.allocation_requires_read()) {
    out->allocated = {{0, rec.size_bytes}};
  } else {
    spdlog::warn("{}: no allocation map ({}); reading everything", rec.source,
                 alloc.status().ToString());
    out->allocated = {{0, rec.size_bytes}};
  }
  uint64_t pos = 0;  // unallocated = the complement
  for (const auto& e : out->allocated) {
    if (e.offset > pos) rec.unallocated.push_back({pos, e.offset - pos});
    pos = std::max(pos, e.end());
  }
  if (pos < rec.size_bytes) rec.unallocated.push_back({pos, rec.size_bytes - pos});
  return Status();
}

// Opens a device source (not a pool snapshot) and reads its allocation and change maps. Needs
// nothing from the repository, so it runs while the repository is locked and indexed.
Status OpenSource(const DiskSource& src, PreparedDisk* out) {
  out->source = &src;
  out->changed = src.changed;
  if (!src.pool_snapshot.empty()) return Status();  // needs the parent: see PlanDisk
  ASSIGN_OR_RETURN(out->device, blockdev::OpenDeviceUri(src.uri, /*read_only=*/true));
  out->record.source_snapshot = src.source_snapshot;
  if (out->changed) out->change_note = "caller-supplied changed ranges";
  if (!out->changed && !src.changed_since_image.empty()) {
    // The devices' own change map only (FIEMAP of reflinked files): reading both images to
    // compare them costs more than reading and hashing the new one.
    snapshot::ChangedBlocksOptions co;
    co.allow_read_compare = false;
    auto base = blockdev::OpenDeviceUri(src.changed_since_image, /*read_only=*/true);
    auto diff = base.ok() ? snapshot::ChangedBlocksBetween(**base, *out->device, co)
                          : StatusOr<snapshot::ChangeMap>(base.status());
    if (diff.ok()) {
      out->changed = std::move(diff->extents);
      out->change_note = absl::StrCat("change map of ", out->device->describe(), " since ",
                                      src.changed_since_image);
    } else {
      out->change_note = absl::StrCat("read-and-hash (no change map since ", src.changed_since_image,
                                      ": ", diff.status().message(), ")");
    }
  }
  return ReadAllocation(out);
}

// Opens a pool snapshot source; its change map starts at the parent's source snapshot.
Status OpenPoolSource(const DiskSource& src, PreparedDisk* out) {
  const blockdev::PoolConfig& cfg = src.pool;
  blockdev::PoolSet set;
  RETURN_IF_ERROR(set.Add(cfg));
  ASSIGN_OR_RETURN(out->pool, set.Get(cfg.name));
  ASSIGN_OR_RETURN(out->device, out->pool->open_snapshot(src.pool_snapshot));
  DiskBackup& rec = out->record;
  rec.pool = cfg.name;
  rec.source_snapshot = src.pool_snapshot;
  std::string base = src.base_snapshot;
  if (base.empty() && out->parent && out->parent->pool == cfg.name)
    base = out->parent->source_snapshot;
  if (!out->changed && out->parent && !base.empty()) {
    // The pool's own change tracking only: comparing two snapshots by reading both costs more
    // than reading and hashing the new one (dedup then skips unchanged chunks).
    snapshot::ChangedBlocksOptions co;
    co.allow_read_compare = false;
    auto diff = snapshot::ChangedBlocks(*out->pool, base, src.pool_snapshot, co);
    if (diff.ok()) {
      out->changed = std::move(diff->extents);
      out->change_note = absl::StrCat("pool change map since snapshot ", base);
    } else {
      out->change_note = absl::StrCat("read-and-hash (no change map from snapshot ", base, ": ",
                                      diff.status().message(), ")");
    }
  }
  return ReadAllocation(out);
}

// Chooses the chunks to read, given the parent and the repository's index.
Status PlanDisk(const Repository& repo, const Manifest* parent, const ChunkIndex& index,
                PreparedDisk* out) {
  const DiskSource& src = *out->source;
  out->parent = parent ? parent->disk(src.name) : nullptr;
  if (!src.pool_snapshot.empty()) RETURN_IF_ERROR(OpenPoolSource(src, out));
  DiskBackup& rec = out->record;
  rec.name = src.name;
  rec.volume = src.volume;
  rec.chunk_size = repo.config().chunk_size;
  out->plan = PlanChunks(rec.size_bytes, rec.chunk_size, out->allocated, out->changed,
                         out->parent, index);
  if (out->plan.used_change_map) {
    rec.change_map = absl::StrCat("incremental: ", out->change_note);
  } else if (out->parent) {
    rec.change_map = out->change_note.empty() ? "read-and-hash against the repository"
                                              : out->change_note;
    if (out->changed)
      rec.change_map = "read-and-hash (parent disk has a different geometry)";
  } else {
    rec.change_map = out->allocation_known ? "full: allocated ranges" : "full: whole device";
  }
  if (out->plan.inherited_missing)
    spdlog::warn("{}: {} chunks of the parent are missing from the repository; re-reading them",
                 rec.name, out->plan.inherited_missing);
  const uint32_t cs = rec.chunk_size;
  for (uint32_t idx : out->plan.read) {
    uint64_t off = static_cast<uint64_t>(idx) * cs;
    out->bytes_to_read += std::min<uint64_t>(cs, rec.size_bytes - off);
  }
  return Status();
}

}  // namespace

StatusOr<BackupResult> CreateBackup(const Repository& repo, const BackupOptions& options) {
  const auto start = Clock::now();
  RETURN_IF_ERROR(ValidateOptions(options));
  blockdev::RegisterBuiltinBackends();
  // Open the sources and read their allocation / change maps while the repository is being
  // locked and its index loaded.
  std::vector<PreparedDisk> disks(options.disks.size());
  std::future<Status> opened = std::async(std::launch::async, [&]() -> Status {
    for (size_t i = 0; i < options.disks.size(); ++i)
      RETURN_IF_ERROR(Annotate(OpenSource(options.disks[i], &disks[i]),
                               absl::StrCat("disk '", options.disks[i].name, "'")));
    return Status();
  });
  auto lock_or = RepoLock::Acquire(repo.store(), RepoLock::Mode::kShared, "backup create",
                                   options.lock);
  if (!lock_or.ok()) {
    (void)opened.get();
    return lock_or.status();
  }
  std::unique_ptr<RepoLock> lock = std::move(*lock_or);
  Manifest m;
  m.started_unix = std::time(nullptr);
  m.id = NewBackupId(std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch()).count());
  m.group = DefaultGroup(options);
  m.hostname = Hostname();
  m.tags = options.tags;
  m.kubernetes = options.kubernetes;

  auto phase = [&](const char* what) {
    spdlog::info("backup {}: {} at {:.3f} s", m.id, what,
                 std::chrono::duration<double>(Clock::now() - start).count());
  };
  phase("locked");
  // Every early return below must not leave `opened` running on `disks`.
  struct Join {
    std::future<Status>& f;
    ~Join() {
      if (f.valid()) (void)f.get();
    }
  } join{opened};
  ASSIGN_OR_RETURN(std::optional<Manifest> parent, ResolveParent(repo, options, m.group));
  phase("parent resolved");
  if (parent) m.parent = parent->id;

  ASSIGN_OR_RETURN(LoadedIndex loaded, repo.LoadIndex(/*adopt_unindexed=*/true));
  phase("index loaded");
  if (!loaded.adopted.empty())
    spdlog::info("resuming: {} packs from an interrupted backup are reused", loaded.adopted.size());

  RETURN_IF_ERROR(opened.get());
  uint64_t total = 0;
  for (size_t i = 0; i < options.disks.size(); ++i) {
    RETURN_IF_ERROR(Annotate(PlanDisk(repo, parent ? &*parent : nullptr, loaded.index, &disks[i]),
                             absl::StrCat("disk '", options.disks[i].name, "'")));
    total += disks[i].bytes_to_read;
  }

  phase("sources planned");
  std::future<void> cleanup = std::async(std::launch::async, [&] {
    auto aborted = repo.store().AbortStaleUploads(kPacksPrefix, options.stale_upload_age);
    if (!aborted.ok()) spdlog::warn("cleaning stale uploads: {}", aborted.status().ToString());
  });

  std::atomic<uint64_t> uploaded{0}, packs_written{0};
  std::string current_disk;
  std::mutex current_mu;
  PackWriter packs(repo, repo.config().pack_size, [&](const PackRecord& rec) {
    uploaded += rec.size;
    packs_written++;
    if (options.on_pack_committed) options.on_pack_committed(rec);
  });
  Run run(repo, options, loaded.index, packs);
  ProgressTicker ticker(options.progress, [&] {
    Progress p;
    p.phase = "backup";
    {
      std::lock_guard l(current_mu);
      p.item = current_disk;
    }
    p.bytes_total = total;
    p.bytes_done = run.bytes_read;
    p.bytes_transferred = uploaded;
    p.elapsed_seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return p;
  });

  for (auto& disk : disks) {
    {
      std::lock_guard l(current_mu);
      current_disk = disk.record.name;
    }
    Status s = BackupDisk(run, disk);
    if (!s.ok()) {
      ticker.Stop();
      return Annotate(s, absl::StrCat("backing up disk '", disk.record.name, "'"));
    }
    m.disks.push_back(std::move(disk.record));
    disk.device.reset();
  }
  phase("data read");
  auto written = packs.Finish();
  ticker.Stop();
  if (!written.ok()) return Annotate(written.status(), "uploading packs");
  // Last point to stop before the backup becomes visible; uploaded packs are resumed next time.
  if (options.cancel && options.cancel->load()) return absl::CancelledError("backup cancelled");

  std::vector<PackRecord> to_index = std::move(*written);
  for (auto& a : loaded.adopted) to_index.push_back(std::move(a));
  if (!to_index.empty()) RETURN_IF_ERROR(Annotate(repo.WriteIndex(to_index).status(), "writing index"));
  m.finished_unix = std::time(nullptr);
  phase("packs committed");
  RETURN_IF_ERROR(Annotate(repo.WriteManifest(m), "writing manifest"));
  phase("manifest written");

  BackupResult result;
  result.packs_written = packs_written;
  result.packs_resumed = loaded.adopted.size();
  result.bytes_uploaded = uploaded;
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  result.manifest = std::move(m);
  return result;
}

}  // namespace vdisk::backup
