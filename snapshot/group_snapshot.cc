#include "snapshot/group_snapshot.h"

#include <openssl/sha.h>

#include <algorithm>
#include <charconv>
#include <set>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "snapshot/snapshot_policy.h"
#include "spdlog/spdlog.h"

namespace vdisk::snapshot {

using blockdev::GroupSnapshot;
using blockdev::Pool;
using blockdev::Snapshot;

std::string_view ToString(GroupConsistency c) {
  switch (c) {
    case GroupConsistency::kHeld: return "held";
    case GroupConsistency::kSequential: return "sequential";
  }
  return "unknown";
}

namespace {

constexpr char kMemberPrefix[] = "vdisk-group-";
constexpr size_t kMemberPrefixLen = sizeof(kMemberPrefix) - 1;

// "g" + 96 bits of SHA-256 of the name: a stable pool-local id for the group.
std::string LocalGroupId(const std::string& name) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(name.data()), name.size(), md);
  return "g" + absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(md), 12));
}

std::string MemberName(const std::string& gid, size_t index, size_t count) {
  return absl::StrCat(kMemberPrefix, gid, "-", index, "-of-", count);
}

struct Member {
  size_t index = 0;
  size_t count = 0;
  Snapshot snap;
};

bool ParseSize(std::string_view s, size_t* out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

// "vdisk-group-<gid>-<i>-of-<n>" -> gid, i, n.
bool ParseMemberName(const std::string& name, std::string* gid, size_t* index, size_t* count) {
  if (!name.starts_with(kMemberPrefix)) return false;
  std::string_view rest = std::string_view(name).substr(kMemberPrefixLen);
  const size_t dash = rest.find('-');
  if (dash == std::string_view::npos) return false;
  const size_t of = rest.find("-of-", dash + 1);
  if (of == std::string_view::npos) return false;
  if (!ParseSize(rest.substr(dash + 1, of - dash - 1), index)) return false;
  if (!ParseSize(rest.substr(of + 4), count)) return false;
  *gid = std::string(rest.substr(0, dash));
  return *count > 0 && *index < *count;
}

// The members of a group built here, ordered by index.
StatusOr<std::vector<Member>> FindMembers(Pool& pool, const std::string& gid) {
  ASSIGN_OR_RETURN(std::vector<Snapshot> all, pool.list_snapshots());
  std::vector<Member> out;
  for (auto& s : all) {
    Member m;
    std::string g;
    if (ParseMemberName(s.name, &g, &m.index, &m.count) && g == gid) {
      m.snap = std::move(s);
      out.push_back(std::move(m));
    }
  }
  std::sort(out.begin(), out.end(), [](const Member& a, const Member& b) { return a.index < b.index; });
  return out;
}

// All members present, once each, and all agreeing on the count.
bool Complete(const std::vector<Member>& members) {
  if (members.empty()) return false;
  const size_t n = members.front().count;
  if (members.size() != n) return false;
  for (size_t i = 0; i < n; ++i)
    if (members[i].index != i || members[i].count != n) return false;
  return true;
}

GroupSnapshot FromMembers(const std::string& gid, const std::string& name, const std::vector<Member>& members) {
  GroupSnapshot g;
  g.id = gid;
  g.name = name;
  g.ready = Complete(members);
  for (const auto& m : members) {
    g.snapshots.push_back(m.snap);
    g.ready = g.ready && m.snap.ready;
    if (g.created_unix_ns == 0 || m.snap.created_unix_ns < g.created_unix_ns) g.created_unix_ns = m.snap.created_unix_ns;
  }
  return g;
}

std::multiset<std::string> Sources(const std::vector<Snapshot>& snaps) {
  std::multiset<std::string> out;
  for (const auto& s : snaps) out.insert(s.source_volume_id);
  return out;
}

Status CheckRequest(const std::string& name, const std::vector<std::string>& volume_ids) {
  if (name.empty()) return absl::InvalidArgumentError("group snapshot name is empty");
  if (volume_ids.empty()) return absl::InvalidArgumentError("a group snapshot needs at least one volume");
  std::set<std::string> seen;
  for (const auto& id : volume_ids) {
    if (id.empty()) return absl::InvalidArgumentError("empty volume id in a group snapshot");
    if (!seen.insert(id).second)
      return absl::InvalidArgumentError(absl::StrCat("volume ", id, " is named twice in the group"));
  }
  return Status();
}

Status DeleteMembers(Pool& pool, const std::vector<Snapshot>& snaps) {
  Status first;
  for (const auto& s : snaps) {
    Status d = pool.delete_snapshot(s.id);
    if (!d.ok() && first.ok()) first = d;
  }
  return first;
}

}  // namespace

