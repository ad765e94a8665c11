// The local pool's name index: CSI name -> id of the committed volume (or snapshot) that holds
// it, one small JSON file per name, so a lookup by name reads one entry and one record instead
// of every record in the pool.
//
//   <root>/meta/names/{volumes,snapshots}/<hex SHA-256 of the name>.json  {"name":..,"id":..}
//
// Entries are written with fs::WriteFileAtomic (a reader sees the old entry or the new one).
// The pool writes a name's entry *before* the record that commits the object, and removes it
// *after* the record on deletion, so every committed record has its entry; an entry whose
// record does not exist (a crash between the two writes) means "free". The pool checks and
// rebuilds the index when it opens (LocalPool::Sweep). Readers need no lock; Put/Remove callers
// hold the pool lock. Thread-safe (no shared state).
#pragma once

#include <map>
#include <optional>
#include <string>

#include "common/status.h"

namespace vdisk::blockdev::local {

class NameIndex {
 public:
  explicit NameIndex(std::string dir) : dir_(std::move(dir)) {}

  const std::string& dir() const { return dir_; }

  // The id last indexed under `name`; nullopt if none. DATA_LOSS if the entry is unreadable or
  // names another name (never silently "absent").
  StatusOr<std::optional<std::string>> Lookup(const std::string& name) const;
  // Durable on return.
  Status Put(const std::string& name, const std::string& id) const;
  // Removes the entry if it still maps `name` to `id` (OK otherwise, and if absent).
  Status Remove(const std::string& name, const std::string& id) const;
  // Every readable entry, name -> id (for the check at open). Unreadable entries are removed:
  // the check rebuilds them from the records.
  StatusOr<std::map<std::string, std::string>> ReadAll() const;

 private:
  std::string EntryPath(const std::string& name) const;
  const std::string dir_;
};

}  // namespace vdisk::blockdev::local
