// NfsPool: open, layout checks, sweep, capacity, and the build steps shared by volumes and
// snapshots (claims, staging, images).
#include "blockdev/nfs/nfs_pool.h"

#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <nlohmann/json.hpp>
#include <set>

#include "absl/strings/str_cat.h"
#include "blockdev/nfs/nfs_device.h"
#include "blockdev/nfs/nfs_pool_impl.h"
#include "blockdev/record_files.h"
#include "blockdev/sync_io.h"
#include "spdlog/spdlog.h"

namespace vdisk::blockdev::nfs {

namespace {

// The name in a record, or the status of reading it.
template <typename Record>
StatusOr<std::string> NameOf(StatusOr<Record> r) {
  if (!r.ok()) return r.status();
  return r->name;
}

constexpr int kHeartbeatSeconds = 15;

std::string HostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "unknown";
  return buf;
}

}  // namespace

uint64_t RoundUpToGranularity(uint64_t bytes) {
  return (bytes + kSizeGranularity - 1) / kSizeGranularity * kSizeGranularity;
}

StatusOr<std::shared_ptr<Pool>> OpenNfsPool(const NfsPoolOptions& options) {
  ASSIGN_OR_RETURN(auto session, Session::Connect(options.target, options.timeout_s * 1000));
  auto pool = std::make_shared<NfsPool>(options, std::shared_ptr<Session>(std::move(session)));
  RETURN_IF_ERROR(pool->Init());
  return std::static_pointer_cast<Pool>(pool);
}

NfsPool::NfsPool(NfsPoolOptions options, std::shared_ptr<Session> session)
    : options_(std::move(options)), session_(std::move(session)), store_(session_, options_.dir),
      owner_(absl::StrCat(HostName(), ":", ::getpid(), ":", RandomToken())) {}

Status NfsPool::Init() {
  const std::string where = absl::StrCat("nfs pool '", options_.name, "' at ",
                                         options_.target.Describe(), " dir ", options_.dir);
  RETURN_IF_ERROR(Annotate(session_->MkdirAll(options_.dir), where));
  auto marker = session_->ReadFile(store_.marker(), 4096);
  if (absl::IsNotFound(marker.status())) {
    ASSIGN_OR_RETURN(auto entries, session_->List(options_.dir));
    for (const auto& e : entries)
      if (e != "lost+found" && !e.starts_with(".vdisk"))
        return absl::FailedPreconditionError(absl::StrCat(
            where, " is a non-empty directory without a .vdisk-pool marker; refusing to take it "
            "over (use an empty directory, option dir=)"));
    nlohmann::json j;
    j["format"] = kRecordFormat;
    j["pool_uuid"] = RandomToken() + RandomToken();
    // Two first opens race: the link makes one marker win; both then read the same one.
    const std::string tmp = store_.path(".vdisk-pool.tmp-" + RandomToken());
    RETURN_IF_ERROR(Annotate(session_->WriteFile(tmp, j.dump() + "\n", 0644), where));
    Status linked = session_->Link(tmp, store_.marker());
    (void)session_->Unlink(tmp);
    if (!linked.ok() && !absl::IsAlreadyExists(linked)) return Annotate(linked, where);
    marker = session_->ReadFile(store_.marker(), 4096);
  }
  if (!marker.ok()) return Annotate(marker.status(), where);
  auto j = nlohmann::json::parse(*marker, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("format") ||
      !j["format"].is_number_integer() || j["format"].get<int>() != kRecordFormat)
    return absl::FailedPreconditionError(absl::StrCat(
        where, ": .vdisk-pool has an unsupported format (this vdisk reads format ", kRecordFormat,
        ")"));
  for (const auto& d : PoolStore::Directories())
    RETURN_IF_ERROR(Annotate(session_->MkdirAll(store_.path(d), d == "volumes" ? 0755 : 0700),
                             where));

  if (!options_.local_path.empty()) {
    auto local = std::make_unique<LocalExport>(options_.local_path);
    RETURN_IF_ERROR(local->Verify(store_.marker(), *marker));
    if (options_.reflink != NfsPoolOptions::Reflink::kOff) {
      ASSIGN_OR_RETURN(reflink_, local->ProbeReflink(store_.path("staging")));
      if (!reflink_ && options_.reflink == NfsPoolOptions::Reflink::kOn)
        return absl::FailedPreconditionError(absl::StrCat(
            where, ": reflink=on but the file system at local_path ", options_.local_path,
            " cannot reflink (use XFS with reflink=1 or btrfs)"));
    }
    local_ = std::move(local);
  }
  RETURN_IF_ERROR(Sweep());
  spdlog::info("{}: open (local_path={}, reflink={})", where,
               local_ ? options_.local_path : "none", reflink_);
  return Status();
}

