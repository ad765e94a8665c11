// The manifest of one backup: the disks it holds (geometry, chunk ids by offset, unallocated
// ranges, where the data came from and how its change map was obtained), its parent, its
// timestamps and the VM's Kubernetes manifests. Every manifest is complete on its own: restoring
// an incremental backup needs no parent.
//
// Stored as backups/<id>: zstd-compressed JSON sealed with AES-256-GCM (associated data binds
// it to its id). Chunk maps are a compact binary list inside the JSON (base64).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backup/repo/crypto.h"
#include "blockdev/extent.h"
#include "common/status.h"

namespace vdisk::backup {

// A data chunk of a disk: bytes [index * chunk_size, min(+chunk_size, size)) have id `id`.
// Chunks not listed read as zeroes (zero or unallocated) and restore as holes.
struct ChunkRef {
  uint32_t index = 0;
  ChunkId id;
  bool operator==(const ChunkRef&) const = default;
};

struct DiskStats {
  uint64_t bytes_read = 0;        // read from the source by this backup
  uint64_t bytes_new = 0;         // raw bytes of chunks uploaded by this backup
  uint64_t bytes_stored_new = 0;  // their size after compression + encryption
  uint64_t chunks_new = 0;
  uint64_t chunks_reused = 0;     // read, hashed, and found in the repository
  uint64_t chunks_unchanged = 0;  // taken from the parent without reading (change map)
  uint64_t chunks_zero = 0;       // read and found all-zero (stored as holes)
  bool operator==(const DiskStats&) const = default;
};

struct DiskBackup {
  std::string name;             // unique within the backup ("rootdisk", "pvc-data")
  std::string source;           // what was read (Device::describe()), no secrets
  std::string source_snapshot;  // snapshot the data came from (pool snapshot id / VolumeSnapshot)
  std::string pool;             // pool name, when the source was a pool snapshot
  std::string volume;           // pool volume id / PVC name, informational
  uint64_t size_bytes = 0;
  uint32_t block_size = 512;
  uint32_t chunk_size = 0;
  std::string change_map;  // how changed ranges were found (see FORMAT.md)
  std::vector<ChunkRef> chunks;        // sorted by index
  blockdev::ExtentList unallocated;    // source ranges reported unallocated
  DiskStats stats;
  bool operator==(const DiskBackup&) const = default;

  uint64_t chunk_count() const {
    return chunk_size ? (size_bytes + chunk_size - 1) / chunk_size : 0;
  }
  uint64_t data_bytes() const;  // bytes covered by data chunks
};

struct KubeObject {
  std::string file;       // file name it came from ("vm.yaml")
  std::string kind;       // of the first document, e.g. "VirtualMachine"
  std::string name;       // metadata.name of the first document
  std::string namespace_;
  std::string yaml;       // verbatim content
  bool operator==(const KubeObject&) const = default;
};

struct Manifest {
  std::string id;
  std::string group;   // retention group (VM name by default)
  std::string parent;  // parent backup id ("" for a full backup)
  std::string hostname;
  int64_t started_unix = 0;
  int64_t finished_unix = 0;
  std::map<std::string, std::string> tags;
  std::vector<DiskBackup> disks;
  std::vector<KubeObject> kubernetes;
  bool operator==(const Manifest&) const = default;

  const DiskBackup* disk(const std::string& name) const;
};

std::string EncodeManifest(const RepoKeys& keys, const Manifest& m);
// DATA_LOSS if it does not authenticate or parse.
StatusOr<Manifest> DecodeManifest(const RepoKeys& keys, const std::string& id,
                                  std::string_view data);

// JSON for `list` / `show` (no chunk maps unless with_chunks).
nlohmann::json ManifestToJson(const Manifest& m, bool with_chunks);

// A new backup id: "<UTC YYYYMMDDTHHMMSS.mmmZ>-<8 hex>", sorting by time (milliseconds).
std::string NewBackupId(int64_t unix_ms);

}  // namespace vdisk::backup
