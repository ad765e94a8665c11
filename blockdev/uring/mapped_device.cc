#include "blockdev/uring/mapped_device.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "blockdev/uring/uring_device.h"

namespace vdisk::blockdev::uring {

namespace {

// One guest request split into host reads and zero fills; completes when all pieces have.
struct Request {
  IoCallback done;
  unsigned pending = 0;
  Status status;
  std::vector<struct iovec> iovs;  // host-read pieces (stable: reserved before issuing)
};

class MappedQueue final : public IoQueue {
 public:
  MappedQueue(std::unique_ptr<IoQueue> inner, const std::vector<MappedRange>* ranges,
              uint64_t size, std::string name)
      : inner_(std::move(inner)), ranges_(ranges), size_(size), name_(std::move(name)) {}

  void readv(uint64_t offset, const struct iovec* iov, int iovcnt, IoCallback done) override {
    uint64_t length = 0;
    for (int i = 0; i < iovcnt; ++i) length += iov[i].iov_len;
    if (offset > size_ || length > size_ - offset) {
      return Defer(std::move(done), absl::OutOfRangeError(absl::StrCat(
                                        name_, ": read [", offset, ", +", length, ") past the end")));
    }
    auto req = std::make_shared<Request>();
    req->done = std::move(done);
    // Walk the guest range; for each piece, either zero the caller's bytes or read from host.
    std::vector<std::pair<uint64_t, uint64_t>> reads;  // (host offset, length) per host piece
    std::vector<std::vector<struct iovec>> piece_iovs;
    uint64_t pos = offset;
    const uint64_t end = offset + length;
    auto it = std::upper_bound(ranges_->begin(), ranges_->end(), pos,
                               [](uint64_t p, const MappedRange& r) { return p < r.guest_offset + r.length; });
    // Cursor over the caller's iovecs.
    int vi = 0;
    uint64_t vo = 0;
    auto take = [&](uint64_t n, std::vector<struct iovec>* out) {
      while (n > 0) {
        uint64_t k = std::min<uint64_t>(n, iov[vi].iov_len - vo);
        char* base = static_cast<char*>(iov[vi].iov_base) + vo;
        if (out) out->push_back({base, k});
        else std::memset(base, 0, k);
        n -= k;
        vo += k;
        if (vo == iov[vi].iov_len) {
          ++vi;
          vo = 0;
        }
      }
    };
    while (pos < end) {
      if (it == ranges_->end() || it->guest_offset >= end) {
        take(end - pos, nullptr);
        break;
      }
      if (it->guest_offset > pos) {
        take(it->guest_offset - pos, nullptr);
        pos = it->guest_offset;
      }
      uint64_t stop = std::min(end, it->guest_offset + it->length);
      piece_iovs.emplace_back();
      take(stop - pos, &piece_iovs.back());
      reads.push_back({it->host_offset + (pos - it->guest_offset), stop - pos});
      pos = stop;
      ++it;
    }
    if (reads.empty()) return Defer(std::move(req->done), Status());
    size_t total = 0;
    for (auto& v : piece_iovs) total += v.size();
    req->iovs.reserve(total);
    req->pending = static_cast<unsigned>(reads.size());
    for (size_t i = 0; i < reads.size(); ++i) {
      struct iovec* first = req->iovs.data() + req->iovs.size();
      req->iovs.insert(req->iovs.end(), piece_iovs[i].begin(), piece_iovs[i].end());
      inner_->readv(reads[i].first, first, static_cast<int>(piece_iovs[i].size()),
                    [req](Status s) {
                      if (!s.ok() && req->status.ok()) req->status = std::move(s);
                      if (--req->pending == 0) std::move(req->done)(std::move(req->status));
                    });
    }
  }
  void writev(uint64_t, const struct iovec*, int, IoCallback done) override { ReadOnly(std::move(done)); }
  void flush(IoCallback done) override { Defer(std::move(done), Status()); }
  void discard(uint64_t, uint64_t, IoCallback done) override { ReadOnly(std::move(done)); }
  void write_zeroes(uint64_t, uint64_t, IoCallback done) override { ReadOnly(std::move(done)); }
  Status submit() override { return inner_->submit(); }
  StatusOr<unsigned> poll(unsigned min_complete, int timeout_ms) override {
    unsigned n = RunDeferred();
    if (n >= min_complete || inner_->in_flight() == 0) {
      ASSIGN_OR_RETURN(unsigned more, inner_->poll(0, 0));
      return n + more;  // counts host pieces, an upper bound of requests: fine for progress
    }
    ASSIGN_OR_RETURN(unsigned more, inner_->poll(min_complete - n, timeout_ms));
    return n + more + RunDeferred();
  }
  unsigned in_flight() const override {
    return inner_->in_flight() + static_cast<unsigned>(deferred_.size());
  }
  unsigned depth() const override { return inner_->depth(); }
  int completion_fd() const override { return deferred_.empty() ? inner_->completion_fd() : -1; }
  Status register_buffers(const struct iovec* regions, int count) override {
    return inner_->register_buffers(regions, count);
  }

