// The iSCSI pool's journal: every volume and snapshot record of one pool in one JSON file on
// the target host (<backing_dir>/vdisk-pool.json, mode 0600), replaced atomically on each change
// (target_host.h), so a crash leaves the old state or the new one. The pool keeps the state in
// memory and writes it through; only the controller writes (one per pool).
//
// Record life cycles (only pending / ready objects are visible through the Pool):
//   volume    creating -> pending -> ready -> deleting -> (gone)
//   snapshot  creating -> ready -> deleting -> (gone)
// A volume's CHAP credentials (from the CreateVolume secrets) are kept in its record because
// tgtd forgets accounts when it restarts and the pool re-exports; the file is the target host's,
// like tgt's own targets.conf. Nothing here is logged.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "blockdev/iscsi/lun_address.h"
#include "blockdev/iscsi/target_host.h"
#include "blockdev/pool.h"
#include "common/status.h"

namespace vdisk::blockdev::iscsi {

enum class RecordState { kCreating, kPending, kReady, kDeleting };

struct VolumeRecord {
  std::string id, name;
  uint64_t size_bytes = 0;
  VolumeMode mode = VolumeMode::kBlock;
  std::vector<AccessMode> access_modes;
  Params params;
  VolumeSource source;
  RecordState state = RecordState::kCreating;
  int64_t created_unix_ns = 0;
  std::set<std::string> published;  // initiator names admitted by ControllerPublishVolume
  Chap chap;                        // required of initiators; empty: none
};

struct SnapshotRecord {
  std::string id, name, source_volume_id;
  uint64_t size_bytes = 0;
  RecordState state = RecordState::kCreating;
  int64_t created_unix_ns = 0;
};

struct JournalState {
  std::map<std::string, VolumeRecord> volumes;
  std::map<std::string, SnapshotRecord> snapshots;
};

std::string EncodeJournal(const JournalState& state);
// INVALID_ARGUMENT for a file that is not a journal of this format.
StatusOr<JournalState> DecodeJournal(const std::string& text);

class Journal {
 public:
  Journal(const TargetHost* host, std::string path) : host_(host), path_(std::move(path)) {}
  const std::string& path() const { return path_; }
  // An empty state when the file does not exist yet.
  StatusOr<JournalState> Load() const;
  Status Store(const JournalState& state) const;

 private:
  const TargetHost* host_;
  std::string path_;
};

}  // namespace vdisk::blockdev::iscsi
