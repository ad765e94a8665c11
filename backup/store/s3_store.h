// ObjectStore on an S3 bucket prefix (s3://bucket/prefix). Large objects stream through
// multipart uploads whose parts upload in parallel on a shared pool of `concurrency`
// connections while the writer keeps filling the next part; at most `max_parts_in_flight`
// part buffers exist at once (bounded memory). Objects smaller than one part are a single PUT.
// Thread-safe.
#pragma once

#include <memory>
#include <string>

#include "backup/s3/s3_client.h"
#include "backup/store/object_store.h"

namespace vdisk::backup {

struct S3StoreOptions {
  s3::S3Config s3;
  std::string prefix;          // key prefix inside the bucket ("" or "a/b")
  unsigned concurrency = 16;   // parallel connections for part uploads
  uint64_t part_size = 8ull << 20;  // preferred part size (raised by PartSizeFor as needed)
  unsigned max_parts_in_flight = 24;
};

StatusOr<std::unique_ptr<ObjectStore>> OpenS3Store(S3StoreOptions options);

}  // namespace vdisk::backup
