#include "blockdev/zero_detect.h"

#include <vector>

#include <gtest/gtest.h>

namespace vdisk::blockdev {
namespace {

TEST(ZeroDetect, EveryLengthAlignmentAndPosition) {
  std::vector<unsigned char> buf(1024 + 64, 0);
  for (size_t align = 0; align < 33; align += 3) {
    for (size_t len : {0ul, 1ul, 7ul, 15ul, 16ul, 17ul, 31ul, 32ul, 63ul, 64ul, 127ul, 128ul, 129ul,
                       255ul, 500ul, 1024ul}) {
      unsigned char* p = buf.data() + align;
      EXPECT_TRUE(IsAllZero(p, len)) << align << "/" << len;
      EXPECT_TRUE(IsAllZeroScalar(p, len)) << align << "/" << len;
      for (size_t pos = 0; pos < len; ++pos) {
        p[pos] = 0x10;
        ASSERT_FALSE(IsAllZero(p, len)) << "align " << align << " len " << len << " pos " << pos;
        ASSERT_FALSE(IsAllZeroScalar(p, len)) << "align " << align << " len " << len << " pos " << pos;
        p[pos] = 0;
      }
      // Bytes just outside the range do not count.
      if (align > 0) p[-1] = 1;
      p[len] = 1;
      EXPECT_TRUE(IsAllZero(p, len));
      EXPECT_TRUE(IsAllZeroScalar(p, len));
      if (align > 0) p[-1] = 0;
      p[len] = 0;
    }
  }
}

}  // namespace
}  // namespace vdisk::blockdev
