#include "backup/store/s3_store.h"

#include <ctime>
#include <deque>

#include "absl/strings/str_cat.h"
#include "backup/s3/part_size.h"
#include "backup/util/thread_pool.h"
#include "backup/util/work_queue.h"

namespace vdisk::backup {

namespace {

// "2024-05-01T12:34:56.000Z" -> seconds since the epoch (0 if unparseable).
std::time_t ParseIsoTime(const std::string& s) {
  std::tm tm{};
  if (!strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm)) return 0;
  return timegm(&tm);
}

struct Shared {
  std::unique_ptr<s3::S3Client> client;
  std::unique_ptr<ThreadPool> pool;
  std::unique_ptr<Budget> parts_budget;
};

class S3Writer : public ObjectWriter {
 public:
  S3Writer(std::shared_ptr<Shared> shared, std::string key, uint64_t part_size)
      : shared_(std::move(shared)), key_(std::move(key)), part_size_(part_size) {
    current_ = std::make_shared<std::string>();
    current_->reserve(part_size_);
  }
  ~S3Writer() override {
    if (!finished_) Abort();
  }

  Status Append(std::string_view data) override {
    if (finished_) return absl::FailedPreconditionError("writer already finished");
    RETURN_IF_ERROR(group_.error());
    while (!data.empty()) {
      size_t room = part_size_ - current_->size();
      size_t n = std::min(room, data.size());
      current_->append(data.substr(0, n));
      data.remove_prefix(n);
      size_ += n;
      if (current_->size() == part_size_) RETURN_IF_ERROR(PartFull());
    }
    return Status();
  }

  Status Commit() override {
    if (finished_) return absl::FailedPreconditionError("writer already finished");
    finished_ = true;
    if (upload_id_.empty()) {
      // Small object: one PUT of the held parts and the tail.
      std::string all;
      all.reserve(size_);
      for (const auto& p : held_) all += *p;
      all += *current_;
      ReleaseHeld();
      return shared_->client->PutObject(key_, all);
    }
    if (!current_->empty() || parts_.empty()) {
      Status s = SubmitPart(std::move(current_), /*budgeted=*/false);
      if (!s.ok()) {
        AbortUpload();
        return s;
      }
    }
    Status s = group_.Wait();
    if (!s.ok()) {
      AbortUpload();
      return s;
    }
    s = shared_->client->CompleteMultipartUpload(
        key_, upload_id_, std::vector<s3::CompletedPart>(parts_.begin(), parts_.end()));
    if (!s.ok()) AbortUpload();
    return s;
  }

  void Abort() override {
    finished_ = true;
    ReleaseHeld();
    if (!upload_id_.empty()) AbortUpload();
  }

  uint64_t size() const override { return size_; }

 private:
  // A part is full: hold the first few (an object that ends soon is one PUT, saving the
  // create/complete round trips), then start the multipart upload and stream.
  Status PartFull() {
    std::shared_ptr<std::string> part = std::move(current_);
    current_ = std::make_shared<std::string>();
    current_->reserve(part_size_);
    shared_->parts_budget->Acquire(1);
    if (upload_id_.empty()) {
      held_.push_back(std::move(part));
      if (held_.size() < kHoldParts) return Status();
      ASSIGN_OR_RETURN(upload_id_, shared_->client->CreateMultipartUpload(key_));
      std::vector<std::shared_ptr<std::string>> held = std::move(held_);
      held_.clear();
      for (auto& h : held) RETURN_IF_ERROR(SubmitPart(std::move(h), /*budgeted=*/true));
      return Status();
    }
    return SubmitPart(std::move(part), /*budgeted=*/true);
  }

  // Uploads `data` as the next part on the shared pool. `budgeted`: a parts-budget unit is
  // already held for it (released when the upload ends).
  Status SubmitPart(std::shared_ptr<std::string> data, bool budgeted) {
    const int number = static_cast<int>(parts_.size()) + 1;
    if (static_cast<uint64_t>(number) > s3::kMaxParts)
      return absl::OutOfRangeError(absl::StrCat("object '", key_, "' needs more than 10,000 parts"));
    parts_.push_back({number, ""});
    if (!budgeted) shared_->parts_budget->Acquire(1);
    group_.Add();
    std::shared_ptr<Shared> shared = shared_;
    s3::CompletedPart* slot = &parts_.back();
    shared->pool->Submit([this, shared, data, number, slot] {
      auto etag = shared->client->UploadPart(key_, upload_id_, number, *data);
      shared->parts_budget->Release(1);
      if (etag.ok()) slot->etag = *etag;
      group_.Done(etag.status());
    });
    return Status();
  }

