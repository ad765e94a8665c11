#include "blockdev/zero_detect.h"

#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace vdisk::blockdev {

namespace {

// Bytes before `p` reaches an `align` boundary (or len if smaller): checked bytewise.
bool HeadTailZero(const unsigned char* p, size_t n) {
  unsigned char acc = 0;
  for (size_t i = 0; i < n; ++i) acc |= p[i];
  return acc == 0;
}

__attribute__((target("avx2"))) bool IsAllZeroAvx2(const unsigned char* p, size_t len) {
  // Align to 32 bytes, then 128 bytes per step with one branch.
  size_t head = (32 - (reinterpret_cast<uintptr_t>(p) & 31)) & 31;
  if (head > len) head = len;
  if (!HeadTailZero(p, head)) return false;
  p += head;
  len -= head;
  while (len >= 128) {
    __m256i a = _mm256_load_si256(reinterpret_cast<const __m256i*>(p));
    __m256i b = _mm256_load_si256(reinterpret_cast<const __m256i*>(p + 32));
    __m256i c = _mm256_load_si256(reinterpret_cast<const __m256i*>(p + 64));
    __m256i d = _mm256_load_si256(reinterpret_cast<const __m256i*>(p + 96));
    __m256i o = _mm256_or_si256(_mm256_or_si256(a, b), _mm256_or_si256(c, d));
    if (!_mm256_testz_si256(o, o)) return false;
    p += 128;
    len -= 128;
  }
  while (len >= 32) {
    __m256i a = _mm256_load_si256(reinterpret_cast<const __m256i*>(p));
    if (!_mm256_testz_si256(a, a)) return false;
    p += 32;
    len -= 32;
  }
  return HeadTailZero(p, len);
}

bool HaveAvx2() {
  static const bool have = __builtin_cpu_supports("avx2");
  return have;
}

}  // namespace

bool IsAllZeroScalar(const void* data, size_t len) {
  const auto* p = static_cast<const unsigned char*>(data);
  size_t head = (8 - (reinterpret_cast<uintptr_t>(p) & 7)) & 7;
  if (head > len) head = len;
  if (!HeadTailZero(p, head)) return false;
  p += head;
  len -= head;
  const auto* w = reinterpret_cast<const uint64_t*>(p);
  while (len >= 64) {
    if ((w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7]) != 0) return false;
    w += 8;
    len -= 64;
  }
  p = reinterpret_cast<const unsigned char*>(w);
  return HeadTailZero(p, len);
}

bool IsAllZero(const void* data, size_t len) {
  const auto* p = static_cast<const unsigned char*>(data);
  // Most data blocks are non-zero in their first bytes: decide those without a full scan.
  if (len >= 16) {
    uint64_t a, b;
    std::memcpy(&a, p, 8);
    std::memcpy(&b, p + 8, 8);
    if ((a | b) != 0) return false;
  }
  if (HaveAvx2()) return IsAllZeroAvx2(p, len);
  return IsAllZeroScalar(p, len);
}

}  // namespace vdisk::blockdev
