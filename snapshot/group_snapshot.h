// Group snapshots (CSI VolumeGroupSnapshot): snapshots of several volumes of one pool, meant as
// one point in time, whose members are ordinary snapshots (each restorable / clonable alone).
//
// Any pool that takes snapshots gets groups, built here from ordinary snapshots named
//     vdisk-group-<gid>-<i>-of-<n>
// where <gid> is derived from the group's name: a repeated create finds its members, an
// interrupted one (some members missing) is discarded and taken again, and no separate record
// is needed (the group's pool-local id is <gid>).
//
// The members are taken one after another while the writers of every member hold their write
// acknowledgements: the caller's GroupOptions::hold (csi/: the IoGates of the members this
// process exports), and, on pools with capabilities().write_holds (RBD), Pool::hold_writes,
// which reaches every process serving a member. A write the guest saw complete during the
// window cannot exist, so no member can hold a write that depends on one another member lacks:
// the set is crash-consistent, one point in time as far as any guest can tell ("held"). When
// some writer was not held (a kernel attachment, a librbd client that is not vdisk), the
// members are sequential points in time: each consistent, the set not ("sequential").
// CreateGroupSnapshot() reports which it was.
//
// Errors: INVALID_ARGUMENT (empty name or list, a volume named twice), NOT_FOUND (volume),
// ALREADY_EXISTS (the name is taken by a group of other volumes), FAILED_PRECONDITION (pool
// without snapshots, a pending volume), and the pool's. Thread-safe as the Pool is; callers
// serialise operations on one group name (csi/ does with OpLocks).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "blockdev/pool.h"
#include "common/status.h"

namespace vdisk::snapshot {

enum class GroupConsistency {
  kHeld,        // taken while every writer of every member held its write acknowledgements
  kSequential,  // some writer was not held: members are one after another
};
std::string_view ToString(GroupConsistency c);

struct GroupOptions {
  // Called once before the first member is taken, with the volume ids; the returned object
  // lives until the last member is taken (or the attempt fails). Sets *all_held when it holds
  // acknowledgements of every writer of every member (pools without write holds).
  std::function<StatusOr<std::shared_ptr<void>>(const std::vector<std::string>& volume_ids,
                                                bool* all_held)>
      hold;
  // How long a pool-wide write hold may last at most (its holders let go after it).
  std::chrono::milliseconds hold_lease{30000};
};

struct GroupResult {
  blockdev::GroupSnapshot group;
  GroupConsistency consistency = GroupConsistency::kSequential;
  bool existed = false;  // an earlier identical request had made it
};

StatusOr<GroupResult> CreateGroupSnapshot(blockdev::Pool& pool, const std::string& name,
                                          const std::vector<std::string>& volume_ids,
                                          const GroupOptions& options = {});

// NOT_FOUND if no such group (or none of its members is left).
StatusOr<blockdev::GroupSnapshot> GetGroupSnapshot(blockdev::Pool& pool, const std::string& id);

// Deletes the group's members and the group. Idempotent (OK if already gone).
Status DeleteGroupSnapshot(blockdev::Pool& pool, const std::string& id);

// The pool-local id of the group a snapshot belongs to ("" if none).
std::string GroupIdOf(const blockdev::Snapshot& snapshot);

}  // namespace vdisk::snapshot
