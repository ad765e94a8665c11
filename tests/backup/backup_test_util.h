// Helpers for the backup integration tests: sparse disk images with known content, checksums,
// allocated bytes, scratch directories and repositories.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backup/pipeline/backup.h"
#include "backup/repo/repository.h"
#include "backup/store/object_store.h"

namespace vdisk::backup::testing {

enum class Fill { kRandom, kCompressible, kZero };

struct Region {
  uint64_t offset = 0;
  uint64_t length = 0;
  Fill fill = Fill::kRandom;
  uint64_t seed = 1;
};

// A fresh scratch directory under $VDISK_BINARY_DIR/test-tmp (or /tmp), removed by the caller.
std::string ScratchDir(const std::string& name);

// Creates a sparse file of `size` bytes and writes the regions (everything else is a hole).
void MakeDisk(const std::string& path, uint64_t size, const std::vector<Region>& regions);
// Writes regions into an existing file (in place).
void WriteRegions(const std::string& path, const std::vector<Region>& regions);

std::string Sha256File(const std::string& path);
uint64_t AllocatedBytes(const std::string& path);  // st_blocks * 512
uint64_t FileSize(const std::string& path);

RepoSecret Password(const std::string& pw);
InitOptions SmallRepo();  // fast scrypt, 1 MiB chunks, 8 MiB packs

// Runs a shell command; returns its exit status (and output in *out when given).
int Run(const std::string& cmd, std::string* out = nullptr);

// Backup sources: a device URI or file, or a pool snapshot (the pool's change map).
inline DiskSource UriDisk(std::string name, std::string uri) {
  DiskSource d;
  d.name = std::move(name);
  d.uri = std::move(uri);
  return d;
}
inline DiskSource PoolSnapshotDisk(std::string name, blockdev::PoolConfig pool, std::string snapshot) {
  DiskSource d;
  d.name = std::move(name);
  d.pool = std::move(pool);
  d.pool_snapshot = std::move(snapshot);
  return d;
}

// The vdisk CLI binary of this build.
std::string VdiskBinary();

// The `ceph` fixture's cluster directory ($VDISK_CEPH_DIR, empty outside ctest) and
// tests/env/ceph.sh (to stop and start radosgw).
std::string CephDir();
std::string CephScript();

}  // namespace vdisk::backup::testing
