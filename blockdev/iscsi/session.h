// Internal to the iSCSI backend: one logged-in iSCSI session (a libiscsi context) to one LUN,
// the mapping of login failures and SCSI status/sense to Status codes, and the few synchronous
// commands the control path needs (INQUIRY VPD pages, READ CAPACITY, GET LBA STATUS).
//
// The first login sets SIGPIPE to SIG_IGN if it is still at its default (a target that drops the
// connection mid-write must fail the session, not kill the process).
// A Session is NOT thread-safe (libiscsi contexts are single-threaded): one owner at a time.
// Login failures: UNAVAILABLE (portal unreachable, timeout), PERMISSION_DENIED (CHAP
// authentication or authorization refused), NOT_FOUND (no such target — tgt also says so to an
// initiator its ACL does not admit — or no such LUN). Messages name the portal and target, never
// a secret.
#pragma once

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

#include <cstdint>
#include <memory>
#include <string>

#include "blockdev/extent.h"
#include "blockdev/iscsi/lun_address.h"
#include "common/status.h"

namespace vdisk::blockdev::iscsi {

// What the control path learns about a LUN once, at open.
struct LunInfo {
  uint64_t size_bytes = 0;
  uint32_t block_size = 512;
  bool thin = false;            // LBPME: UNMAP / GET LBA STATUS meaningful
  bool unmap = false;           // LBPU: UNMAP supported
  bool write_same_unmap = false;  // LBPWS: WRITE SAME(16) with UNMAP
  bool zeroes_after_unmap = false;  // LBPRZ
  bool third_party_copy = false;  // 3PC: EXTENDED COPY
  std::string product;            // INQUIRY product identification, trailing blanks removed
  uint32_t max_xfer_blocks = 0;     // 0: no limit reported
  uint32_t max_unmap_blocks = 0;    // per descriptor / command, 0: no limit reported
  uint32_t max_unmap_descriptors = 0;
  uint64_t max_write_same_blocks = 0;
};

class Session {
 public:
  // Connects and logs in within options.login_timeout_s (a TEST UNIT READY follows, consuming
  // the unit attentions of a fresh login).
  static StatusOr<std::unique_ptr<Session>> Login(const LunAddress& address, const SessionOptions& options);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  iscsi_context* ctx() const { return ctx_; }
  // The connection is known dead: the destructor skips the logout (it would wait for nothing).
  void MarkLost() { lost_ = true; }
  const LunAddress& address() const { return address_; }

  // Synchronous commands (a command timeout applies).
  StatusOr<LunInfo> Probe();
  StatusOr<uint64_t> ReadCapacityBytes();
  // Mapped extents in [offset, offset+length) by GET LBA STATUS; the whole range when the LUN
  // is not thin-provisioned.
  StatusOr<ExtentList> Mapped(const LunInfo& info, uint64_t offset, uint64_t length);
  // Raw VPD page 0x83 designators (for EXTENDED COPY). Empty when the target has none.
  StatusOr<std::string> NaaDesignator();

 private:
  Session(iscsi_context* ctx, LunAddress address) : ctx_(ctx), address_(std::move(address)) {}
  iscsi_context* ctx_;
  LunAddress address_;
  bool lost_ = false;
};

// The Status of a finished SCSI command (`what` names it for the message): OK for GOOD;
// CHECK CONDITION by sense key (ILLEGAL REQUEST/LBA out of range -> OUT_OF_RANGE, other ILLEGAL
// REQUEST -> INVALID_ARGUMENT, DATA PROTECT -> PERMISSION_DENIED, space allocation failed ->
// RESOURCE_EXHAUSTED, MEDIUM/HARDWARE ERROR -> DATA_LOSS, NOT READY / UNIT ATTENTION /
// ABORTED COMMAND -> UNAVAILABLE); BUSY / TASK SET FULL / cancelled / timeout / transport error
// -> UNAVAILABLE; RESERVATION CONFLICT -> ABORTED.
Status ScsiStatus(int status, const scsi_task* task, const std::string& what);

// True for a result worth re-issuing on the same session soon (UNIT ATTENTION, BUSY, TASK SET
// FULL, NOT READY becoming ready, a LUN that is being re-created by the target manager).
bool IsTransientScsi(int status, const scsi_task* task);
// True for results that mean the session is gone (the command never reached a verdict).
bool IsTransportFailure(int status);

}  // namespace vdisk::blockdev::iscsi
