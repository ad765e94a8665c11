// blockdev::Device — an open virtual disk, and IoQueue — one thread's asynchronous path to it.
//
// A Device is opened by a Pool (or directly on a file / block device) and owns the backend
// handle (fd, rbd_image_t, iscsi/nfs context). It is thread-safe: size(), allocated() and
// open_queue() may be called from any thread.
//
// An IoQueue is the data path, in the style of an SPDK io channel: it belongs to ONE thread.
// That thread queues operations, calls submit() to hand them to the engine in one batch, and
// calls poll() to reap completions; callbacks run inside poll(), on that thread, never
// elsewhere. Buffers and iovec arrays are owned by the caller and must stay valid until the
// operation's callback has run. Destroying a queue waits for its in-flight operations.
//
// Errors are values: each callback receives OK or a Status naming the errno and the byte range.
// A short read/write is retried by the engine or reported as an error, never silently accepted.
// Offsets and lengths must be multiples of block_size() (INVALID_ARGUMENT otherwise); a range
// past size() fails with OUT_OF_RANGE; writing a read-only device fails with PERMISSION_DENIED.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "absl/functional/any_invocable.h"
#include "blockdev/extent.h"
#include "common/status.h"

namespace vdisk::blockdev {

// Completion callback. Runs once, on the queue's owner thread, inside IoQueue::poll().
using IoCallback = absl::AnyInvocable<void(Status) &&>;

class IoQueue {
 public:
  virtual ~IoQueue() = default;

  // Vectored read/write of sum(iov[i].iov_len) bytes at `offset`.
  virtual void readv(uint64_t offset, const struct iovec* iov, int iovcnt, IoCallback done) = 0;
  virtual void writev(uint64_t offset, const struct iovec* iov, int iovcnt, IoCallback done) = 0;
  // Makes every write completed before this call durable.
  virtual void flush(IoCallback done) = 0;
  // Deallocates the range (hole punch / UNMAP); reads of it return zeroes afterwards.
  virtual void discard(uint64_t offset, uint64_t length, IoCallback done) = 0;
  // Makes the range read as zeroes; may deallocate when the backend can do so cheaply.
  virtual void write_zeroes(uint64_t offset, uint64_t length, IoCallback done) = 0;

  // Hands every queued operation to the engine (one syscall where the engine allows).
  virtual Status submit() = 0;
  // Reaps completions and runs their callbacks. Waits up to `timeout_ms` (-1 = forever) for at
  // least `min_complete` of them (capped at in_flight()). Returns how many completed.
  virtual StatusOr<unsigned> poll(unsigned min_complete, int timeout_ms) = 0;
  // Operations queued or submitted whose callback has not run yet.
  virtual unsigned in_flight() const = 0;
  // Maximum in-flight operations this queue was opened with.
  virtual unsigned depth() const = 0;
  // An fd that becomes readable when poll() would make progress (for epoll loops); -1 if the
  // engine has none and must be polled.
  virtual int completion_fd() const { return -1; }
  // Optional: registers caller-owned memory regions with the engine (io_uring fixed buffers), so
  // a read or write whose single buffer lies inside one of them skips per-I/O page pinning. The
  // memory must stay valid until the queue is destroyed. Call with nothing in flight, at most
  // once per queue. Default: OK and no effect (the engine has no such notion).
  virtual Status register_buffers(const struct iovec* regions, int count) { return Status(); }

  // Conveniences over readv/writev for one contiguous buffer.
  void read(uint64_t offset, std::span<std::byte> buf, IoCallback done);
  void write(uint64_t offset, std::span<const std::byte> buf, IoCallback done);

  // Submits and polls until nothing is in flight. Returns the first submit/poll error.
  Status drain();
};

class Device {
 public:
  virtual ~Device() = default;

  virtual uint64_t size() const = 0;
  // Logical block size: the alignment every offset and length must have (512 or 4096).
  virtual uint32_t block_size() const = 0;
  // Buffer memory alignment the engine needs (e.g. 4096 for O_DIRECT), 1 if none.
  virtual uint32_t buffer_alignment() const { return 1; }
  virtual bool read_only() const = 0;
  // Human-readable identity for logs ("file:/path", "rbd:pool/image"); never contains secrets.
  virtual std::string describe() const = 0;

  // Opens a queue for the calling thread with room for `depth` operations in flight.
  virtual StatusOr<std::unique_ptr<IoQueue>> open_queue(unsigned depth) = 0;

  // Extents within [offset, offset+length) that may hold data; everything else reads as
  // zeroes. A backend that cannot tell returns the whole range (never less than the truth).
  virtual StatusOr<ExtentList> allocated(uint64_t offset, uint64_t length) = 0;
  // True when allocated() can only answer by reading the data (no allocation metadata in the
  // protocol, e.g. NFSv3): a caller that reads the whole range anyway and detects zeroes
  // itself (the copy engine, backup) should not ask first.
  virtual bool allocation_requires_read() const { return false; }

  // Optional: ranges in [0, max(size(), base.size())) where this device may differ from `base`,
  // a relative that shares storage with it (a reflinked copy, a snapshot of the same image),
  // found from the backend's metadata without reading data. Never less than the truth; exact
  // only while neither device is written. Default UNIMPLEMENTED (the engine cannot tell, or
  // `base` is of another engine): callers read and compare instead (snapshot/changed_blocks.h).
  virtual StatusOr<ExtentList> changed_since(Device& base) {
    return absl::UnimplementedError(describe() + " cannot compute a change map itself");
  }
};

}  // namespace vdisk::blockdev
