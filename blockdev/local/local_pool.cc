#include "blockdev/local/local_pool.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "blockdev/local/local_pool_impl.h"
#include "blockdev/local/loop_device.h"
#include "blockdev/local/mounts.h"
#include "blockdev/uring/uring_device.h"
#include "common/fs.h"
#include "spdlog/spdlog.h"

namespace vdisk::blockdev::local {

namespace {
int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") out.push_back(std::move(n));
  }
  ::closedir(d);
  return out;
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

StatusOr<bool> WantsPreallocation(const Params& params) {
  auto it = params.find("preallocation");
  if (it == params.end() || it->second == "none") return false;
  if (it->second == "full") return true;
  return absl::InvalidArgumentError(
      absl::StrCat("preallocation must be 'none' or 'full', not '", it->second, "'"));
}
}  // namespace

uint64_t RoundUpToGranularity(uint64_t bytes) {
  return (bytes + kSizeGranularity - 1) / kSizeGranularity * kSizeGranularity;
}

// ---------------------------------------------------------------------------------------------
// Options, open, sweep.

StatusOr<LocalPoolOptions> ParseLocalPoolConfig(const PoolConfig& config) {
  LocalPoolOptions out;
  out.name = config.name.empty() ? "local" : config.name;
  for (const auto& [k, v] : config.options) {
    if (k == "root") {
      out.root = v;
    } else if (k == "reflink") {
      if (v == "auto") out.reflink = LocalPoolOptions::Reflink::kAuto;
      else if (v == "on") out.reflink = LocalPoolOptions::Reflink::kOn;
      else if (v == "off") out.reflink = LocalPoolOptions::Reflink::kOff;
      else return absl::InvalidArgumentError(
          absl::StrCat("local pool '", out.name, "': reflink must be auto|on|off, not '", v, "'"));
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "local pool '", out.name, "': unknown option '", k, "' (known: root, reflink)"));
    }
  }
  if (out.root.empty() || out.root.front() != '/')
    return absl::InvalidArgumentError(absl::StrCat(
        "local pool '", out.name, "': root must be an absolute directory, got '", out.root, "'"));
  return out;
}

StatusOr<std::shared_ptr<Pool>> OpenLocalPool(const LocalPoolOptions& options) {
  if (options.root.empty() || options.root.front() != '/')
    return absl::InvalidArgumentError(
        absl::StrCat("local pool root must be absolute, got '", options.root, "'"));
  RETURN_IF_ERROR(fs::MakeDirs(options.root, 0755));
  char* real = ::realpath(options.root.c_str(), nullptr);
  if (!real) return LastErrnoStatus(absl::StrCat("realpath ", options.root));
  std::string root = real;
  ::free(real);

  Layout layout(root);
  if (!Exists(layout.marker())) {
    for (const auto& e : ListDir(root)) {
      if (e == "lost+found" || e == ".lock" || e.starts_with(".vdisk-pool")) continue;
      return absl::FailedPreconditionError(absl::StrCat(
          "local pool root ", root, " is a non-empty directory without a .vdisk-pool marker; "
          "refusing to take it over (use an empty directory)"));
    }
  }
  for (const auto& d : {layout.volumes_dir(), layout.snapshots_dir(), layout.volume_meta_dir(),
                        layout.snapshot_meta_dir(), layout.volume_names_dir(),
                        layout.snapshot_names_dir(), layout.staging_dir()})
    RETURN_IF_ERROR(fs::MakeDirs(d, d == layout.volumes_dir() ? 0711 : 0700));

  bool reflink = false;
  if (options.reflink != LocalPoolOptions::Reflink::kOff) {
    ASSIGN_OR_RETURN(reflink, ProbeReflink(layout.staging_dir()));
    if (!reflink && options.reflink == LocalPoolOptions::Reflink::kOn)
      return absl::FailedPreconditionError(absl::StrCat(
          "local pool root ", root, " is on a file system without reflink (reflink=on); use "
          "XFS with reflink=1 or btrfs"));
  }
  auto pool = std::make_shared<LocalPool>(options, root, reflink);
  RETURN_IF_ERROR(pool->Init());
  spdlog::info("local pool '{}' at {} (reflink={})", options.name, root, reflink);
  return std::static_pointer_cast<Pool>(pool);
}

