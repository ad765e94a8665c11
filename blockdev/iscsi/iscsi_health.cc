// IscsiPool::health(): a controller (with the target host) checks what capacity() needs; a
// node-only plugin checks that the portal accepts TCP connections (it has no target host to ask).
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "blockdev/iscsi/iscsi_pool_impl.h"

namespace vdisk::blockdev::iscsi {

namespace {

// OK when host:port ("[v6]:port" too) accepts a TCP connection within `timeout_ms`.
Status PortalAnswers(const std::string& portal, int timeout_ms) {
  // "host", "host:port", "[v6]" or "[v6]:port".
  std::string host = portal, port = "3260";
  const size_t bracket = portal.find(']');
  const size_t colon = portal.rfind(':');
  const bool has_port = colon != std::string::npos &&
                        (bracket != std::string::npos ? colon > bracket : portal.find(':') == colon);
  if (has_port) {
    host = portal.substr(0, colon);
    port = portal.substr(colon + 1);
  }
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int r = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found); r != 0)
    return absl::UnavailableError(absl::StrCat("portal ", portal, ": ", ::gai_strerror(r)));
  std::string last = "no address";
  for (addrinfo* a = found; a; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    int r = ::connect(fd, a->ai_addr, a->ai_addrlen);
    if (r != 0 && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      const int ready = ::poll(&p, 1, timeout_ms);
      if (ready == 1) {
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        r = err == 0 ? 0 : -1;
        errno = err;
      } else {
        r = -1;
        if (ready == 0) errno = ETIMEDOUT;
      }
    }
    const int saved = errno;
    ::close(fd);
    if (r == 0) {
      ::freeaddrinfo(found);
      return Status();
    }
    last = std::strerror(saved);
  }
  ::freeaddrinfo(found);
  return absl::UnavailableError(absl::StrCat("portal ", portal, " does not answer: ", last));
}

}  // namespace

Status IscsiPool::health() {
  if (o_.manages_targets()) return Pool::health();
  return PortalAnswers(o_.portal, 3000);
}

}  // namespace vdisk::blockdev::iscsi
