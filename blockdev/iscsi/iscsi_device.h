// The libiscsi engine: a blockdev::Device over one iSCSI LUN.
//
// Opening logs in once (a control session: READ CAPACITY(16), INQUIRY and the block limits /
// logical block provisioning VPD pages, later GET LBA STATUS for allocated()); every IoQueue
// logs in with a session of its own and keeps many commands in flight (iscsi_queue.h). Block
// size is the LUN's logical block size (512 on tgt). allocated() asks GET LBA STATUS where the
// LUN is thin-provisioned (LBPME), and returns the whole range otherwise. Thread-safe as
// blockdev::Device; the control session is used under a mutex and logged in again if it died.
//
// Open errors are those of Session::Login (UNAVAILABLE, PERMISSION_DENIED, NOT_FOUND). A device
// opened read-only refuses writes with PERMISSION_DENIED (the LUN itself may be writable).
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "blockdev/device.h"
#include "blockdev/iscsi/iscsi_queue.h"
#include "blockdev/iscsi/lun_address.h"
#include "blockdev/iscsi/session.h"

namespace vdisk::blockdev::iscsi {

class IscsiDevice final : public Device {
 public:
  // `keepalive` is held until the device and all its queues are gone (e.g. a temporary export).
  static StatusOr<std::unique_ptr<IscsiDevice>> Open(const LunAddress& address, const SessionOptions& options,
                                                     bool read_only, std::shared_ptr<void> keepalive = {});

  uint64_t size() const override { return target_->info.size_bytes; }
  uint32_t block_size() const override { return target_->info.block_size; }
  bool read_only() const override { return target_->read_only; }
  std::string describe() const override { return target_->address.describe(); }
  StatusOr<std::unique_ptr<IoQueue>> open_queue(unsigned depth) override;
  StatusOr<ExtentList> allocated(uint64_t offset, uint64_t length) override;

  const LunInfo& info() const { return target_->info; }
  const LunAddress& address() const { return target_->address; }
  // Runs `f` on the control session (logged in again first if it was lost). For EXTENDED COPY
  // and other one-off commands.
  Status WithControl(const std::function<Status(Session&)>& f);

 private:
  IscsiDevice(std::shared_ptr<QueueTarget> target, std::unique_ptr<Session> control)
      : target_(std::move(target)), control_(std::move(control)) {}

  std::shared_ptr<const QueueTarget> target_;
  std::mutex mu_;
  std::unique_ptr<Session> control_;
};

// Opens the device named by an "iscsi:" URI (lun_address.h).
StatusOr<std::unique_ptr<Device>> OpenIscsiUri(const std::string& rest, bool read_only);

}  // namespace vdisk::blockdev::iscsi