LocalPool::LocalPool(LocalPoolOptions options, std::string root, bool reflink)
    : options_(std::move(options)),
      layout_(std::move(root)),
      meta_(layout_),
      volume_names_(layout_.volume_names_dir()),
      snapshot_names_(layout_.snapshot_names_dir()),
      reflink_(reflink) {}

Status LocalPool::Init() {
  struct stat root;
  if (::stat(layout_.root().c_str(), &root) != 0) return LastErrnoStatus("stat " + layout_.root());
  root_dev_ = root.st_dev;
  ASSIGN_OR_RETURN(FileLock lock, LockPool());
  if (!Exists(layout_.marker()))
    RETURN_IF_ERROR(fs::WriteFileAtomic(
        layout_.marker(), absl::StrCat("{\"format\": ", kLayoutFormat, "}\n"), 0644));
  auto marker = fs::ReadFile(layout_.marker());
  if (!marker.ok()) return marker.status();
  auto j = nlohmann::json::parse(*marker, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("format") ||
      !j["format"].is_number_integer() || j["format"].get<int>() != kLayoutFormat)
    return absl::FailedPreconditionError(absl::StrCat(
        layout_.marker(), " has an unsupported format (this vdisk reads format ", kLayoutFormat,
        ")"));
  ASSIGN_OR_RETURN(max_volume_bytes_, ProbeMaxFileSize(layout_.staging_dir(), kSizeGranularity));
  return Sweep();
}

Status LocalPool::CheckVolumeSize(uint64_t size_bytes) const {
  if (size_bytes <= max_volume_bytes_) return Status();
  return absl::OutOfRangeError(absl::StrCat("volume size ", size_bytes, " exceeds the largest file the file system of ",
                                            layout_.root(), " can hold (", max_volume_bytes_, " bytes)"));
}

Status LocalPool::Sweep() const {
  // 1. Staging: builds whose intent nobody holds, directories without an intent, removals.
  const std::string staging = layout_.staging_dir();
  std::vector<std::string> entries = ListDir(staging);
  std::set<std::string> live;
  for (const auto& e : entries) {
    if (!e.ends_with(".intent")) continue;
    std::string path = staging + "/" + e;
    auto lock = FileLock::TryAcquire(path, /*create=*/false);
    if (!lock.ok()) {
      if (absl::IsAborted(lock.status())) live.insert(e.substr(0, e.size() - 7));
      continue;
    }
    std::string dir = StagedBuild::DirOfIntent(path);
    spdlog::warn("local pool {}: removing interrupted build {}", layout_.root(), dir);
    RETURN_IF_ERROR(fs::RemoveAll(dir));
    ::unlink(path.c_str());
  }
  for (const auto& e : ListDir(staging)) {
    if (e.ends_with(".intent")) continue;
    if (live.contains(e)) continue;
    spdlog::warn("local pool {}: removing leftover {}/{}", layout_.root(), staging, e);
    RETURN_IF_ERROR(fs::RemoveAll(staging + "/" + e));
  }
  // 2. Temp files of interrupted atomic record writes.
  for (const auto& dir : {layout_.volume_meta_dir(), layout_.snapshot_meta_dir(),
                          layout_.volume_names_dir(), layout_.snapshot_names_dir()})
    for (const auto& e : ListDir(dir))
      if (e.find(".tmp.") != std::string::npos) ::unlink((dir + "/" + e).c_str());
  // 3. Data without a committed record (a crash between moving the data and writing the
  //    record, or between removing a record and its data).
  for (const auto& e : ListDir(layout_.volumes_dir())) {
    if (ValidateId(e).ok() && Exists(layout_.volume_meta(e))) continue;
    spdlog::warn("local pool {}: removing volume data without a record: {}", layout_.root(), e);
    RETURN_IF_ERROR(fs::RemoveAll(layout_.volumes_dir() + "/" + e));
  }
  for (const auto& e : ListDir(layout_.snapshots_dir())) {
    if (ValidateId(e).ok() && Exists(layout_.snapshot_meta(e))) continue;
    spdlog::warn("local pool {}: removing snapshot data without a record: {}", layout_.root(), e);
    RETURN_IF_ERROR(fs::RemoveAll(layout_.snapshots_dir() + "/" + e));
  }
  // 4. A crash in expand_volume after growing the image but before the record: finish it.
  ASSIGN_OR_RETURN(auto volumes, meta_.ListVolumes());
  for (auto& v : volumes) {
    auto st = StatImage(layout_.volume_image(v.id));
    if (!st.ok()) {
      spdlog::error("local pool {}: volume {} ({}) has no disk image: {}", layout_.root(), v.id,
                    v.name, st.status().ToString());
      continue;
    }
    if (st->size > v.size_bytes) {
      spdlog::warn("local pool {}: volume {} image is {} bytes, record says {}; completing the "
                   "interrupted expansion", layout_.root(), v.id, st->size, v.size_bytes);
      v.size_bytes = st->size;
      RETURN_IF_ERROR(meta_.WriteVolume(v));
    }
  }
  // 5. The name index agrees with the records.
  RETURN_IF_ERROR(CheckNameIndex('v'));
  return CheckNameIndex('s');
}

