#include "blockdev/vhost/message.h"

#include <errno.h>
#include <sys/socket.h>

#include <string>

#include "absl/strings/str_cat.h"

namespace vdisk::blockdev::vhost {

namespace {

// Reads exactly `len` bytes (after a header already read with its fds).
Status ReadFull(int sock, uint8_t* buf, size_t len) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = ::recv(sock, buf + done, len - done, 0);
    if (n == 0) return absl::UnavailableError("vhost-user peer closed the connection mid-message");
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == ECONNRESET) return absl::UnavailableError("vhost-user connection reset");
      return ErrnoStatus(errno, "vhost-user recv");
    }
    done += static_cast<size_t>(n);
  }
  return Status();
}

}  // namespace

Status RecvMessage(int sock, Message* msg) {
  msg->fds.clear();
  union {
    char buf[CMSG_SPACE(sizeof(int) * kMaxMessageFds)];
    cmsghdr align;
  } control;
  iovec iov{&msg->header, sizeof(MsgHeader)};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = control.buf;
  mh.msg_controllen = sizeof(control.buf);
  ssize_t n;
  do {
    n = ::recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n == 0) return absl::UnavailableError("vhost-user peer closed the connection");
  if (n < 0) {
    if (errno == ECONNRESET) return absl::UnavailableError("vhost-user connection reset");
    return ErrnoStatus(errno, "vhost-user recvmsg");
  }
  // Take ownership of every fd first so nothing leaks on a malformed message.
  for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c != nullptr; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; i++) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      msg->fds.emplace_back(fd);
    }
  }
  if (mh.msg_flags & MSG_CTRUNC) {
    return absl::InvalidArgumentError("vhost-user message carries too many fds");
  }
  if (static_cast<size_t>(n) < sizeof(MsgHeader)) {
    RETURN_IF_ERROR(ReadFull(sock, reinterpret_cast<uint8_t*>(&msg->header) + n,
                             sizeof(MsgHeader) - static_cast<size_t>(n)));
  }
  if (msg->header.size > kMaxPayload) {
    return absl::InvalidArgumentError(
        absl::StrCat("vhost-user message ", msg->header.request, " payload too large (",
                     msg->header.size, " bytes)"));
  }
  if ((msg->header.flags & kVersionMask) != kVersion) {
    return absl::InvalidArgumentError(
        absl::StrCat("vhost-user message with unsupported version flags ", msg->header.flags));
  }
  return ReadFull(sock, msg->payload, msg->header.size);
}

Status SendMessage(int sock, uint32_t request, uint32_t flags, std::span<const uint8_t> payload,
                   std::span<const int> fds) {
  if (fds.size() > kMaxMessageFds) return absl::InvalidArgumentError("too many fds");
  MsgHeader header{request, flags, static_cast<uint32_t>(payload.size())};
  iovec iov[2] = {{&header, sizeof(header)},
                  {const_cast<uint8_t*>(payload.data()), payload.size()}};
  union {
    char buf[CMSG_SPACE(sizeof(int) * kMaxMessageFds)];
    cmsghdr align;
  } control;
  msghdr mh{};
  mh.msg_iov = iov;
  mh.msg_iovlen = payload.empty() ? 1 : 2;
  if (!fds.empty()) {
    mh.msg_control = control.buf;
    mh.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  size_t total = sizeof(header) + payload.size();
  ssize_t n;
  do {
    n = ::sendmsg(sock, &mh, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EPIPE || errno == ECONNRESET) {
      return absl::UnavailableError("vhost-user peer closed the connection");
    }
    return ErrnoStatus(errno, "vhost-user sendmsg");
  }
  // Unix stream sockets send small messages whole; finish a partial write without fds.
  size_t sent = static_cast<size_t>(n);
  while (sent < total) {
    const uint8_t* base;
    size_t left;
    if (sent < sizeof(header)) {
      base = reinterpret_cast<const uint8_t*>(&header) + sent;
      left = sizeof(header) - sent;
    } else {
      base = payload.data() + (sent - sizeof(header));
      left = total - sent;
    }
    ssize_t m = ::send(sock, base, left, MSG_NOSIGNAL);
    if (m < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "vhost-user send");
    }
    sent += static_cast<size_t>(m);
  }
  return Status();
}

}  // namespace vdisk::blockdev::vhost