// ---------------------------------------------------------------------------------------------
// Heartbeats, claims, builds.

NfsPool::Heartbeat::Heartbeat(PoolStore& store, char kind, std::string name) {
  thread_ = std::thread([this, &store, kind, name = std::move(name)] {
    std::unique_lock lock(mu_);
    while (!cv_.wait_for(lock, std::chrono::seconds(kHeartbeatSeconds), [this] { return stop_; })) {
      lock.unlock();
      Status s = store.Heartbeat(kind, name);
      if (!s.ok()) spdlog::warn("heartbeat of claim '{}': {}", name, s.ToString());
      lock.lock();
    }
  });
}

NfsPool::Heartbeat::~Heartbeat() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

Status NfsPool::ClaimName(char kind, const std::string& name, const std::string& id,
                          const std::function<StatusOr<bool>(const std::string&)>& committed) {
  const char* what = kind == 'v' ? "volume" : "snapshot";
  for (int attempt = 0; attempt < 3; ++attempt) {
    ASSIGN_OR_RETURN(bool claimed, store_.TryClaim(kind, name, id, owner_));
    if (claimed) return Status();
    ASSIGN_OR_RETURN(auto c, store_.ReadClaim(kind, name));
    if (!c) continue;  // released meanwhile
    ASSIGN_OR_RETURN(bool done, committed(c->id));
    if (done)
      return absl::AlreadyExistsError(
          absl::StrCat(what, " name '", name, "' is taken (id ", c->id, ")"));
    ASSIGN_OR_RETURN(bool stale, store_.IsStale(c->mtime_ns, options_.abandon_after_s));
    if (c->owner == owner_ || !stale)
      return absl::AbortedError(absl::StrCat("another operation is creating ", what, " '", name,
                                             "' right now (", c->owner, "); retry"));
    spdlog::warn("nfs pool {}: taking over the abandoned create of {} '{}' ({} by {})",
                 options_.name, what, name, c->id, c->owner);
    RemoveBuildDebris(kind, c->id);
    ASSIGN_OR_RETURN(auto again, store_.ReadClaim(kind, name));
    if (again && again->id == c->id) RETURN_IF_ERROR(store_.RemoveClaim(again->key));
  }
  return absl::AbortedError(absl::StrCat("could not claim ", what, " name '", name, "'; retry"));
}

void NfsPool::RemoveBuildDebris(char kind, const std::string& id) {
  for (const std::string& dir :
       {store_.staging(kind, id), kind == 'v' ? store_.volume_dir(id) : store_.snapshot_dir(id)}) {
    // The final directory only counts as debris while no record commits it.
    if (dir != store_.staging(kind, id)) {
      auto rec = kind == 'v' ? store_.ReadVolume(id).status() : store_.ReadSnapshot(id).status();
      if (!absl::IsNotFound(rec)) continue;
    }
    Status s = session_->RemoveAll(dir);
    if (!s.ok()) spdlog::warn("nfs pool {}: removing {}: {}", options_.name, dir, s.ToString());
  }
}

void NfsPool::RemoveData(const std::string& dir, const std::string& id) {
  const std::string aside = store_.path(absl::StrCat("staging/d-", id, "-", RandomToken()));
  Status moved = session_->Rename(dir, aside);
  if (absl::IsNotFound(moved)) return;
  Status s = session_->RemoveAll(moved.ok() ? aside : dir);
  if (!s.ok())
    spdlog::warn("nfs pool {}: removing {} failed (swept at the next open): {}", options_.name,
                 moved.ok() ? aside : dir, s.ToString());
}

Status NfsPool::DeleteObject(char kind, const std::string& id) {
  RETURN_IF_ERROR(ValidateId(id));
  const bool volume = kind == 'v';
  const char* what = volume ? "volume" : "snapshot";
  std::string name;
  {
    std::lock_guard lock(records_mu_);
    StatusOr<std::string> found = volume ? NameOf(store_.ReadVolume(id)) : NameOf(store_.ReadSnapshot(id));
    if (absl::IsNotFound(found.status())) return Status();
    RETURN_IF_ERROR(found.status());
    name = *found;
    RETURN_IF_ERROR(volume ? store_.RemoveVolumeRecord(id) : store_.RemoveSnapshotRecord(id));
  }
  Status released = store_.Release(kind, name, id);
  if (!released.ok())
    spdlog::warn("nfs pool {}: releasing the name of deleted {} {}: {}", options_.name, what, id,
                 released.ToString());
  RemoveData(volume ? store_.volume_dir(id) : store_.snapshot_dir(id), id);
  spdlog::info("nfs pool {}: deleted {} {}", options_.name, what, id);
  return Status();
}