 private:
  void ReadOnly(IoCallback done) {
    Defer(std::move(done), absl::PermissionDeniedError(name_ + ": read-only image"));
  }
  void Defer(IoCallback done, Status s) { deferred_.emplace_back(std::move(done), std::move(s)); }
  unsigned RunDeferred() {
    std::vector<std::pair<IoCallback, Status>> batch;
    batch.swap(deferred_);
    for (auto& [d, s] : batch) std::move(d)(std::move(s));
    return static_cast<unsigned>(batch.size());
  }

  std::unique_ptr<IoQueue> inner_;
  const std::vector<MappedRange>* ranges_;
  uint64_t size_;
  std::string name_;
  std::vector<std::pair<IoCallback, Status>> deferred_;
};

class MappedDevice final : public Device {
 public:
  MappedDevice(std::unique_ptr<Device> host, uint64_t size, std::vector<MappedRange> ranges)
      : host_(std::move(host)), size_(size), ranges_(std::move(ranges)) {}
  uint64_t size() const override { return size_; }
  uint32_t block_size() const override { return host_->block_size(); }
  uint32_t buffer_alignment() const override { return host_->buffer_alignment(); }
  bool read_only() const override { return true; }
  std::string describe() const override { return "mapped:" + host_->describe(); }
  StatusOr<std::unique_ptr<IoQueue>> open_queue(unsigned depth) override {
    ASSIGN_OR_RETURN(auto inner, host_->open_queue(std::min(4096u, depth * 16)));
    return std::unique_ptr<IoQueue>(new MappedQueue(std::move(inner), &ranges_, size_, describe()));
  }
  StatusOr<ExtentList> allocated(uint64_t offset, uint64_t length) override {
    ExtentList all;
    for (const MappedRange& r : ranges_) all.push_back({r.guest_offset, r.length});
    return Clip(all, offset, length);
  }

