#include "backup/repo/chunk_codec.h"

#include <zstd.h>

#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"

namespace vdisk::backup {

namespace {

constexpr uint8_t kCodecRaw = 0;
constexpr uint8_t kCodecZstd = 1;

std::string Aad(const ChunkId& id) {
  std::string aad = "vdisk-chunk-v1|";
  aad.append(id.view());
  return aad;
}

struct CCtxDeleter {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct DCtxDeleter {
  void operator()(ZSTD_DCtx* c) const { ZSTD_freeDCtx(c); }
};

}  // namespace

void EncodeChunk(const RepoKeys& keys, const ChunkId& id, std::string_view data, int zstd_level,
                 std::string* blob) {
  thread_local std::unique_ptr<ZSTD_CCtx, CCtxDeleter> cctx(ZSTD_createCCtx());
  thread_local std::string plain;
  const size_t bound = ZSTD_compressBound(data.size());
  plain.resize(1 + bound);
  size_t n = ZSTD_compressCCtx(cctx.get(), plain.data() + 1, bound, data.data(), data.size(),
                               zstd_level);
  // Keep the compressed form only when it saves at least 1/32 of the chunk.
  if (!ZSTD_isError(n) && n < data.size() - data.size() / 32) {
    plain[0] = static_cast<char>(kCodecZstd);
    plain.resize(1 + n);
  } else {
    plain.resize(1 + data.size());
    plain[0] = static_cast<char>(kCodecRaw);
    std::memcpy(plain.data() + 1, data.data(), data.size());
  }
  SealAppend(keys.data_key, plain, Aad(id), blob);
}

Status DecodeChunk(const RepoKeys& keys, const ChunkId& id, std::string_view blob,
                   uint32_t raw_length, std::string* data) {
  thread_local std::unique_ptr<ZSTD_DCtx, DCtxDeleter> dctx(ZSTD_createDCtx());
  thread_local std::string plain;
  Status s = OpenInto(keys.data_key, blob, Aad(id), &plain);
  if (!s.ok())
    return absl::DataLossError(absl::StrCat("chunk ", id.hex().substr(0, 16), ": ", s.message()));
  if (plain.empty()) return absl::DataLossError("chunk: empty payload");
  const uint8_t codec = static_cast<uint8_t>(plain[0]);
  data->resize(raw_length);
  if (codec == kCodecZstd) {
    size_t n = ZSTD_decompressDCtx(dctx.get(), data->data(), raw_length, plain.data() + 1,
                                   plain.size() - 1);
    if (ZSTD_isError(n) || n != raw_length)
      return absl::DataLossError(absl::StrCat("chunk ", id.hex().substr(0, 16),
                                              ": bad zstd payload or length"));
  } else if (codec == kCodecRaw) {
    if (plain.size() - 1 != raw_length)
      return absl::DataLossError(absl::StrCat("chunk ", id.hex().substr(0, 16), ": bad length"));
    std::memcpy(data->data(), plain.data() + 1, raw_length);
  } else {
    return absl::DataLossError(absl::StrCat("chunk: unknown codec ", codec));
  }
  if (ComputeChunkId(keys, *data) != id)
    return absl::DataLossError(
        absl::StrCat("chunk ", id.hex().substr(0, 16), ": content does not match its id"));
  return Status();
}

}  // namespace vdisk::backup