Status NfsPool::BuildImage(const std::string& dir, uint64_t size, const std::string& reflink_from,
                           bool preallocate) {
  RETURN_IF_ERROR(session_->Mkdir(dir, 0755));
  const std::string image = JoinPath(dir, kDiskImage);
  RETURN_IF_ERROR(session_->CreateExclusive(image, 0660));
  if (!reflink_from.empty()) {
    if (!local_) return absl::InternalError("reflink without local_path");
    RETURN_IF_ERROR(local_->Reflink(reflink_from, image));
  }
  // SETATTR over NFS after any local change: sets the size and refreshes the server's cached
  // attributes of the file.
  RETURN_IF_ERROR(session_->Truncate(image, size));
  if (preallocate) {
    if (local_) {
      RETURN_IF_ERROR(local_->Preallocate(image, size));
      RETURN_IF_ERROR(session_->Truncate(image, size));
    } else {
      RETURN_IF_ERROR(ZeroFill(image, size));
    }
  }
  return Status();
}

Status NfsPool::ZeroFill(const std::string& image, uint64_t size) {
  ASSIGN_OR_RETURN(auto dev, OpenImage(image, /*read_only=*/false));
  constexpr unsigned kDepth = 16;
  constexpr uint64_t kChunk = 8ull << 20;
  ASSIGN_OR_RETURN(auto q, dev->open_queue(kDepth));
  Status error;
  for (uint64_t off = 0; off < size && error.ok(); off += kChunk) {
    q->write_zeroes(off, std::min(kChunk, size - off), [&error](Status s) {
      if (!s.ok() && error.ok()) error = std::move(s);
    });
    if (q->in_flight() >= kDepth) {
      auto n = q->poll(1, -1);
      if (!n.ok()) return n.status();
    }
  }
  Status flushed;
  q->flush([&flushed](Status s) { flushed = std::move(s); });
  RETURN_IF_ERROR(q->drain());
  RETURN_IF_ERROR(error);
  return flushed;
}

StatusOr<std::unique_ptr<Device>> NfsPool::OpenImage(const std::string& path, bool read_only) {
  NfsDeviceOptions o;
  o.read_only = read_only;
  if (local_) o.local_path = local_->Local(path);
  return OpenNfsDevice(session_, path, o);
}

// ---------------------------------------------------------------------------------------------
// Sweep: what interrupted operations left behind, judged by the heartbeats of their claims.

Status NfsPool::Sweep() {
  std::set<std::string> live;  // ids whose claim is fresh (a creator may be at work)
  ASSIGN_OR_RETURN(const int64_t now, store_.ServerNowNs());
  const int64_t abandon_ns = static_cast<int64_t>(options_.abandon_after_s) * 1000000000;
  for (char kind : {'v', 's'}) {
    ASSIGN_OR_RETURN(auto claims, store_.ListClaims(kind));
    for (const auto& c : claims) {
      const bool stale = now - c.mtime_ns > abandon_ns;
      if (!stale) {
        live.insert(c.id);
        continue;
      }
      bool committed = false;
      if (!c.id.empty()) {
        auto rec = kind == 'v' ? store_.ReadVolume(c.id).status()
                               : store_.ReadSnapshot(c.id).status();
        if (!absl::IsNotFound(rec)) committed = true;
      }
      if (committed) continue;
      spdlog::warn("nfs pool {}: removing the abandoned claim of '{}' ({})", options_.name,
                   c.name, c.id);
      if (!c.id.empty()) RemoveBuildDebris(kind, c.id);
      RETURN_IF_ERROR(store_.RemoveClaim(c.key));
    }
  }
  // Temporaries of interrupted record and claim writes, once older than abandon_after (a
  // writer renames or links its temporary within one call).
  for (const char* rel : {"meta/volumes", "meta/snapshots", "names", ""}) {
    ASSIGN_OR_RETURN(auto names, session_->List(store_.path(rel)));
    for (const auto& n : names) {
      if (!n.starts_with(".") || n.find(".tmp-") == std::string::npos) continue;
      const std::string p = store_.path(std::string(rel).empty() ? n : absl::StrCat(rel, "/", n));
      auto st = session_->StatIfExists(p);
      if (!st.ok() || !*st || now - (*st)->mtime_ns < abandon_ns) continue;
      (void)session_->Unlink(p);
    }
  }
  // Staging: builds nobody is working on, removals that stopped midway, temporaries.
  ASSIGN_OR_RETURN(auto staged, session_->List(store_.path("staging")));
  for (const auto& e : staged) {
    const bool build = e.size() > 2 && (e[0] == 'v' || e[0] == 's') && e[1] == '-';
    if (build && live.contains(e.substr(2))) continue;
    spdlog::warn("nfs pool {}: removing leftover staging/{}", options_.name, e);
    RETURN_IF_ERROR(session_->RemoveAll(store_.path("staging/" + e)));
  }
  // Data without a record and without a live claim (a crash between the rename into place and
  // the record, or between removing a record and its data).
  for (const char* kind : {"volumes", "snapshots"}) {
    ASSIGN_OR_RETURN(auto dirs, session_->List(store_.path(kind)));
    for (const auto& id : dirs) {
      if (live.contains(id)) continue;
      const bool is_volume = kind[0] == 'v';
      Status rec = !ValidateId(id).ok()  ? absl::NotFoundError("bad id")
                   : is_volume            ? store_.ReadVolume(id).status()
                                          : store_.ReadSnapshot(id).status();
      if (!absl::IsNotFound(rec)) continue;
      spdlog::warn("nfs pool {}: removing {}/{}: data without a record", options_.name, kind, id);
      RETURN_IF_ERROR(session_->RemoveAll(store_.path(absl::StrCat(kind, "/", id))));
    }
  }
  // A crash in expand_volume after growing the image but before the record: finish it.
  ASSIGN_OR_RETURN(auto volumes, store_.ListVolumes());
  for (auto& v : volumes) {
    auto st = session_->Stat(store_.volume_image(v.id));
    if (!st.ok()) {
      spdlog::error("nfs pool {}: volume {} ({}) has no disk image: {}", options_.name, v.id,
                    v.name, st.status().ToString());
      continue;
    }
    if (st->size > v.size_bytes) {
      spdlog::warn("nfs pool {}: volume {} image is {} bytes, record says {}; completing the "
                   "interrupted expansion", options_.name, v.id, st->size, v.size_bytes);
      v.size_bytes = st->size;
      RETURN_IF_ERROR(store_.WriteVolume(v));
    }
  }
  return Status();
}