 private:
  std::unique_ptr<Device> host_;
  uint64_t size_;
  std::vector<MappedRange> ranges_;
};

StatusOr<std::string> RunCapture(const std::vector<std::string>& argv) {
  int pipefd[2];
  if (::pipe(pipefd) != 0) return LastErrnoStatus("pipe");
  pid_t pid = ::fork();
  if (pid < 0) return LastErrnoStatus("fork");
  if (pid == 0) {
    ::dup2(pipefd[1], 1);
    ::close(pipefd[0]);
    ::close(pipefd[1]);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  ::close(pipefd[1]);
  std::string out;
  char buf[65536];
  ssize_t n;
  while ((n = ::read(pipefd[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
    if (n > 0) out.append(buf, static_cast<size_t>(n));
  ::close(pipefd[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return absl::InvalidArgumentError(absl::StrCat(argv[0], " ", argv[1], " failed (exit ",
                                                   WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                                                   WEXITSTATUS(status) == 127 ? ", not installed" : "",
                                                   ")"));
  return out;
}

}  // namespace

StatusOr<std::unique_ptr<Device>> OpenMappedDevice(const std::string& host_path,
                                                   uint64_t virtual_size,
                                                   std::vector<MappedRange> ranges) {
  if (virtual_size % 512 != 0)
    return absl::InvalidArgumentError(absl::StrCat("mapped image: virtual size ", virtual_size,
                                                   " is not a multiple of 512"));
  uint64_t prev_end = 0;
  bool aligned4k = virtual_size % 4096 == 0;
  for (const MappedRange& r : ranges) {
    if (r.guest_offset < prev_end || r.length == 0 || r.guest_offset + r.length > virtual_size ||
        r.guest_offset % 512 || r.length % 512 || r.host_offset % 512)
      return absl::InvalidArgumentError(absl::StrCat(
          "mapped image: bad range guest ", r.guest_offset, " +", r.length, " host ", r.host_offset));
    if (r.guest_offset % 4096 || r.length % 4096 || r.host_offset % 4096) aligned4k = false;
    prev_end = r.guest_offset + r.length;
  }
  // O_DIRECT on the host file only when every piece is 4 KiB aligned; else the page cache.
  FileDeviceOptions o;
  o.read_only = true;
  o.direct = aligned4k ? DirectMode::kAuto : DirectMode::kOff;
  ASSIGN_OR_RETURN(auto host, OpenFileDevice(host_path, o));
  if (host->block_size() > 512 && !aligned4k)
    return absl::InvalidArgumentError("mapped image: ranges not aligned to the host block size");
  if (virtual_size % host->block_size() != 0) {
    o.direct = DirectMode::kOff;
    ASSIGN_OR_RETURN(host, OpenFileDevice(host_path, o));
  }
  return std::unique_ptr<Device>(new MappedDevice(std::move(host), virtual_size, std::move(ranges)));
}

StatusOr<std::unique_ptr<Device>> OpenQcow2Mapped(const std::string& path) {
  ASSIGN_OR_RETURN(std::string info_text,
                   RunCapture({"qemu-img", "info", "--output=json", "-U", path}));
  nlohmann::json info = nlohmann::json::parse(info_text, nullptr, false);
  if (info.is_discarded() || !info.is_object())
    return absl::InvalidArgumentError(path + ": qemu-img info gave no JSON");
  if (info.value("format", "") != "qcow2")
    return absl::UnimplementedError(absl::StrCat(path, ": format is ", info.value("format", "?"),
                                                 ", not qcow2"));
  if (info.contains("backing-filename"))
    return absl::UnimplementedError(path + ": has a backing file");
  if (info.value("encrypted", false)) return absl::UnimplementedError(path + ": is encrypted");
  const uint64_t vsize = info.value("virtual-size", uint64_t{0});
  ASSIGN_OR_RETURN(std::string map_text,
                   RunCapture({"qemu-img", "map", "--output=json", "-U", "-f", "qcow2", path}));
  nlohmann::json map = nlohmann::json::parse(map_text, nullptr, false);
  if (map.is_discarded() || !map.is_array())
    return absl::InvalidArgumentError(path + ": qemu-img map gave no JSON");
  std::vector<MappedRange> ranges;
  for (const auto& e : map) {
    if (!e.value("data", false) || e.value("zero", false)) continue;
    if (e.value("depth", 0) != 0)
      return absl::UnimplementedError(path + ": data from a backing file");
    if (!e.contains("offset"))
      return absl::UnimplementedError(path + ": compressed or encrypted clusters");
    MappedRange r{e.value("start", uint64_t{0}), e.value("length", uint64_t{0}),
                  e.value("offset", uint64_t{0})};
    if (!ranges.empty() && ranges.back().guest_offset + ranges.back().length == r.guest_offset &&
        ranges.back().host_offset + ranges.back().length == r.host_offset) {
      ranges.back().length += r.length;
    } else {
      ranges.push_back(r);
    }
  }
  return OpenMappedDevice(path, vsize, std::move(ranges));
}

}  // namespace vdisk::blockdev::uring