  void ReleaseHeld() {
    if (!held_.empty()) shared_->parts_budget->Release(held_.size());
    held_.clear();
  }

  void AbortUpload() {
    (void)group_.Wait();
    (void)shared_->client->AbortMultipartUpload(key_, upload_id_);
    upload_id_.clear();
  }

  std::shared_ptr<Shared> shared_;
  const std::string key_;
  const uint64_t part_size_;
  std::shared_ptr<std::string> current_;
  std::string upload_id_;
  static constexpr size_t kHoldParts = 4;
  std::vector<std::shared_ptr<std::string>> held_;  // full parts before the upload starts
  std::deque<s3::CompletedPart> parts_;  // deque: stable element addresses
  TaskGroup group_;
  uint64_t size_ = 0;
  bool finished_ = false;
};

class S3Store : public ObjectStore {
 public:
  S3Store(std::shared_ptr<Shared> shared, S3StoreOptions options)
      : shared_(std::move(shared)), options_(std::move(options)) {}

  std::string describe() const override {
    return absl::StrCat("s3://", options_.s3.bucket, "/", options_.prefix, " at ",
                        options_.s3.endpoint);
  }

  Status Check() override { return shared_->client->HeadBucket(); }
  Status CreateRoot() override { return shared_->client->CreateBucket(); }

  Status Put(const std::string& key, std::string_view data) override {
    return shared_->client->PutObject(Full(key), data);
  }
  StatusOr<std::string> Get(const std::string& key) override {
    return shared_->client->GetObject(Full(key));
  }
  StatusOr<std::string> GetRange(const std::string& key, uint64_t offset,
                                 uint64_t length) override {
    if (length == 0) return std::string();
    return shared_->client->GetObject(Full(key), offset, length);
  }
  StatusOr<uint64_t> Size(const std::string& key) override {
    ASSIGN_OR_RETURN(s3::ObjectInfo info, shared_->client->HeadObject(Full(key)));
    return info.size;
  }
  StatusOr<std::vector<StoredObject>> List(const std::string& prefix) override {
    ASSIGN_OR_RETURN(auto objects, shared_->client->ListObjects(Full(prefix)));
    std::vector<StoredObject> out;
    out.reserve(objects.size());
    for (auto& o : objects) out.push_back({o.key.substr(base_.size()), o.size});
    return out;
  }
  Status Delete(const std::string& key) override { return shared_->client->DeleteObject(Full(key)); }

  StatusOr<std::unique_ptr<ObjectWriter>> Create(const std::string& key,
                                                 uint64_t size_hint) override {
    ASSIGN_OR_RETURN(uint64_t part, s3::PartSizeFor(size_hint, options_.part_size));
    return std::unique_ptr<ObjectWriter>(new S3Writer(shared_, Full(key), part));
  }

  StatusOr<int> AbortStaleUploads(const std::string& prefix, std::chrono::seconds age) override {
    ASSIGN_OR_RETURN(auto uploads, shared_->client->ListMultipartUploads(Full(prefix)));
    const std::time_t now = std::time(nullptr);
    int aborted = 0;
    for (const auto& u : uploads) {
      std::time_t started = ParseIsoTime(u.initiated);
      if (started != 0 && now - started < age.count()) continue;
      RETURN_IF_ERROR(shared_->client->AbortMultipartUpload(u.key, u.upload_id));
      ++aborted;
    }
    return aborted;
  }

  unsigned parallelism() const override { return options_.concurrency; }

  void SetBase(std::string base) { base_ = std::move(base); }

 private:
  std::string Full(const std::string& key) const { return base_ + key; }

  std::shared_ptr<Shared> shared_;
  S3StoreOptions options_;
  std::string base_;  // prefix + '/' (or empty)
};

}  // namespace

StatusOr<std::unique_ptr<ObjectStore>> OpenS3Store(S3StoreOptions options) {
  auto shared = std::make_shared<Shared>();
  ASSIGN_OR_RETURN(shared->client, s3::S3Client::Create(options.s3));
  if (options.concurrency == 0) options.concurrency = 1;
  if (options.max_parts_in_flight < options.concurrency)
    options.max_parts_in_flight = options.concurrency;
  shared->pool = std::make_unique<ThreadPool>(options.concurrency);
  shared->parts_budget = std::make_unique<Budget>(options.max_parts_in_flight);
  std::string prefix = options.prefix;
  while (!prefix.empty() && prefix.front() == '/') prefix.erase(0, 1);
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  options.prefix = prefix;
  auto store = std::make_unique<S3Store>(shared, options);
  store->SetBase(prefix.empty() ? "" : prefix + "/");
  return std::unique_ptr<ObjectStore>(std::move(store));
}

}  // namespace vdisk::backup
