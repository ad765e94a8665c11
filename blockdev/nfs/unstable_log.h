// Writes an NFSv3 server acknowledged as UNSTABLE, kept until a COMMIT proves them durable.
//
// NFSv3 (RFC 1813, WRITE and COMMIT) lets a server answer a write before the data is on stable
// storage; COMMIT makes it durable. Both replies carry the server's write verifier, which
// changes when the server restarts: a write whose verifier differs from the COMMIT's may have
// been lost and must be sent again. That is what a kernel NFS client does with its dirty pages;
// the libnfs data path (nfs_queue.h) does it with this log: each completed unstable write keeps
// a copy of its data here until a COMMIT with the same verifier covers it.
//
// Entries get increasing ids in completion order. A flush is satisfied once no entry with an id
// at or below the last id at flush time is retained. Pure bookkeeping, no I/O; one thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

namespace vdisk::blockdev::nfs {

using WriteVerifier = uint64_t;

class UnstableLog {
 public:
  enum class State { kWritten, kDue, kResending };
  struct Entry {
    uint64_t id = 0;
    uint64_t offset = 0;
    uint32_t length = 0;
    std::unique_ptr<char[]> data;  // null: the write was all zeroes
    WriteVerifier verifier = 0;
    // kDue: to be sent again; kResending: handed out by TakeResends(), not acknowledged yet.
    State state = State::kWritten;
    uint64_t commit = 0;  // the COMMIT round covering it (0: none)
  };

  // A write of [offset, offset+length) completed UNSTABLE under `verifier`. Returns its id.
  // Also notes the verifier (see Observe()).
  uint64_t Add(uint64_t offset, uint32_t length, std::unique_ptr<char[]> data,
               WriteVerifier verifier);

  // A reply (WRITE or COMMIT) carried `verifier`: if it differs from the last one seen, every
  // retained entry written under another verifier is due to be sent again.
  void Observe(WriteVerifier verifier);

  // Entries due to be sent again (marked resending); the caller sends each and reports back.
  std::vector<Entry*> TakeResends();
  // A resent entry was acknowledged: UNSTABLE under `verifier` (kept), or stable (dropped).
  void Resent(uint64_t id, bool stable, WriteVerifier verifier);
  // A resend failed: the entry is dropped (its data may be lost; the caller reports it).
  void Drop(uint64_t id);

  // Starts a COMMIT round covering every retained entry that is not being resent or covered by
  // another round. Returns the round number, or 0 if there is nothing to cover.
  uint64_t StartCommit();
  // The COMMIT of `round` succeeded with `verifier`: covered entries written under it are
  // dropped, the others become due for resending.
  void CommitDone(uint64_t round, WriteVerifier verifier);
  // The COMMIT of `round` failed: its entries are uncovered again (a later round retries).
  void CommitFailed(uint64_t round);

  // True when every entry with id <= upto has been committed (or dropped).
  bool Durable(uint64_t upto) const;
  uint64_t last_id() const { return next_id_ - 1; }
  uint64_t bytes() const { return bytes_; }  // retained data bytes (zero writes count 0)
  size_t size() const { return entries_.size(); }
  bool has_uncovered() const { return uncovered_ > 0; }  // a new COMMIT round would cover some
  bool has_due() const { return due_ > 0; }              // TakeResends() would return some
  bool has_resends() const { return due_ + resending_ > 0; }

 private:
  void Count(const Entry& e, int delta);  // keeps the counters below in step

  std::map<uint64_t, Entry> entries_;  // by id
  int64_t uncovered_ = 0, due_ = 0, resending_ = 0;
  uint64_t next_id_ = 1;
  uint64_t next_round_ = 1;
  uint64_t bytes_ = 0;
  bool have_verifier_ = false;
  WriteVerifier verifier_ = 0;
};

}  // namespace vdisk::blockdev::nfs
