// Packs chunk blobs into pack objects of about `target_bytes` and uploads them: blobs stream
// into the open pack's ObjectWriter (for S3, parts upload in parallel as they fill); a full
// pack gets its trailer and is committed on a background thread while the next one fills.
// At most `max_committing` packs wait for their commit at once (bounded memory).
//
// Add() is thread-safe (serialised internally). A pack's chunks become durable only when its
// commit succeeds; `on_committed` is then called (on the committing thread) with its record.
// Errors: the first upload/commit error is returned by every later Add() and by Finish().
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "backup/repo/pack_format.h"
#include "backup/repo/repository.h"
#include "backup/util/work_queue.h"

namespace vdisk::backup {

class PackWriter {
 public:
  PackWriter(const Repository& repo, uint64_t target_bytes,
             std::function<void(const PackRecord&)> on_committed, unsigned max_committing = 2);
  ~PackWriter();  // aborts open uploads if Finish() was not called

  Status Add(const ChunkId& id, std::string_view blob, uint32_t raw_length);
  // Seals the open pack, waits for every commit; returns the records of all committed packs.
  StatusOr<std::vector<PackRecord>> Finish();

 private:
  struct Pending {
    std::unique_ptr<ObjectWriter> writer;
    PackRecord record;
  };
  Status StartPack();
  Status SealPack();  // mu_ held
  void CommitLoop();
  Status error();

  const Repository& repo_;
  const uint64_t target_;
  std::function<void(const PackRecord&)> on_committed_;
  std::mutex mu_;
  std::unique_ptr<ObjectWriter> writer_;
  PackRecord current_;
  WorkQueue<Pending> to_commit_;
  std::thread committer_;
  std::mutex result_mu_;
  Status error_;
  std::vector<PackRecord> committed_;
  bool finished_ = false;
};

}  // namespace vdisk::backup