// ---------------------------------------------------------------------------------------------
// Pool-wide queries.

Capabilities NfsPool::capabilities() const {
  Capabilities c;
  c.modes = {VolumeMode::kBlock, VolumeMode::kFilesystem};
  c.block_access_modes.assign(std::begin(kAllAccessModes), std::end(kAllAccessModes));
  c.filesystem_access_modes.assign(std::begin(kAllAccessModes), std::end(kAllAccessModes));
  // Nodes attach an NFS volume as its directory (a kernel NFS mount) or serve its image to a VM
  // through attach: vhost-user (a Filesystem PVC); none attaches the image as a block device.
  c.attach_modes = {VolumeMode::kFilesystem};
  c.attach_note = "NFS volumes are attached as a directory: use volumeMode Filesystem (with attach: "
                  "vhost-user for a VM disk served over libnfs)";
  c.size_granularity = kSizeGranularity;
  c.max_volume_bytes = 0;
  c.snapshots = true;  // reflink, else a sparse copy made by the pool
  c.clone_from_snapshot = reflink_;
  c.clone_from_volume = reflink_;
  c.changed_extents = reflink_;
  c.online_expand = true;
  c.node_local = false;
  c.fast_clone = reflink_;
  return c;
}

Status NfsPool::validate_params(const Params& params) const {
  return ParseNfsVolumeParams(params).status();
}

std::optional<FsSpace> NfsPool::Space() {
  auto s = session_->StatFs(options_.dir);
  if (!s.ok()) return std::nullopt;
  return *s;
}

StatusOr<Capacity> NfsPool::capacity(const Params& params) {
  RETURN_IF_ERROR(validate_params(params));
  ASSIGN_OR_RETURN(FsSpace space, session_->StatFs(options_.dir));
  Capacity c;
  c.available_bytes = space.available_bytes / kSizeGranularity * kSizeGranularity;
  c.total_bytes = space.total_bytes;
  c.max_volume_bytes = 0;
  return c;
}

Volume NfsPool::Decorate(Volume v, const std::optional<FsSpace>& space) {
  auto st = session_->Stat(store_.volume_image(v.id));
  if (!st.ok()) {
    v.condition = absl::StrCat("abnormal: disk image is missing or unreadable: ",
                               std::string(st.status().message()));
    return v;
  }
  if (space && st->used < v.size_bytes && v.size_bytes - st->used > space->available_bytes)
    v.condition = absl::StrCat(
        "thin: ", v.size_bytes - st->used, " of ", v.size_bytes,
        " bytes are not allocated yet and the export has only ", space->available_bytes,
        " bytes free; writes may fail with ENOSPC");
  return v;
}

}  // namespace vdisk::blockdev::nfs
