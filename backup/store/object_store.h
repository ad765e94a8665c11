// ObjectStore — the flat key/value namespace a backup repository lives in: a directory
// (file://) or an S3 bucket prefix (s3://). Keys are relative ("packs/ab/abcd...") and use '/'
// as separator; the store maps them under its root/prefix.
//
// Contract: Put and ObjectWriter::Commit make an object appear whole or not at all (no reader
// ever sees a partial object); a crash mid-write leaves at most invisible debris (a temp file,
// an incomplete multipart upload) that AbortStaleUploads() cleans. Thread-safe: all methods
// and distinct ObjectWriters may be used from many threads; one ObjectWriter belongs to one
// thread at a time.
//
// Errors: NOT_FOUND missing key (or missing root/bucket from Check), UNAVAILABLE the backend
// could not be reached, PERMISSION_DENIED access refused, DATA_LOSS short reads.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace vdisk::backup {

struct StoredObject {
  std::string key;
  uint64_t size = 0;
};

// Streams one object. Append may block to bound memory (S3: parts in flight).
class ObjectWriter {
 public:
  virtual ~ObjectWriter() = default;  // aborts if neither Commit nor Abort ran
  virtual Status Append(std::string_view data) = 0;
  // Makes the object visible under its key. The writer is finished afterwards.
  virtual Status Commit() = 0;
  virtual void Abort() = 0;
  virtual uint64_t size() const = 0;
};

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;

  // "file:///path" or "s3://bucket/prefix at endpoint"; never contains credentials.
  virtual std::string describe() const = 0;
  // Checks the root/bucket exists and is reachable (NOT_FOUND, PERMISSION_DENIED, UNAVAILABLE).
  virtual Status Check() = 0;
  // Creates the root directory / bucket if missing (used by `init --create`).
  virtual Status CreateRoot() = 0;

  virtual Status Put(const std::string& key, std::string_view data) = 0;
  virtual StatusOr<std::string> Get(const std::string& key) = 0;
  // Exactly `length` bytes at `offset` (DATA_LOSS / OUT_OF_RANGE if the object is shorter).
  virtual StatusOr<std::string> GetRange(const std::string& key, uint64_t offset,
                                         uint64_t length) = 0;
  virtual StatusOr<uint64_t> Size(const std::string& key) = 0;
  // Every object whose key starts with `prefix`, sorted by key.
  virtual StatusOr<std::vector<StoredObject>> List(const std::string& prefix) = 0;
  virtual Status Delete(const std::string& key) = 0;  // OK if absent

  // A streaming writer; `size_hint` (upper bound, 0 = unknown) sizes S3 multipart parts.
  virtual StatusOr<std::unique_ptr<ObjectWriter>> Create(const std::string& key,
                                                         uint64_t size_hint) = 0;

  // Removes invisible debris (temp files, incomplete multipart uploads) older than `age`
  // under `prefix`. Returns how many were removed.
  virtual StatusOr<int> AbortStaleUploads(const std::string& prefix,
                                          std::chrono::seconds age) = 0;

  // How many requests this store serves well in parallel (S3: connections; file: a few).
  virtual unsigned parallelism() const = 0;
};

}  // namespace vdisk::backup