// ---------------------------------------------------------------------------------------------
// Builds and commits.

Status LocalPool::CheckNoLiveBuild(char kind, const std::string& name) const {
  const std::string staging = layout_.staging_dir();
  const std::string prefix = absl::StrCat(std::string(1, kind), "-");
  for (const auto& e : ListDir(staging)) {
    if (!e.starts_with(prefix) || !e.ends_with(".intent")) continue;
    std::string path = staging + "/" + e;
    auto lock = FileLock::TryAcquire(path, /*create=*/false);
    if (lock.ok()) {  // stale: its builder died
      fs::RemoveAll(StagedBuild::DirOfIntent(path)).IgnoreError();
      ::unlink(path.c_str());
      continue;
    }
    if (!absl::IsAborted(lock.status())) continue;
    if (StagedBuild::NameInIntent(path) == name)
      return absl::AbortedError(absl::StrCat("another operation is creating ",
                                             kind == 'v' ? "volume" : "snapshot", " '", name,
                                             "' right now; retry"));
  }
  return Status();
}

std::string LocalPool::FreshId(char kind, const std::string& name) const {
  for (;;) {
    std::string id = NewId(name);
    std::string staged = absl::StrCat(layout_.staging_dir(), "/", std::string(1, kind), "-", id);
    bool used = kind == 'v' ? Exists(layout_.volume_meta(id)) || Exists(layout_.volume_dir(id))
                            : Exists(layout_.snapshot_meta(id)) || Exists(layout_.snapshot_dir(id));
    if (!used && !Exists(staged) && !Exists(staged + ".intent")) return id;
  }
}

Status LocalPool::CommitVolume(StagedBuild& build, const Volume& v) const {
  RETURN_IF_ERROR(build.MoveTo(layout_.volume_dir(v.id)));
  Status s = fs::SyncDir(layout_.volumes_dir());
  if (s.ok()) s = fs::SyncDir(layout_.staging_dir());
  if (s.ok()) s = volume_names_.Put(v.name, v.id);  // before the record: see name_index.h
  if (s.ok()) s = meta_.WriteVolume(v);  // the commit point
  if (!s.ok()) {
    (void)volume_names_.Remove(v.name, v.id);
    fs::RemoveAll(layout_.volume_dir(v.id)).IgnoreError();
    return s;
  }
  build.Committed();
  return Status();
}

Status LocalPool::CommitSnapshot(StagedBuild& build, const Snapshot& snap) const {
  RETURN_IF_ERROR(build.MoveTo(layout_.snapshot_dir(snap.id)));
  Status s = fs::SyncDir(layout_.snapshots_dir());
  if (s.ok()) s = fs::SyncDir(layout_.staging_dir());
  if (s.ok()) s = snapshot_names_.Put(snap.name, snap.id);  // before the record
  if (s.ok()) s = meta_.WriteSnapshot(snap);  // the commit point
  if (!s.ok()) {
    (void)snapshot_names_.Remove(snap.name, snap.id);
    fs::RemoveAll(layout_.snapshot_dir(snap.id)).IgnoreError();
    return s;
  }
  build.Committed();
  return Status();
}

