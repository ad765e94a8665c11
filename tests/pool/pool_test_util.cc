#include "tests/pool/pool_test_util.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "blockdev/aligned_buffer.h"
#include "blockdev/sync_io.h"

namespace vdisk::pooltest {

namespace {
constexpr uint64_t kStep = 1 << 20;

uint64_t Mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  return x ^ (x >> 33);
}

void Fill(std::byte* p, uint64_t offset, uint64_t length, uint64_t seed) {
  for (uint64_t i = 0; i < length; i += 8) {
    uint64_t w = Mix(seed * 0x9e3779b97f4a7c15ULL + (offset + i) / 8 + 1);
    std::memcpy(p + i, &w, std::min<uint64_t>(8, length - i));
  }
}
}  // namespace

Status WritePattern(blockdev::Device& dev, uint64_t offset, uint64_t length, uint64_t seed) {
  blockdev::AlignedBuffer buf(std::min(length, kStep), 4096);
  for (uint64_t done = 0; done < length; done += kStep) {
    uint64_t n = std::min(kStep, length - done);
    Fill(buf.data(), offset + done, n, seed);
    RETURN_IF_ERROR(blockdev::WriteAt(dev, offset + done, {buf.data(), n}));
  }
  return blockdev::Flush(dev);
}

Status CheckPattern(blockdev::Device& dev, uint64_t offset, uint64_t length, uint64_t seed) {
  blockdev::AlignedBuffer buf(std::min(length, kStep), 4096);
  std::string want(std::min(length, kStep), '\0');
  for (uint64_t done = 0; done < length; done += kStep) {
    uint64_t n = std::min(kStep, length - done);
    RETURN_IF_ERROR(blockdev::ReadAt(dev, offset + done, {buf.data(), n}));
    Fill(reinterpret_cast<std::byte*>(want.data()), offset + done, n, seed);
    if (std::memcmp(buf.data(), want.data(), n) != 0) {
      uint64_t i = 0;
      while (i < n && buf.data()[i] == static_cast<std::byte>(want[i])) ++i;
      return absl::DataLossError(
          absl::StrCat("pattern ", seed, " mismatch at offset ", offset + done + i));
    }
  }
  return Status();
}

Status CheckZeroes(blockdev::Device& dev, uint64_t offset, uint64_t length) {
  blockdev::AlignedBuffer buf(std::min(length, kStep), 4096);
  for (uint64_t done = 0; done < length; done += kStep) {
    uint64_t n = std::min(kStep, length - done);
    RETURN_IF_ERROR(blockdev::ReadAt(dev, offset + done, {buf.data(), n}));
    for (uint64_t i = 0; i < n; ++i)
      if (buf.data()[i] != std::byte{0})
        return absl::DataLossError(absl::StrCat("non-zero byte at offset ", offset + done + i));
  }
  return Status();
}

StatusOr<std::string> Digest(blockdev::Device& dev, uint64_t length) {
  if (length == 0) length = dev.size();
  blockdev::AlignedBuffer buf(std::min(length, kStep), 4096);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  for (uint64_t done = 0; done < length; done += kStep) {
    uint64_t n = std::min(kStep, length - done);
    Status s = blockdev::ReadAt(dev, done, {buf.data(), n});
    if (!s.ok()) {
      EVP_MD_CTX_free(ctx);
      return s;
    }
    EVP_DigestUpdate(ctx, buf.data(), n);
  }
  unsigned char md[32];
  unsigned len = 0;
  EVP_DigestFinal_ex(ctx, md, &len);
  EVP_MD_CTX_free(ctx);
  std::string hex;
  for (unsigned i = 0; i < len; ++i) absl::StrAppend(&hex, absl::Hex(md[i], absl::kZeroPad2));
  return hex;
}

}  // namespace vdisk::pooltest