std::string GroupIdOf(const Snapshot& snapshot) {
  std::string gid;
  size_t index = 0, count = 0;
  return ParseMemberName(snapshot.name, &gid, &index, &count) ? gid : "";
}

StatusOr<GroupResult> CreateGroupSnapshot(Pool& pool, const std::string& name,
                                          const std::vector<std::string>& volume_ids,
                                          const GroupOptions& options) {
  RETURN_IF_ERROR(CheckRequest(name, volume_ids));
  const blockdev::Capabilities caps = pool.capabilities();
  const std::string gid = LocalGroupId(name);
  std::vector<Member> found;
  if (caps.snapshots) {  // a pool without snapshots holds no members
    ASSIGN_OR_RETURN(found, FindMembers(pool, gid));
  }
  if (!found.empty()) {
    std::vector<Snapshot> snaps;
    for (auto& m : found) snaps.push_back(m.snap);
    if (Complete(found)) {
      std::multiset<std::string> want(volume_ids.begin(), volume_ids.end());
      if (Sources(snaps) != want)
        return absl::AlreadyExistsError(
            absl::StrCat("a group snapshot named '", name, "' already exists for other volumes"));
      GroupResult out;
      out.group = FromMembers(gid, name, found);
      out.existed = true;
      return out;
    }
    // An interrupted attempt: its members are not one point in time with what we would add now.
    spdlog::warn("group snapshot '{}' ({}): discarding {} member(s) of an interrupted attempt", name, gid,
                 found.size());
    RETURN_IF_ERROR(DeleteMembers(pool, snaps));
  }
  for (const auto& id : volume_ids) {  // the snapshot policy's rules, before any writer is held
    ASSIGN_OR_RETURN(blockdev::Volume v, pool.get_volume(id));
    RETURN_IF_ERROR(CheckSnapshottable(pool, v));
  }

  GroupResult out;
  bool all_held = false;
  std::shared_ptr<void> held, pool_held;
  if (options.hold) {
    ASSIGN_OR_RETURN(held, options.hold(volume_ids, &all_held));
  }
  if (caps.write_holds) {
    auto h = pool.hold_writes(volume_ids, options.hold_lease);
    if (!h.ok()) {
      held.reset();
      return Annotate(h.status(), absl::StrCat("group snapshot '", name, "': holding the writers"));
    }
    pool_held = std::move(h->release);
    all_held = h->every_writer_held;  // the pool sees every writer, this process's included
    if (!all_held) spdlog::info("group snapshot '{}': not every writer holds: {}", name, h->detail);
  }
  std::vector<Member> made;
  for (size_t i = 0; i < volume_ids.size(); ++i) {
    auto snap = pool.create_snapshot(volume_ids[i], MemberName(gid, i, volume_ids.size()));
    if (!snap.ok()) {
      pool_held.reset();
      held.reset();
      std::vector<Snapshot> undo;
      for (auto& m : made) undo.push_back(m.snap);
      Status d = DeleteMembers(pool, undo);
      if (!d.ok())
        spdlog::warn("group snapshot '{}': removing members after a failure: {}", name, d.ToString());
      return Annotate(snap.status(), absl::StrCat("group snapshot '", name, "', volume ", volume_ids[i]));
    }
    made.push_back({i, volume_ids.size(), std::move(*snap)});
  }
  pool_held.reset();
  held.reset();
  out.consistency = all_held ? GroupConsistency::kHeld : GroupConsistency::kSequential;
  out.group = FromMembers(gid, name, made);
  spdlog::info("group snapshot '{}' ({}) of {} volume(s) in pool {}: {}", name, gid, made.size(), pool.name(),
               ToString(out.consistency));
  return out;
}

StatusOr<GroupSnapshot> GetGroupSnapshot(Pool& pool, const std::string& id) {
  if (id.empty()) return absl::InvalidArgumentError("group snapshot id is empty");
  ASSIGN_OR_RETURN(std::vector<Member> found, FindMembers(pool, id));
  if (found.empty()) return absl::NotFoundError(absl::StrCat("no group snapshot ", id));
  return FromMembers(id, "", found);
}

Status DeleteGroupSnapshot(Pool& pool, const std::string& id) {
  if (id.empty()) return absl::InvalidArgumentError("group snapshot id is empty");
  ASSIGN_OR_RETURN(std::vector<Member> found, FindMembers(pool, id));
  std::vector<Snapshot> snaps;
  for (auto& m : found) snaps.push_back(m.snap);
  return DeleteMembers(pool, snaps);
}

}  // namespace vdisk::snapshot