void LocalPool::RemoveData(const std::string& dir, const std::string& id) const {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string aside = absl::StrCat(layout_.staging_dir(), "/d-", id, "-",
                                   absl::StrFormat("%08x", rng() & 0xffffffff));
  if (::rename(dir.c_str(), aside.c_str()) != 0) {
    if (errno != ENOENT)
      spdlog::warn("local pool {}: cannot move {} aside: {}", layout_.root(), dir,
                   LastErrnoStatus("rename").ToString());
    aside = dir;
  }
  Status s = fs::RemoveAll(aside);
  if (!s.ok())
    spdlog::warn("local pool {}: removing {} failed (swept at next open): {}", layout_.root(),
                 aside, s.ToString());
}

// ---------------------------------------------------------------------------------------------
// Pool-wide queries.

Capabilities LocalPool::capabilities() const {
  Capabilities c;
  c.modes = {VolumeMode::kBlock, VolumeMode::kFilesystem};
  c.block_access_modes.assign(std::begin(kAllAccessModes), std::end(kAllAccessModes));
  c.filesystem_access_modes.assign(std::begin(kAllAccessModes), std::end(kAllAccessModes));
  c.size_granularity = kSizeGranularity;
  c.max_volume_bytes = max_volume_bytes_;
  c.snapshots = true;  // reflink, else a sparse copy made by the pool
  c.clone_from_snapshot = reflink_;
  c.clone_from_volume = reflink_;
  c.changed_extents = reflink_;
  c.online_expand = true;
  c.node_local = true;
  c.fast_clone = reflink_;
  c.mutable_params = true;
  return c;
}

