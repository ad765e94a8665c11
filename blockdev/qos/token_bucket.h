// A token bucket for one rate limit, on an explicit clock (seconds as double), so the policy is
// testable without sleeping. Refilled at `rate` tokens per second up to `capacity`; an
// operation may start while the level is above zero and then takes its whole cost, so the level
// may go negative (a request larger than the bucket starts, and the ones after it wait until its
// debt is repaid). Over any window the admitted cost is at most rate * window + capacity + one
// request. rate 0 = unlimited. Not thread-safe (IoGate serialises).
#pragma once

#include <cstdint>

#include "blockdev/qos/qos_limits.h"

namespace vdisk::blockdev::qos {

class TokenBucket {
 public:
  // Starts full. Reconfiguring keeps the level (clipped to the new capacity).
  void Configure(double rate, double capacity, double now);
  bool unlimited() const { return rate_ == 0; }
  void Refill(double now);
  bool CanStart() const { return rate_ == 0 || level_ > 0; }
  void Take(double cost) {
    if (rate_ != 0) level_ -= cost;
  }
  // Seconds until CanStart() (0 if it can now).
  double SecondsUntilStart() const;
  double level() const { return level_; }

 private:
  double rate_ = 0, capacity_ = 0, level_ = 0, last_ = 0;
};

// One RateLimit: the sustained bucket (rate = limit; capacity = burst * burst_seconds with a
// burst, else a tenth of a second's worth) and, with a burst, a second bucket that caps the
// burst rate itself (rate = burst; capacity = a tenth of a second's worth). The same scheme as
// QEMU's throttle groups and librbd's rbd_qos_* options.
class RateBuckets {
 public:
  void Configure(const RateLimit& limit, uint32_t burst_seconds, double now);
  bool unlimited() const { return sustained_.unlimited(); }
  void Refill(double now) {
    sustained_.Refill(now);
    peak_.Refill(now);
  }
  bool CanStart() const { return sustained_.CanStart() && peak_.CanStart(); }
  void Take(double cost) {
    sustained_.Take(cost);
    peak_.Take(cost);
  }
  double SecondsUntilStart() const;

 private:
  TokenBucket sustained_, peak_;
};

}  // namespace vdisk::blockdev::qos
