// libFuzzer target: a whole vhost-user session (blockdev/vhost/session.h) driven by a hostile
// front end. The input is a script of vhost-user messages sent over a real socketpair to a
// Session serving an in-memory disk, with the file descriptors a front end would pass (guest RAM
// memfd, eventfds, an inflight memfd, a back-end channel, a pipe where an eventfd belongs), and
// script steps that write the guest's RAM (rings, descriptors, requests) and kick the queues, so
// that feature negotiation, memory tables, ring set-up, inflight areas, config space and the
// queue workers' descriptor walk all run against what the fuzzer writes.
//
// The session must answer or refuse every message, never crash, hang or touch memory outside
// what it mapped; the disk is only ever written inside its size (ASan checks the rest).
//
// Script: byte 0 = number of queues offered (1 + b % 4), then steps:
//   op 0xff: RAM write   [0xff][offset le16][len u8][bytes]   (guest RAM is 64 KiB at GPA 0)
//   op 0xfe: kick        [0xfe]                              (signals every kick eventfd given)
//   else:    message     [op][flags][size le16][payload]     request = op % 40 + 1;
//            flags bit0 NEED_REPLY, bits1-3 fds: 0 none, 1 guest RAM, 2 eventfd, 3 eventfd and
//            guest RAM, 4 inflight memfd (64 KiB), 5 back-end socket, 6 a pipe, 7 two RAM fds;
//            header.size = size (> payload bytes present makes the session wait for the rest,
//            which ends with the connection closing).
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "blockdev/device.h"
#include "blockdev/vhost/blk_target.h"
#include "blockdev/vhost/message.h"
#include "blockdev/vhost/session.h"
#include "blockdev/vhost/test_guest.h"
#include "spdlog/spdlog.h"

using namespace vdisk;
using namespace vdisk::blockdev;
using namespace vdisk::blockdev::vhost;

namespace {

constexpr uint64_t kRam = 64 << 10;
constexpr uint64_t kDisk = 1 << 20;

// A synchronous in-memory disk: operations complete at the next poll().
class RamQueue final : public IoQueue {
 public:
  explicit RamQueue(uint8_t* disk) : disk_(disk) {}
  void readv(uint64_t off, const iovec* iov, int n, IoCallback done) override {
    Queue([=, this] { return Copy(off, iov, n, false); }, std::move(done));
  }
  void writev(uint64_t off, const iovec* iov, int n, IoCallback done) override {
    Queue([=, this] { return Copy(off, iov, n, true); }, std::move(done));
  }
  void flush(IoCallback done) override { Queue([] { return Status(); }, std::move(done)); }
  void discard(uint64_t off, uint64_t len, IoCallback done) override { Zero(off, len, std::move(done)); }
  void write_zeroes(uint64_t off, uint64_t len, IoCallback done) override {
    Zero(off, len, std::move(done));
  }
  Status submit() override { return Status(); }
  StatusOr<unsigned> poll(unsigned, int) override {
    auto ops = std::move(ops_);
    ops_.clear();
    for (auto& op : ops) std::move(op.done)(op.run());
    return static_cast<unsigned>(ops.size());
  }
  unsigned in_flight() const override { return static_cast<unsigned>(ops_.size()); }
  unsigned depth() const override { return 128; }

 private:
  struct Op {
    std::function<Status()> run;
    IoCallback done;
  };
  void Queue(std::function<Status()> run, IoCallback done) { ops_.push_back({std::move(run), std::move(done)}); }
  static Status Check(uint64_t off, uint64_t len) {
    if (off % 512 || len % 512) return absl::InvalidArgumentError("unaligned");
    if (off > kDisk || len > kDisk - off) return absl::OutOfRangeError("past the end");
    return Status();
  }
  Status Copy(uint64_t off, const iovec* iov, int n, bool write) {
    uint64_t len = 0;
    for (int i = 0; i < n; i++) len += iov[i].iov_len;
    if (Status s = Check(off, len); !s.ok()) return s;
    for (int i = 0; i < n; i++) {
      if (write) std::memcpy(disk_ + off, iov[i].iov_base, iov[i].iov_len);
      else std::memcpy(iov[i].iov_base, disk_ + off, iov[i].iov_len);
      off += iov[i].iov_len;
    }
    return Status();
  }
  void Zero(uint64_t off, uint64_t len, IoCallback done) {
    Queue([=, this] {
      if (Status s = Check(off, len); !s.ok()) return s;
      std::memset(disk_ + off, 0, len);
      return Status();
    }, std::move(done));
  }
  uint8_t* disk_;
  std::vector<Op> ops_;
};

class RamDevice final : public Device {
 public:
  uint64_t size() const override { return kDisk; }
  uint32_t block_size() const override { return 512; }
  bool read_only() const override { return false; }
  std::string describe() const override { return "ram:fuzz"; }
  StatusOr<std::unique_ptr<IoQueue>> open_queue(unsigned) override {
    return std::unique_ptr<IoQueue>(new RamQueue(disk_.get()));
  }
  StatusOr<ExtentList> allocated(uint64_t o, uint64_t l) override { return ExtentList{{o, l}}; }

