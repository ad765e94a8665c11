#include "blockdev/qos/qos_limits.h"

#include <charconv>
#include <limits>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace vdisk::blockdev::qos {

namespace {

// The six rates: their parameter stem, librbd's name, whether they are byte rates.
struct Rate {
  const char* stem;   // "iops" -> iopsLimit / iopsBurst
  const char* rbd;    // "iops" -> rbd_qos_iops_limit / _burst / _burst_seconds
  bool bytes;
  RateLimit QosLimits::*field;
};
constexpr Rate kRates[] = {
    {"iops", "iops", false, &QosLimits::iops},
    {"readIops", "read_iops", false, &QosLimits::read_iops},
    {"writeIops", "write_iops", false, &QosLimits::write_iops},
    {"bps", "bps", true, &QosLimits::bps},
    {"readBps", "read_bps", true, &QosLimits::read_bps},
    {"writeBps", "write_bps", true, &QosLimits::write_bps},
};
constexpr char kBurstSeconds[] = "burstSeconds";

StatusOr<uint64_t> ParseAmount(const std::string& key, const std::string& value, bool sizes) {
  auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat("mutable parameter ", key, "='", value, "': ", why));
  };
  if (value.empty()) return bad("empty value");
  uint64_t n = 0;
  auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
  if (ec != std::errc() || p == value.data()) return bad("not a non-negative integer");
  std::string suffix(p, value.data() + value.size());
  if (suffix.empty()) return n;
  if (!sizes) return bad("operations per second take no unit");
  static const std::vector<std::pair<std::string, uint64_t>> kUnits = {
      {"K", 1000ull}, {"M", 1000ull * 1000}, {"G", 1000ull * 1000 * 1000}, {"T", 1000ull * 1000 * 1000 * 1000},
      {"Ki", 1ull << 10}, {"Mi", 1ull << 20}, {"Gi", 1ull << 30}, {"Ti", 1ull << 40}};
  for (const auto& [u, mult] : kUnits)
    if (suffix == u) {
      if (n > std::numeric_limits<uint64_t>::max() / mult) return bad("too large");
      return n * mult;
    }
  return bad("unknown unit (use K, M, G, T, Ki, Mi, Gi or Ti)");
}

}  // namespace

bool QosLimits::unlimited() const {
  for (const auto& r : kRates)
    if ((this->*r.field).limit != 0) return false;
  return true;
}

StatusOr<QosLimits> ParseQosParams(const Params& params) {
  QosLimits out;
  for (const auto& [key, value] : params) {
    if (key.find('/') != std::string::npos) continue;  // the CO's own keys
    if (key == kBurstSeconds) {
      ASSIGN_OR_RETURN(uint64_t s, ParseAmount(key, value, false));
      if (s < 1 || s > 3600)
        return absl::InvalidArgumentError(absl::StrCat("mutable parameter ", key, "='", value,
                                                       "': must be 1..3600 seconds"));
      out.burst_seconds = static_cast<uint32_t>(s);
      continue;
    }
    bool known = false;
    for (const auto& r : kRates) {
      const std::string limit_key = absl::StrCat(r.stem, "Limit"), burst_key = absl::StrCat(r.stem, "Burst");
      if (key != limit_key && key != burst_key) continue;
      ASSIGN_OR_RETURN(uint64_t n, ParseAmount(key, value, r.bytes));
      (key == limit_key ? (out.*r.field).limit : (out.*r.field).burst) = n;
      known = true;
    }
    if (!known) {
      std::vector<std::string> keys;
      for (const auto& r : kRates) {
        keys.push_back(absl::StrCat(r.stem, "Limit"));
        keys.push_back(absl::StrCat(r.stem, "Burst"));
      }
      keys.push_back(kBurstSeconds);
      return absl::InvalidArgumentError(absl::StrCat("unknown mutable parameter '", key,
                                                     "' (vdisk knows: ", absl::StrJoin(keys, ", "), ")"));
    }
  }
  for (const auto& r : kRates) {
    const RateLimit& l = out.*r.field;
    if (l.burst != 0 && l.limit == 0)
      return absl::InvalidArgumentError(absl::StrCat("mutable parameter ", r.stem, "Burst needs ", r.stem, "Limit"));
    if (l.burst != 0 && l.burst < l.limit)
      return absl::InvalidArgumentError(absl::StrCat("mutable parameter ", r.stem, "Burst (", l.burst,
                                                     ") is below ", r.stem, "Limit (", l.limit, ")"));
  }
  return out;
}

std::string Describe(const QosLimits& limits) {
  std::vector<std::string> parts;
  for (const auto& r : kRates) {
    const RateLimit& l = limits.*r.field;
    if (l.limit) parts.push_back(absl::StrCat(r.stem, "=", l.limit));
    if (l.burst) parts.push_back(absl::StrCat(r.stem, "Burst=", l.burst, "/", limits.burst_seconds, "s"));
  }
  return parts.empty() ? "unlimited" : absl::StrJoin(parts, " ");
}

std::map<std::string, std::string> LibrbdQosSettings(const QosLimits& limits) {
  std::map<std::string, std::string> out;
  for (const auto& r : kRates) {
    const RateLimit& l = limits.*r.field;
    const std::string base = absl::StrCat("rbd_qos_", r.rbd);
    out[base + "_limit"] = absl::StrCat(l.limit);
    out[base + "_burst"] = absl::StrCat(l.burst);
    out[base + "_burst_seconds"] = absl::StrCat(limits.burst_seconds);
  }
  return out;
}

}  // namespace vdisk::blockdev::qos
