// Reading and writing vhost-user messages (header + payload + SCM_RIGHTS fds) on a Unix stream
// socket. Blocking I/O; one reader and one writer per socket at a time. Errors as values:
// UNAVAILABLE when the peer closed the connection, INVALID_ARGUMENT for a malformed message
// (payload larger than kMaxPayload, too many fds), INTERNAL for other socket errors.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "blockdev/vhost/protocol.h"
#include "blockdev/vhost/unique_fd.h"
#include "common/status.h"

namespace vdisk::blockdev::vhost {

constexpr int kMaxMessageFds = 8;

struct Message {
  MsgHeader header{};
  uint8_t payload[kMaxPayload] = {};
  std::vector<UniqueFd> fds;

  Request request() const { return static_cast<Request>(header.request); }
  // Copies the payload into `out` if it holds at least sizeof(T) bytes.
  template <typename T>
  bool Get(T* out) const {
    if (header.size < sizeof(T)) return false;
    std::memcpy(out, payload, sizeof(T));
    return true;
  }
};

// Receives one message. UNAVAILABLE on orderly close before a header.
Status RecvMessage(int sock, Message* msg);

// Sends header (with `size` = payload.size()) + payload, passing `fds` (not closed).
Status SendMessage(int sock, uint32_t request, uint32_t flags, std::span<const uint8_t> payload,
                   std::span<const int> fds = {});

// Convenience for a reply carrying one value.
template <typename T>
Status SendReply(int sock, uint32_t request, const T& value) {
  return SendMessage(sock, request, kVersion | kFlagReply,
                     std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&value), sizeof(T)));
}

}  // namespace vdisk::blockdev::vhost
