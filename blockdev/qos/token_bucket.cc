#include "blockdev/qos/token_bucket.h"

#include <algorithm>

namespace vdisk::blockdev::qos {

void TokenBucket::Configure(double rate, double capacity, double now) {
  const bool was_unlimited = rate_ == 0;
  Refill(now);
  rate_ = rate;
  capacity_ = std::max(capacity, 1.0);
  level_ = was_unlimited ? capacity_ : std::min(level_, capacity_);
  last_ = now;
}

void TokenBucket::Refill(double now) {
  if (rate_ == 0) {
    last_ = now;
    return;
  }
  if (now > last_) level_ = std::min(capacity_, level_ + (now - last_) * rate_);
  last_ = now;
}

double TokenBucket::SecondsUntilStart() const {
  if (CanStart()) return 0;
  // Strictly above zero: a hair more than the debt.
  return (-level_ + 1e-9 * rate_) / rate_ + 1e-9;
}

void RateBuckets::Configure(const RateLimit& limit, uint32_t burst_seconds, double now) {
  const double l = static_cast<double>(limit.limit), b = static_cast<double>(limit.burst);
  if (limit.limit == 0) {
    sustained_.Configure(0, 0, now);
    peak_.Configure(0, 0, now);
    return;
  }
  if (limit.burst != 0) {
    sustained_.Configure(l, b * burst_seconds, now);
    peak_.Configure(b, b / 10, now);
  } else {
    sustained_.Configure(l, l / 10, now);
    peak_.Configure(0, 0, now);
  }
}

double RateBuckets::SecondsUntilStart() const {
  return std::max(sustained_.SecondsUntilStart(), peak_.SecondsUntilStart());
}

}  // namespace vdisk::blockdev::qos
