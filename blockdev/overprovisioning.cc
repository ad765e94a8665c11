#include "blockdev/overprovisioning.h"

#include <charconv>
#include <limits>

#include "absl/strings/str_cat.h"

namespace vdisk::blockdev {

StatusOr<uint32_t> ParseOverprovisioning(const std::string& value) {
  if (value == "off") return 0u;
  std::string digits = value;
  if (!digits.empty() && digits.back() == '%') digits.pop_back();
  uint32_t n = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || n < 1 ||
      n > kMaxOverprovisioningPercent)
    return absl::InvalidArgumentError(absl::StrCat("pool option ", kOverprovisioningOption, "='", value,
                                                   "': want a percentage of the pool's capacity (1..",
                                                   kMaxOverprovisioningPercent, ", e.g. 200%) or off"));
  return n;
}

uint64_t PromiseLimit(uint32_t percent, uint64_t total_bytes) {
  if (percent == 0) return std::numeric_limits<uint64_t>::max();
  const unsigned __int128 limit = static_cast<unsigned __int128>(total_bytes) * percent / 100;
  return limit > std::numeric_limits<uint64_t>::max() ? std::numeric_limits<uint64_t>::max()
                                                      : static_cast<uint64_t>(limit);
}

}  // namespace vdisk::blockdev