Status LocalPool::validate_params(const Params& params) const {
  for (const auto& [k, v] : params) {
    if (k.find('/') != std::string::npos || k == "pool") continue;
    if (k == "preallocation") {
      RETURN_IF_ERROR(WantsPreallocation(params).status());
      continue;
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown StorageClass parameter '", k, "' for a local pool (known: preallocation)"));
  }
  return Status();
}

StatusOr<Capacity> LocalPool::capacity(const Params& params) {
  RETURN_IF_ERROR(validate_params(params));
  ASSIGN_OR_RETURN(FsSpace space, StatFs(layout_.root()));
  Capacity c;
  c.available_bytes = space.available_bytes / kSizeGranularity * kSizeGranularity;
  c.total_bytes = space.total_bytes;
  c.max_volume_bytes = max_volume_bytes_;
  return c;
}

Volume LocalPool::Decorate(Volume v, const std::optional<FsSpace>& space) const {
  auto st = StatImage(layout_.volume_image(v.id));
  if (!st.ok()) {
    v.condition = absl::StrCat("abnormal: disk image is missing or unreadable: ",
                               std::string(st.status().message()));
    return v;
  }
  if (space && st->allocated < v.size_bytes &&
      v.size_bytes - st->allocated > space->available_bytes) {
    v.condition = absl::StrCat(
        "thin: ", v.size_bytes - st->allocated, " of ", v.size_bytes,
        " bytes are not allocated yet and the file system has only ", space->available_bytes,
        " bytes free; writes may fail with ENOSPC");
  }
  return v;
}

// ---------------------------------------------------------------------------------------------
// Volumes.

StatusOr<Volume> LocalPool::create_volume(const VolumeRequest& req) {
  RETURN_IF_ERROR(ValidateName(req.name));
  if (req.size_bytes == 0) return absl::InvalidArgumentError("volume size must be > 0");
  if (req.size_bytes > UINT64_MAX - kSizeGranularity)
    return absl::OutOfRangeError("volume size too large");
  const uint64_t size = RoundUpToGranularity(req.size_bytes);
  RETURN_IF_ERROR(CheckVolumeSize(size));
  RETURN_IF_ERROR(validate_params(req.params));
  ASSIGN_OR_RETURN(bool preallocate, WantsPreallocation(req.params));
  const bool has_source = req.source.kind != VolumeSource::Kind::kNone;
  if (has_source) {
    RETURN_IF_ERROR(ValidateId(req.source.id));
    if (!req.pending && !reflink_)
      return absl::UnimplementedError(absl::StrCat(
          "local pool '", options_.name, "' cannot clone natively (no reflink on ",
          layout_.root(), "); create a pending volume and copy into it"));
  }

  Volume v;
  v.name = req.name;
  v.size_bytes = size;
  v.mode = req.mode;
  v.access_modes = req.access_modes;
  v.params = req.params;
  v.source = req.source;
  v.pending = req.pending;
  v.created_unix_ns = NowNs();

  int src_fd = -1;
  std::unique_ptr<StagedBuild> build;
  {
    ASSIGN_OR_RETURN(FileLock pool_lock, LockPool());
    ASSIGN_OR_RETURN(auto existing, FindVolumeByNameLocked(req.name));
    if (existing)
      return absl::AlreadyExistsError(
          absl::StrCat("volume name '", req.name, "' is taken (id ", existing->id, ")"));
    RETURN_IF_ERROR(CheckNoLiveBuild('v', req.name));
    if (has_source) {
      std::string src_image;
      uint64_t src_size = 0;
      if (req.source.kind == VolumeSource::Kind::kSnapshot) {
        ASSIGN_OR_RETURN(Snapshot s, meta_.ReadSnapshot(req.source.id));
        if (!s.ready)
          return absl::FailedPreconditionError(absl::StrCat("snapshot ", s.id, " is not ready"));
        src_image = layout_.snapshot_image(s.id);
        src_size = s.size_bytes;
      } else {
        ASSIGN_OR_RETURN(Volume s, meta_.ReadVolume(req.source.id));
        if (s.pending)
          return absl::FailedPreconditionError(
              absl::StrCat("source volume ", s.id, " is still pending"));
        src_image = layout_.volume_image(s.id);
        src_size = s.size_bytes;
      }
      if (size < src_size)
        return absl::OutOfRangeError(absl::StrCat("volume size ", size,
                                                  " is smaller than its source (", src_size, ")"));
      if (!req.pending) {
        src_fd = ::open(src_image.c_str(), O_RDONLY | O_CLOEXEC);
        if (src_fd < 0) return LastErrnoStatus(absl::StrCat("open ", src_image));
      }
    }
    v.id = FreshId('v', req.name);
    auto started = StagedBuild::Start(layout_, 'v', v.id, req.name);
    if (!started.ok()) {
      if (src_fd >= 0) ::close(src_fd);
      return started.status();
    }
    build = std::move(*started);
  }

  // Build the image outside the pool lock (a preallocation or a reflink may take a while).
  Status built = src_fd >= 0 ? ReflinkImage(src_fd, build->image(), size)
                             : CreateSparseImage(build->image(), size, preallocate);
  if (src_fd >= 0) ::close(src_fd);
  if (built.ok() && ::chmod(build->image().c_str(), 0660) != 0)
    built = LastErrnoStatus(absl::StrCat("chmod ", build->image()));
  RETURN_IF_ERROR(built);  // ~StagedBuild removes the staging entry

  {
    ASSIGN_OR_RETURN(FileLock pool_lock, LockPool());
    RETURN_IF_ERROR(CommitVolume(*build, v));
  }
  spdlog::info("local pool {}: created volume {} '{}' ({} bytes, {}{}{})", options_.name, v.id,
               v.name, v.size_bytes, ToString(v.mode), v.pending ? ", pending" : "",
               has_source ? absl::StrCat(", from ", req.source.id) : std::string());
  auto space = StatFs(layout_.root());
  return Decorate(std::move(v), space.ok() ? std::optional<FsSpace>(*space) : std::nullopt);
}

Status LocalPool::complete_volume(const std::string& id) {
  RETURN_IF_ERROR(ValidateId(id));
  ASSIGN_OR_RETURN(FileLock pool_lock, LockPool());
  ASSIGN_OR_RETURN(Volume v, meta_.ReadVolume(id));
  if (!v.pending) return Status();
  v.pending = false;
  return meta_.WriteVolume(v);
}

Status LocalPool::delete_volume(const std::string& id) {
  RETURN_IF_ERROR(ValidateId(id));
  {
    ASSIGN_OR_RETURN(FileLock pool_lock, LockPool());
    auto v = meta_.ReadVolume(id);
    if (!v.ok()) {
      if (absl::IsNotFound(v.status())) return Status();
      return v.status();
    }
    ASSIGN_OR_RETURN(auto loops, FindLoops(layout_.volume_image(id)));
    if (!loops.empty())
      return absl::FailedPreconditionError(
          absl::StrCat("volume ", id, " is attached as ", loops.front().path, "; detach it first"));
    ASSIGN_OR_RETURN(bool mounted, IsMountedElsewhere(layout_.volume_dir(id)));
    if (mounted)
      return absl::FailedPreconditionError(
          absl::StrCat("volume ", id, " directory is mounted; unpublish it first"));
    RETURN_IF_ERROR(meta_.RemoveVolume(id));  // the commit point of the deletion
    RETURN_IF_ERROR(volume_names_.Remove(v->name, id));
  }
  RemoveData(layout_.volume_dir(id), id);
  spdlog::info("local pool {}: deleted volume {}", options_.name, id);
  return Status();
}

StatusOr<Volume> LocalPool::get_volume(const std::string& id) {
  RETURN_IF_ERROR(ValidateId(id));
  ASSIGN_OR_RETURN(Volume v, meta_.ReadVolume(id));
  auto space = StatFs(layout_.root());
  return Decorate(std::move(v), space.ok() ? std::optional<FsSpace>(*space) : std::nullopt);
}

StatusOr<std::optional<Volume>> LocalPool::find_volume_by_name(const std::string& name) {
  RETURN_IF_ERROR(ValidateName(name));
  ASSIGN_OR_RETURN(auto found, FindVolumeByNameLocked(name));
  if (!found) return found;
  auto space = StatFs(layout_.root());
  return std::optional<Volume>(
      Decorate(std::move(*found), space.ok() ? std::optional<FsSpace>(*space) : std::nullopt));
}

StatusOr<std::vector<Volume>> LocalPool::list_volumes() {
  ASSIGN_OR_RETURN(auto all, meta_.ListVolumes());
  auto space = StatFs(layout_.root());
  std::optional<FsSpace> sp = space.ok() ? std::optional<FsSpace>(*space) : std::nullopt;
  for (auto& v : all) v = Decorate(std::move(v), sp);
  return all;
}

StatusOr<uint64_t> LocalPool::expand_volume(const std::string& id, uint64_t new_size_bytes) {
  RETURN_IF_ERROR(ValidateId(id));
  if (new_size_bytes == 0) return absl::InvalidArgumentError("new size must be > 0");
  if (new_size_bytes > UINT64_MAX - kSizeGranularity)
    return absl::OutOfRangeError("volume size too large");
  const uint64_t size = RoundUpToGranularity(new_size_bytes);
  RETURN_IF_ERROR(CheckVolumeSize(size));
  ASSIGN_OR_RETURN(FileLock pool_lock, LockPool());
  ASSIGN_OR_RETURN(Volume v, meta_.ReadVolume(id));
  if (size < v.size_bytes)
    return absl::OutOfRangeError(absl::StrCat("volume ", id, " is ", v.size_bytes,
                                              " bytes; cannot shrink it to ", size));
  RETURN_IF_ERROR(GrowImage(layout_.volume_image(id), size));
  if (size == v.size_bytes) return size;
  v.size_bytes = size;
  RETURN_IF_ERROR(meta_.WriteVolume(v));
  spdlog::info("local pool {}: expanded volume {} to {} bytes", options_.name, id, size);
  return size;
}

// QoS is enforced where the I/O flows (the node's vhost-user export, blockdev/qos): the pool
// only keeps the parameters with the volume.
Status LocalPool::set_mutable_params(const std::string& id, const Params& params) {
  RETURN_IF_ERROR(ValidateId(id));
  ASSIGN_OR_RETURN(FileLock pool_lock, LockPool());
  ASSIGN_OR_RETURN(Volume v, meta_.ReadVolume(id));
  if (v.mutable_params == params) return Status();
  v.mutable_params = params;
  return meta_.WriteVolume(v);
}

StatusOr<std::unique_ptr<Device>> LocalPool::open_volume(const std::string& id, bool read_only) {
  RETURN_IF_ERROR(ValidateId(id));
  ASSIGN_OR_RETURN(Volume v, meta_.ReadVolume(id));
  uring::FileDeviceOptions o;
  o.read_only = read_only;
  return uring::OpenFileDevice(layout_.volume_image(v.id), o);
}

}  // namespace vdisk::blockdev::local