 private:
  std::unique_ptr<uint8_t[]> disk_{new uint8_t[kDisk]()};
};

struct Fds {
  std::vector<int> owned;  // closed after the input
  std::vector<int> kicks;  // eventfds handed out, signalled by the kick step
  int Keep(int fd) {
    owned.push_back(fd);
    return fd;
  }
  ~Fds() {
    for (int fd : owned) ::close(fd);
  }
};

int InflightMemfd() {
  int fd = ::memfd_create("fuzz-inflight", MFD_CLOEXEC);
  if (fd >= 0 && ::ftruncate(fd, 64 << 10) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static auto* ram = new testing::FakeGuestRam(kRam);
  static auto* device = new RamDevice;
  std::memset(ram->at(0), 0, kRam);

  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return 0;
  int stop = ::eventfd(0, EFD_CLOEXEC);
  BlkTarget target;
  target.device = device;
  target.capacity_bytes = kDisk;
  target.serial = "fuzz";
  target.max_discard_sectors = 64;
  target.max_write_zeroes_sectors = 64;
  SessionConfig config;
  config.num_queues = 1 + data[0] % 4;
  config.max_request_bytes = 256 << 10;
  auto session = std::make_unique<Session>(UniqueFd(sv[0]), &target, config);
  std::thread server([&] { (void)session->Serve(stop); });
  std::thread drain([fd = sv[1]] {  // replies are read and dropped, so the session never blocks
    char buf[4096];
    while (::read(fd, buf, sizeof(buf)) > 0) {
    }
  });

  Fds fds;
  const uint8_t* p = data + 1;
  const uint8_t* end = data + size;
  while (p < end) {
    const uint8_t op = *p++;
    if (op == 0xff) {  // RAM write
      if (end - p < 3) break;
      uint16_t off;
      std::memcpy(&off, p, 2);
      size_t len = std::min<size_t>({p[2], static_cast<size_t>(end - p - 3), kRam - off});
      std::memcpy(ram->at(off), p + 3, len);
      p += 3 + len;
      continue;
    }
    if (op == 0xfe) {  // kick
      for (int fd : fds.kicks) (void)::eventfd_write(fd, 1);
      continue;
    }
    if (end - p < 3) break;
    const uint8_t flags = p[0];
    uint16_t claimed;
    std::memcpy(&claimed, p + 1, 2);
    p += 3;
    const size_t present = std::min<size_t>(claimed, static_cast<size_t>(end - p));
    std::vector<int> pass;
    switch ((flags >> 1) & 7) {
      case 1: pass.push_back(fds.Keep(::dup(ram->fd()))); break;
      case 2:
      case 3: {
        int e = fds.Keep(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
        fds.kicks.push_back(e);
        pass.push_back(e);
        if (((flags >> 1) & 7) == 3) pass.push_back(fds.Keep(::dup(ram->fd())));
        break;
      }
      case 4: pass.push_back(fds.Keep(InflightMemfd())); break;
      case 5: {
        int b[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, b) == 0) {
          fds.Keep(b[1]);
          pass.push_back(fds.Keep(b[0]));
        }
        break;
      }
      case 6: {
        int pp[2];
        if (::pipe2(pp, O_CLOEXEC) == 0) {
          fds.Keep(pp[1]);
          pass.push_back(fds.Keep(pp[0]));
        }
        break;
      }
      case 7:
        pass.push_back(fds.Keep(::dup(ram->fd())));
        pass.push_back(fds.Keep(::dup(ram->fd())));
        break;
    }
    std::erase(pass, -1);
    const uint32_t request = op % 40 + 1;
    const uint32_t mflags = kVersion | ((flags & 1) ? kFlagNeedReply : 0);
    // SendMessage sets header.size to the payload's size: a claimed size beyond the input is
    // sent as a header of our own followed by the bytes we have.
    if (present == claimed) {
      if (!SendMessage(sv[1], request, mflags, {p, present}, pass).ok()) break;
    } else {
      MsgHeader h{request, mflags, claimed};
      if (::send(sv[1], &h, sizeof(h), MSG_NOSIGNAL) != sizeof(h)) break;
      (void)::send(sv[1], p, present, MSG_NOSIGNAL);
      p += present;
      break;  // the session now waits for bytes that never come, until the close below
    }
    p += present;
  }
  ::shutdown(sv[1], SHUT_WR);  // the session sees the front end go away and stops its queues
  server.join();
  session.reset();             // closes the session's end: the drain thread sees EOF
  drain.join();
  ::close(sv[1]);
  ::close(stop);
  return 0;
}
