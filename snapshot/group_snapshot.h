// Group snapshots (CSI VolumeGroupSnapshot): snapshots of several volumes of one pool, meant as
// one point in time, whose members are ordinary snapshots (each restorable / clonable alone).
//
// A pool with capabilities().atomic_group_snapshots takes the group itself at one point in time
// (RBD: exclusive locks on every member image held across the member snapshots).
//
// Any other pool that takes snapshots gets a group built here from ordinary snapshots named
//     vdisk-group-<gid>-<i>-of-<n>
// where <gid> is derived from the group's name: a repeated create finds its members, an
// interrupted one (some members missing) is discarded and taken again, and no separate record
// is needed (the group's pool-local id is <gid>). The members are taken one after another
// while GroupOptions::hold is in force; a holder that stops write acknowledgements of every
// member for that time (csi/: IoGate::Hold on the members' vhost-user exports) makes the set
// crash-consistent: no write the guest saw complete during the window is missing from a member
// that another member's data may depend on. Without a holder the members are sequential points
// in time (each consistent, the set not). CreateGroupSnapshot() reports which it was.
//
// Errors: INVALID_ARGUMENT (empty name or list, a volume named twice), NOT_FOUND (volume),
// ALREADY_EXISTS (the name is taken by a group of other volumes), FAILED_PRECONDITION (pool
// without snapshots, a pending volume), and the pool's. Thread-safe as the Pool is; callers
// serialise operations on one group name (csi/ does with OpLocks).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "blockdev/pool.h"
#include "common/status.h"

namespace vdisk::snapshot {

enum class GroupConsistency {
  kAtomic,      // the pool took one point in time
  kHeld,        // members taken while the holder held acknowledgements of writes to all of them
  kSequential,  // members taken one after another, nothing held
};
std::string_view ToString(GroupConsistency c);

struct GroupOptions {
  // For groups built here: called once before the first member is taken, with the volume ids;
  // the returned object lives until the last member is taken (or the attempt fails). Return
  // true in *all_held if acknowledgements of writes to every member are held meanwhile.
  std::function<StatusOr<std::shared_ptr<void>>(const std::vector<std::string>& volume_ids,
                                                bool* all_held)>
      hold;
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
