#include "blockdev/iscsi/iscsi_device.h"

#include "absl/strings/str_cat.h"

namespace vdisk::blockdev::iscsi {

StatusOr<std::unique_ptr<IscsiDevice>> IscsiDevice::Open(const LunAddress& address, const SessionOptions& options,
                                                         bool read_only, std::shared_ptr<void> keepalive) {
  ASSIGN_OR_RETURN(std::unique_ptr<Session> control, Session::Login(address, options));
  auto target = std::make_shared<QueueTarget>();
  target->address = address;
  target->options = options;
  target->read_only = read_only;
  target->keepalive = std::move(keepalive);
  ASSIGN_OR_RETURN(target->info, control->Probe());
  if (target->info.block_size == 0 || target->info.block_size > 65536)
    return absl::FailedPreconditionError(
        absl::StrCat(address.describe(), ": unusable logical block size ", target->info.block_size));
  return std::unique_ptr<IscsiDevice>(new IscsiDevice(std::move(target), std::move(control)));
}

StatusOr<std::unique_ptr<IoQueue>> IscsiDevice::open_queue(unsigned depth) {
  ASSIGN_OR_RETURN(auto q, IscsiQueue::Create(target_, depth));
  return std::unique_ptr<IoQueue>(std::move(q));
}

Status IscsiDevice::WithControl(const std::function<Status(Session&)>& f) {
  std::lock_guard lock(mu_);
  for (int attempt = 0;; ++attempt) {
    if (!control_) {
      ASSIGN_OR_RETURN(control_, Session::Login(target_->address, target_->options));
    }
    Status s = f(*control_);
    if (s.ok() || !absl::IsUnavailable(s) || attempt > 0) return s;
    control_->MarkLost();  // a dead session: log in once more and retry
    control_.reset();
  }
}

StatusOr<ExtentList> IscsiDevice::allocated(uint64_t offset, uint64_t length) {
  if (offset > size() || length > size() - offset)
    return absl::OutOfRangeError(absl::StrCat(describe(), ": allocated() beyond the end of the LUN"));
  ExtentList out;
  RETURN_IF_ERROR(WithControl([&](Session& s) -> Status {
    ASSIGN_OR_RETURN(out, s.Mapped(target_->info, offset, length));
    return Status();
  }));
  return out;
}

StatusOr<std::unique_ptr<Device>> OpenIscsiUri(const std::string& rest, bool read_only) {
  ASSIGN_OR_RETURN(ParsedUri uri, ParseIscsiUri(rest));
  ASSIGN_OR_RETURN(auto dev, IscsiDevice::Open(uri.address, uri.options, read_only));
  return std::unique_ptr<Device>(std::move(dev));
}

}  // namespace vdisk::blockdev::iscsi
