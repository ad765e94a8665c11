// libFuzzer target: the vdisk-csi configuration file (csi/config.h, YAML through yaml-cpp).
#include <cstddef>
#include <cstdint>
#include <string>

#include "csi/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)vdisk::csi::ParseConfig(std::string(reinterpret_cast<const char*>(data), size));
  return 0;
}
