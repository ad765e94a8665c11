#include "blockdev/nfs/unstable_log.h"

namespace vdisk::blockdev::nfs {

void UnstableLog::Count(const Entry& e, int delta) {
  if (e.state == State::kDue) due_ += delta;
  else if (e.state == State::kResending) resending_ += delta;
  else if (e.commit == 0) uncovered_ += delta;
}

uint64_t UnstableLog::Add(uint64_t offset, uint32_t length, std::unique_ptr<char[]> data,
                          WriteVerifier verifier) {
  Observe(verifier);
  const uint64_t id = next_id_++;
  Entry& e = entries_[id];
  e.id = id;
  e.offset = offset;
  e.length = length;
  if (data) bytes_ += length;
  e.data = std::move(data);
  e.verifier = verifier;
  Count(e, +1);
  return id;
}

void UnstableLog::Observe(WriteVerifier verifier) {
  if (have_verifier_ && verifier == verifier_) return;
  have_verifier_ = true;
  verifier_ = verifier;
  for (auto& [id, e] : entries_)
    if (e.state == State::kWritten && e.verifier != verifier) {
      Count(e, -1);
      e.state = State::kDue;
      e.commit = 0;
      Count(e, +1);
    }
}

std::vector<UnstableLog::Entry*> UnstableLog::TakeResends() {
  std::vector<Entry*> out;
  if (due_ == 0) return out;
  for (auto& [id, e] : entries_)
    if (e.state == State::kDue) {
      Count(e, -1);
      e.state = State::kResending;
      Count(e, +1);
      out.push_back(&e);
    }
  return out;
}

void UnstableLog::Resent(uint64_t id, bool stable, WriteVerifier verifier) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  if (stable) {
    Drop(id);
    return;
  }
  Entry& e = it->second;
  Count(e, -1);
  e.state = State::kWritten;
  e.verifier = verifier;
  e.commit = 0;
  Count(e, +1);
  Observe(verifier);
}

void UnstableLog::Drop(uint64_t id) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  Count(it->second, -1);
  if (it->second.data) bytes_ -= it->second.length;
  entries_.erase(it);
}

uint64_t UnstableLog::StartCommit() {
  if (uncovered_ == 0) return 0;
  const uint64_t round = next_round_++;
  for (auto& [id, e] : entries_)
    if (e.state == State::kWritten && e.commit == 0) {
      Count(e, -1);
      e.commit = round;
      Count(e, +1);
    }
  return round;
}

void UnstableLog::CommitDone(uint64_t round, WriteVerifier verifier) {
  Observe(verifier);  // a new verifier marks older entries due
  for (auto it = entries_.begin(); it != entries_.end();) {
    Entry& e = it->second;
    if (e.commit == round && e.state == State::kWritten && e.verifier == verifier) {
      Count(e, -1);
      if (e.data) bytes_ -= e.length;
      it = entries_.erase(it);
      continue;
    }
    if (e.commit == round) {
      Count(e, -1);
      e.commit = 0;
      Count(e, +1);
    }
    ++it;
  }
}

void UnstableLog::CommitFailed(uint64_t round) {
  for (auto& [id, e] : entries_)
    if (e.commit == round) {
      Count(e, -1);
      e.commit = 0;
      Count(e, +1);
    }
}

bool UnstableLog::Durable(uint64_t upto) const {
  return entries_.empty() || entries_.begin()->first > upto;
}

}  // namespace vdisk::blockdev::nfs
