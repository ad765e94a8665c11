#include "backup/repo/pack_writer.h"

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace vdisk::backup {

PackWriter::PackWriter(const Repository& repo, uint64_t target_bytes,
                       std::function<void(const PackRecord&)> on_committed,
                       unsigned max_committing)
    : repo_(repo),
      target_(target_bytes),
      on_committed_(std::move(on_committed)),
      to_commit_(max_committing) {
  committer_ = std::thread([this] { CommitLoop(); });
}

PackWriter::~PackWriter() {
  {
    std::lock_guard lock(mu_);
    if (writer_) writer_->Abort();
    writer_.reset();
  }
  to_commit_.Close();
  if (committer_.joinable()) committer_.join();
}

Status PackWriter::error() {
  std::lock_guard lock(result_mu_);
  return error_;
}

Status PackWriter::StartPack() {
  current_ = PackRecord{};
  current_.name = RandomHex(32);
  // Size hint: a pack ends after the blob that crosses the target (+ one chunk + trailer).
  const uint64_t hint = target_ + 2 * static_cast<uint64_t>(repo_.config().chunk_size) + (1 << 20);
  ASSIGN_OR_RETURN(writer_, repo_.store().Create(PackKey(current_.name), hint));
  return Status();
}

Status PackWriter::Add(const ChunkId& id, std::string_view blob, uint32_t raw_length) {
  RETURN_IF_ERROR(error());
  std::lock_guard lock(mu_);
  if (finished_) return absl::FailedPreconditionError("pack writer finished");
  if (!writer_) RETURN_IF_ERROR(StartPack());
  PackEntry e;
  e.id = id;
  e.offset = writer_->size();
  e.length = static_cast<uint32_t>(blob.size());
  e.raw_length = raw_length;
  Status s = writer_->Append(blob);
  if (!s.ok()) {
    writer_->Abort();
    writer_.reset();
    return s;
  }
  current_.entries.push_back(e);
  if (writer_->size() >= target_) RETURN_IF_ERROR(SealPack());
  return Status();
}

Status PackWriter::SealPack() {
  std::string tail = EncodePackTail(repo_.keys(), current_.name, current_.entries);
  Status s = writer_->Append(tail);
  if (!s.ok()) {
    writer_->Abort();
    writer_.reset();
    return s;
  }
  current_.size = writer_->size();
  to_commit_.Push(Pending{std::move(writer_), std::move(current_)});
  writer_.reset();
  current_ = PackRecord{};
  return Status();
}

void PackWriter::CommitLoop() {
  while (auto p = to_commit_.Pop()) {
    if (!error().ok()) {
      p->writer->Abort();
      continue;
    }
    Status s = p->writer->Commit();
    if (!s.ok()) {
      spdlog::warn("pack {} upload failed: {}", p->record.name, s.ToString());
      std::lock_guard lock(result_mu_);
      if (error_.ok()) error_ = Annotate(s, absl::StrCat("uploading pack ", p->record.name));
      continue;
    }
    if (on_committed_) on_committed_(p->record);
    std::lock_guard lock(result_mu_);
    committed_.push_back(std::move(p->record));
  }
}

StatusOr<std::vector<PackRecord>> PackWriter::Finish() {
  {
    std::lock_guard lock(mu_);
    finished_ = true;
    if (writer_ && error().ok()) RETURN_IF_ERROR(SealPack());
  }
  to_commit_.Close();
  if (committer_.joinable()) committer_.join();
  RETURN_IF_ERROR(error());
  std::lock_guard lock(result_mu_);
  return committed_;
}

}  // namespace vdisk::backup
