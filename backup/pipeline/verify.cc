#include "backup/pipeline/verify.h"

#include <chrono>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "backup/pipeline/chunk_fetcher.h"

namespace vdisk::backup {

namespace {

using Clock = std::chrono::steady_clock;

struct Use {
  std::string backup, disk;
  uint64_t offset;
};

}  // namespace

StatusOr<VerifyResult> Verify(const Repository& repo, const VerifyOptions& options) {
  const auto start = Clock::now();
  VerifyResult r;
  ASSIGN_OR_RETURN(auto lock, RepoLock::Acquire(repo.store(), RepoLock::Mode::kShared,
                                                "backup verify", options.lock));
  std::vector<std::string> ids;
  if (options.backups.empty()) {
    ASSIGN_OR_RETURN(ids, repo.ListBackups());
  } else {
    for (const auto& ref : options.backups) {
      ASSIGN_OR_RETURN(std::string id, repo.ResolveBackupId(ref));
      ids.push_back(id);
    }
  }
  ASSIGN_OR_RETURN(LoadedIndex loaded, repo.LoadIndex(/*adopt_unindexed=*/false));
  const ChunkIndex& index = loaded.index;
  r.packs = index.packs().size();

  // Packs: present with the indexed size?
  ASSIGN_OR_RETURN(auto stored, repo.store().List(kPacksPrefix));
  std::unordered_map<std::string, uint64_t> stored_size;
  for (const auto& o : stored) stored_size[o.key] = o.size;
  std::vector<bool> pack_ok(index.packs().size(), true);
  for (size_t p = 0; p < index.packs().size(); ++p) {
    const auto& pk = index.packs()[p];
    auto it = stored_size.find(PackKey(pk.name));
    if (it == stored_size.end()) {
      pack_ok[p] = false;
      r.problems.push_back({"", "", 0, pk.name, "pack is missing from the store"});
    } else if (it->second != pk.size) {
      pack_ok[p] = false;
      r.problems.push_back({"", "", 0, pk.name,
                            absl::StrCat("pack has ", it->second, " bytes, the index says ", pk.size)});
    }
  }

  // Manifests and the chunks they reference.
  std::map<ChunkId, std::vector<Use>> uses;
  for (const auto& id : ids) {
    if (options.cancel && options.cancel->load()) return absl::CancelledError("verify cancelled");
    auto m = repo.ReadManifest(id);
    if (!m.ok()) {
      r.problems.push_back({id, "", 0, "", absl::StrCat("manifest: ", m.status().message())});
      continue;
    }
    ++r.backups;
    for (const auto& d : m->disks)
      for (const auto& c : d.chunks)
        uses[c.id].push_back({id, d.name, static_cast<uint64_t>(c.index) * d.chunk_size});
  }
  r.chunks_referenced = uses.size();
  auto report = [&](const ChunkId& cid, const std::string& msg) {
    for (const auto& u : uses[cid])
      r.problems.push_back({u.backup, u.disk, u.offset, cid.hex(), msg});
  };
  std::vector<FetchItem> items;
  for (const auto& [cid, list] : uses) {
    const ChunkLocation* loc = index.Find(cid);
    if (!loc) {
      report(cid, "chunk is missing from the repository index");
      continue;
    }
    if (!pack_ok[loc->pack]) {
      report(cid, absl::StrCat("chunk's pack ", index.packs()[loc->pack].name, " is missing or damaged"));
      continue;
    }
    if (loc->offset + loc->length > index.packs()[loc->pack].size) {
      report(cid, "chunk lies beyond the end of its pack");
      continue;
    }
    items.push_back({cid, *loc, 0});
  }
  if (!options.deep) {
    r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return r;
  }

  if (options.sample_percent < 100) {
    std::mt19937_64 rng{std::random_device{}()};
    std::shuffle(items.begin(), items.end(), rng);
    size_t keep = static_cast<size_t>(items.size() * std::max(0.0, options.sample_percent) / 100.0 + 0.999);
    items.resize(std::min(items.size(), keep));
  }
  // Each read pack's trailer must agree with the index.
  std::set<uint32_t> packs_read;
  for (const auto& it : items) packs_read.insert(it.location.pack);
  for (uint32_t p : packs_read) {
    const auto& pk = index.packs()[p];
    auto rec = repo.ReadPackTrailer(pk.name, pk.size);
    if (!rec.ok()) {
      r.problems.push_back({"", "", 0, pk.name, absl::StrCat("pack trailer: ", rec.status().message())});
      continue;
    }
    std::unordered_map<ChunkId, const PackEntry*, ChunkIdHash> own;
    for (const auto& e : rec->entries) own[e.id] = &e;
    for (const auto& [cid, loc] : index.chunks()) {
      if (loc.pack != p) continue;
      auto e = own.find(cid);
      if (e == own.end() || e->second->offset != loc.offset || e->second->length != loc.length)
        r.problems.push_back({"", "", 0, pk.name,
                              absl::StrCat("index entry for chunk ", cid.hex().substr(0, 16),
                                           " disagrees with the pack trailer")});
    }
  }
  std::atomic<uint64_t> fetched{0}, decoded{0};
  uint64_t total = 0;
  for (const auto& it : items) total += it.location.raw_length;
  ProgressTicker ticker(options.progress, [&] {
    Progress p;
    p.phase = "verify";
    p.bytes_total = total;
    p.bytes_done = decoded;
    p.bytes_transferred = fetched;
    p.elapsed_seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return p;
  });
  std::mutex mu;
  FetchOptions fo;
  fo.parallel = options.parallel ? options.parallel : repo.store().parallelism();
  Status s = FetchChunks(
      repo, index, items, fo,
      [&](const FetchItem& item, Status st, std::string&) -> Status {
        decoded += item.location.raw_length;
        std::lock_guard l(mu);
        ++r.chunks_read;
        if (!st.ok()) report(item.id, std::string(st.message()));
        return Status();
      },
      &fetched, options.cancel);
  ticker.Stop();
  RETURN_IF_ERROR(s);
  r.bytes_read = fetched;
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return r;
}

}  // namespace vdisk::backup
