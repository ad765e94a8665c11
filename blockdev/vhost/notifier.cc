#include "blockdev/vhost/notifier.h"

#include <errno.h>
#include <unistd.h>

#include <cstdint>

namespace vdisk::blockdev::vhost {

bool Notifier::Signal() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!fd_.valid()) return true;
  uint64_t one = 1;
  ssize_t n;
  do {
    n = ::write(fd_.get(), &one, sizeof(one));
  } while (n < 0 && errno == EINTR);
  // EAGAIN means the counter is saturated: the driver is notified already.
  return n == sizeof(one) || (n < 0 && errno == EAGAIN);
}

}  // namespace vdisk::blockdev::vhost
