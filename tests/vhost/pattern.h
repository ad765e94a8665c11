// The position-dependent test pattern the guest's vdtool writes (tests/env/guest/vdtool.c):
// the 64-bit word at byte offset o is splitmix64(seed * 0x9E3779B97F4A7C15 + o / 8 + 1).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

namespace vdisk::testing {

inline uint64_t PatternWord(uint64_t seed, uint64_t offset) {
  uint64_t z = seed * 0x9E3779B97F4A7C15ull + offset / 8 + 1;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// The pattern bytes for [offset, offset + len) (both multiples of 8).
inline std::string Pattern(uint64_t seed, uint64_t offset, uint64_t len) {
  std::string s(len, '\0');
  for (uint64_t i = 0; i < len; i += 8) {
    uint64_t w = PatternWord(seed, offset + i);
    std::memcpy(s.data() + i, &w, 8);
  }
  return s;
}

}  // namespace vdisk::testing
