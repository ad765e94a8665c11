// Verification of a repository.
//
// Metadata verify: every selected manifest opens, every chunk it references is in the index,
// every indexed pack exists with the indexed size, and every referenced blob lies inside its
// pack. Deep verify additionally downloads the referenced blobs (all, or a random sample of
// `sample_percent` of them) and decodes each one (AES-GCM tag, zstd, keyed hash), and checks
// each read pack's trailer against the index.
//
// Problems are reported, not returned as errors: the call fails only when the repository
// cannot be read at all. Holds a shared lock.
#pragma once

#include <atomic>
#include <string>
#include <vector>

#include "backup/pipeline/progress.h"
#include "backup/repo/lock.h"
#include "backup/repo/repository.h"

namespace vdisk::backup {

struct VerifyOptions {
  std::vector<std::string> backups;  // ids/prefixes; empty = every backup
  bool deep = false;
  double sample_percent = 100;       // deep: share of referenced chunks to read
  unsigned parallel = 0;             // 0 = the store's parallelism
  LockOptions lock;
  ProgressFn progress;
  const std::atomic<bool>* cancel = nullptr;
};

struct VerifyProblem {
  std::string backup;  // empty for repository-wide problems
  std::string disk;
  uint64_t offset = 0;
  std::string chunk;   // chunk id (hex) or pack name
  std::string message;
};

struct VerifyResult {
  uint64_t backups = 0;
  uint64_t chunks_referenced = 0;  // distinct
  uint64_t chunks_read = 0;        // deep: decoded
  uint64_t bytes_read = 0;
  uint64_t packs = 0;
  std::vector<VerifyProblem> problems;
  double seconds = 0;
  bool ok() const { return problems.empty(); }
};

StatusOr<VerifyResult> Verify(const Repository& repo, const VerifyOptions& options);

}  // namespace vdisk::backup
