#include "blockdev/iscsi/session.h"

#include <poll.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <mutex>

#include "absl/strings/str_cat.h"

namespace vdisk::blockdev::iscsi {

namespace {

using Clock = std::chrono::steady_clock;

struct LoginWait {
  bool done = false;
  int status = SCSI_STATUS_ERROR;
  std::string error;  // libiscsi's message at the time of the verdict
};

void OnLogin(iscsi_context* ctx, int status, void*, void* private_data) {
  auto* w = static_cast<LoginWait*>(private_data);
  w->done = true;
  w->status = status;
  if (status != SCSI_STATUS_GOOD) w->error = iscsi_get_error(ctx);
}

Status LoginError(const LunAddress& a, const std::string& err) {
  const std::string where = absl::StrCat("iSCSI login to ", a.iqn, " at ", a.portal);
  if (err.find("Authentication failure") != std::string::npos)
    return absl::PermissionDeniedError(absl::StrCat(where, ": CHAP authentication failed (wrong or missing credentials)"));
  if (err.find("Authorization failure") != std::string::npos)
    return absl::PermissionDeniedError(absl::StrCat(where, ": this initiator is not authorized"));
  if (err.find("Target not found") != std::string::npos || err.find("Target removed") != std::string::npos)
    return absl::NotFoundError(absl::StrCat(where, ": no such target (or its ACL does not admit this initiator)"));
  if (err.find("LOGICAL_UNIT_NOT_SUPPORTED") != std::string::npos)
    return absl::NotFoundError(absl::StrCat(where, ": the target has no LUN ", a.lun));
  return absl::UnavailableError(absl::StrCat(where, " failed: ", err));
}

// Runs a synchronous libiscsi command and turns its task into a Status (the task is freed on
// error); on success the caller owns it.
template <typename F>
StatusOr<scsi_task*> RunSync(iscsi_context* ctx, const std::string& what, F&& call) {
  scsi_task* task = call();
  if (task == nullptr)
    return absl::UnavailableError(absl::StrCat(what, " failed: ", iscsi_get_error(ctx)));
  Status s = ScsiStatus(task->status, task, what);
  if (!s.ok()) {
    scsi_free_scsi_task(task);
    return s;
  }
  return task;
}

struct TaskDeleter {
  void operator()(scsi_task* t) const { scsi_free_scsi_task(t); }
};
using TaskPtr = std::unique_ptr<scsi_task, TaskDeleter>;

}  // namespace

StatusOr<std::unique_ptr<Session>> Session::Login(const LunAddress& address, const SessionOptions& o) {
  // libiscsi writes iovecs to its socket with writev(): a target that goes away mid-write would
  // raise SIGPIPE and, at its default disposition, kill the process instead of failing the
  // session (QEMU ignores SIGPIPE for the same reason). Done once, only if nobody chose already.
  static std::once_flag sigpipe_once;
  std::call_once(sigpipe_once, [] {
    struct sigaction cur {};
    if (sigaction(SIGPIPE, nullptr, &cur) == 0 && cur.sa_handler == SIG_DFL) signal(SIGPIPE, SIG_IGN);
  });
  iscsi_context* ctx = iscsi_create_context(o.initiator.c_str());
  if (ctx == nullptr) return absl::ResourceExhaustedError("iscsi_create_context failed");
  std::unique_ptr<Session> session(new Session(ctx, address));
  iscsi_set_targetname(ctx, address.iqn.c_str());
  iscsi_set_session_type(ctx, ISCSI_SESSION_NORMAL);
  iscsi_set_header_digest(ctx, ISCSI_HEADER_DIGEST_NONE_CRC32C);
  if (o.chap.enabled()) {
    iscsi_set_initiator_username_pwd(ctx, o.chap.user.c_str(), o.chap.password.c_str());
    if (!o.chap.target_user.empty())
      iscsi_set_target_username_pwd(ctx, o.chap.target_user.c_str(), o.chap.target_password.c_str());
  }
  // vdisk reconnects itself (iscsi_queue.h): libiscsi's own reconnect would re-queue commands
  // behind our back with no deadline.
  iscsi_set_noautoreconnect(ctx, 1);
  iscsi_set_timeout(ctx, std::max(1, o.login_timeout_s));

  LoginWait wait;
  if (iscsi_full_connect_async(ctx, address.portal.c_str(), address.lun, OnLogin, &wait) != 0)
    return LoginError(address, iscsi_get_error(ctx));
  const auto deadline = Clock::now() + std::chrono::seconds(std::max(1, o.login_timeout_s));
  while (!wait.done) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0)
      return absl::UnavailableError(absl::StrCat("iSCSI login to ", address.iqn, " at ", address.portal,
                                                 " timed out after ", o.login_timeout_s, " s"));
    struct pollfd pfd = {iscsi_get_fd(ctx), static_cast<short>(iscsi_which_events(ctx)), 0};
    if (pfd.events == 0) pfd.events = POLLIN;
    int r = ::poll(&pfd, 1, static_cast<int>(std::min<int64_t>(left, 100)));
    if (r < 0 && errno != EINTR) return LastErrnoStatus("poll");
    if (iscsi_service(ctx, r > 0 ? pfd.revents : 0) < 0 && !wait.done) {
      wait.done = true;
      wait.error = iscsi_get_error(ctx);
    }
  }
  if (wait.status != SCSI_STATUS_GOOD) return LoginError(address, wait.error);
  iscsi_set_timeout(ctx, o.command_timeout_s);
  return session;
}

Session::~Session() {
  if (ctx_ == nullptr) return;
  if (!lost_ && iscsi_is_logged_in(ctx_)) iscsi_logout_sync(ctx_);
  iscsi_destroy_context(ctx_);
}

StatusOr<uint64_t> Session::ReadCapacityBytes() {
  const int lun = address_.lun;
  ASSIGN_OR_RETURN(scsi_task* raw, RunSync(ctx_, "READ CAPACITY(16)", [&] { return iscsi_readcapacity16_sync(ctx_, lun); }));
  TaskPtr task(raw);
  auto* rc = static_cast<scsi_readcapacity16*>(scsi_datain_unmarshall(task.get()));
  if (rc == nullptr) return absl::InternalError("READ CAPACITY(16): cannot parse the answer");
  return (rc->returned_lba + 1) * rc->block_length;
}

StatusOr<LunInfo> Session::Probe() {
  const int lun = address_.lun;
  LunInfo info;
  {
    ASSIGN_OR_RETURN(scsi_task* raw, RunSync(ctx_, "READ CAPACITY(16)", [&] { return iscsi_readcapacity16_sync(ctx_, lun); }));
    TaskPtr task(raw);
    auto* rc = static_cast<scsi_readcapacity16*>(scsi_datain_unmarshall(task.get()));
    if (rc == nullptr || rc->block_length == 0) return absl::InternalError("READ CAPACITY(16): cannot parse the answer");
    info.block_size = rc->block_length;
    info.size_bytes = (rc->returned_lba + 1) * rc->block_length;
    info.thin = rc->lbpme != 0;
    info.zeroes_after_unmap = rc->lbprz != 0;
  }
  {
    ASSIGN_OR_RETURN(scsi_task* raw, RunSync(ctx_, "INQUIRY", [&] { return iscsi_inquiry_sync(ctx_, lun, 0, 0, 255); }));
    TaskPtr task(raw);
    auto* std_inq = static_cast<scsi_inquiry_standard*>(scsi_datain_unmarshall(task.get()));
    if (std_inq) {
      info.third_party_copy = std_inq->threepc != 0;
      info.product = std_inq->product_identification;
      while (!info.product.empty() && info.product.back() == ' ') info.product.pop_back();
    }
  }
  bool has_b0 = false, has_b2 = false;
  {
    auto pages = RunSync(ctx_, "INQUIRY VPD 0x00",
                         [&] { return iscsi_inquiry_sync(ctx_, lun, 1, SCSI_INQUIRY_PAGECODE_SUPPORTED_VPD_PAGES, 255); });
    if (pages.ok()) {
      TaskPtr task(*pages);
      auto* sup = static_cast<scsi_inquiry_supported_pages*>(scsi_datain_unmarshall(task.get()));
      for (int i = 0; sup && i < sup->num_pages; ++i) {
        has_b0 |= sup->pages[i] == SCSI_INQUIRY_PAGECODE_BLOCK_LIMITS;
        has_b2 |= sup->pages[i] == SCSI_INQUIRY_PAGECODE_LOGICAL_BLOCK_PROVISIONING;
      }
    }
  }
  if (has_b0) {
    ASSIGN_OR_RETURN(scsi_task* raw, RunSync(ctx_, "INQUIRY VPD 0xB0", [&] {
      return iscsi_inquiry_sync(ctx_, lun, 1, SCSI_INQUIRY_PAGECODE_BLOCK_LIMITS, 255);
    }));
    TaskPtr task(raw);
    if (auto* bl = static_cast<scsi_inquiry_block_limits*>(scsi_datain_unmarshall(task.get()))) {
      info.max_xfer_blocks = bl->max_xfer_len;
      info.max_unmap_blocks = bl->max_unmap;
      info.max_unmap_descriptors = bl->max_unmap_bdc;
      info.max_write_same_blocks = bl->max_ws_len;
    }
  }
  if (has_b2 && info.thin) {
    ASSIGN_OR_RETURN(scsi_task* raw, RunSync(ctx_, "INQUIRY VPD 0xB2", [&] {
      return iscsi_inquiry_sync(ctx_, lun, 1, SCSI_INQUIRY_PAGECODE_LOGICAL_BLOCK_PROVISIONING, 255);
    }));
    TaskPtr task(raw);
    if (auto* lbp = static_cast<scsi_inquiry_logical_block_provisioning*>(scsi_datain_unmarshall(task.get()))) {
      info.unmap = lbp->lbpu != 0;
      info.write_same_unmap = lbp->lbpws != 0;
      info.zeroes_after_unmap = info.zeroes_after_unmap || lbp->lbprz != 0;
    }
  }
  return info;
}

StatusOr<ExtentList> Session::Mapped(const LunInfo& info, uint64_t offset, uint64_t length) {
  if (!info.thin) return ExtentList{{offset, length}};
  const uint64_t bs = info.block_size;
  const uint64_t first = offset / bs, end = (offset + length + bs - 1) / bs;
  ExtentList out;
  uint64_t lba = first;
  while (lba < end) {
    const int lun = address_.lun;
    auto r = RunSync(ctx_, "GET LBA STATUS", [&] { return iscsi_get_lba_status_sync(ctx_, lun, lba, 16 + 16 * 64); });
    if (!r.ok()) {
      if (absl::IsInvalidArgument(r.status())) return ExtentList{{offset, length}};  // not supported
      return r.status();
    }
    TaskPtr task(*r);
    auto* st = static_cast<scsi_get_lba_status*>(scsi_datain_unmarshall(task.get()));
    if (st == nullptr || st->num_descriptors == 0) return absl::InternalError("GET LBA STATUS: empty answer");
    uint64_t next = lba;
    for (uint32_t i = 0; i < st->num_descriptors; ++i) {
      const auto& d = st->descriptors[i];
      const uint64_t d_end = d.lba + d.num_blocks;
      if (d_end <= lba) continue;
      if (d.provisioning == SCSI_PROVISIONING_TYPE_MAPPED) {
        const uint64_t s = std::max(d.lba, lba), e = std::min(d_end, end);
        if (e > s) out.push_back({s * bs, (e - s) * bs});
      }
      next = std::max(next, d_end);
      if (next >= end) break;
    }
    if (next <= lba) return absl::InternalError("GET LBA STATUS: no progress");
    lba = next;
  }
  return Clip(Normalize(std::move(out)), offset, length);
}

StatusOr<std::string> Session::NaaDesignator() {
  const int lun = address_.lun;
  ASSIGN_OR_RETURN(scsi_task* raw, RunSync(ctx_, "INQUIRY VPD 0x83", [&] {
    return iscsi_inquiry_sync(ctx_, lun, 1, SCSI_INQUIRY_PAGECODE_DEVICE_IDENTIFICATION, 255);
  }));
  TaskPtr task(raw);
  auto* id = static_cast<scsi_inquiry_device_identification*>(scsi_datain_unmarshall(task.get()));
  for (auto* d = id ? id->designators : nullptr; d; d = d->next) {
    if (d->association == SCSI_ASSOCIATION_LOGICAL_UNIT && d->designator_type == SCSI_DESIGNATOR_TYPE_NAA)
      return std::string(d->designator, static_cast<size_t>(d->designator_length));
  }
  return std::string();
}

bool IsTransportFailure(int status) {
  return status == SCSI_STATUS_CANCELLED || status == SCSI_STATUS_ERROR || status == SCSI_STATUS_TIMEOUT;
}

bool IsTransientScsi(int status, const scsi_task* task) {
  if (status == SCSI_STATUS_BUSY || status == SCSI_STATUS_TASK_SET_FULL) return true;
  if (status != SCSI_STATUS_CHECK_CONDITION || task == nullptr) return false;
  switch (task->sense.key) {
    case SCSI_SENSE_UNIT_ATTENTION: return true;
    case SCSI_SENSE_NOT_READY: return (task->sense.ascq >> 8) == 0x04;  // becoming ready
    case SCSI_SENSE_ILLEGAL_REQUEST:
      // The target manager re-creates a LUN to grow it (tgt cannot resize one in place).
      return task->sense.ascq == SCSI_SENSE_ASCQ_LOGICAL_UNIT_NOT_SUPPORTED;
    default: return false;
  }
}

Status ScsiStatus(int status, const scsi_task* task, const std::string& what) {
  switch (status) {
    case SCSI_STATUS_GOOD:
    case SCSI_STATUS_CONDITION_MET:
      return Status();
    case SCSI_STATUS_BUSY:
    case SCSI_STATUS_TASK_SET_FULL:
      return absl::UnavailableError(absl::StrCat(what, ": target busy"));
    case SCSI_STATUS_RESERVATION_CONFLICT:
      return absl::AbortedError(absl::StrCat(what, ": reservation conflict"));
    case SCSI_STATUS_CANCELLED:
      return absl::UnavailableError(absl::StrCat(what, ": the iSCSI session was lost"));
    case SCSI_STATUS_TIMEOUT:
      return absl::UnavailableError(absl::StrCat(what, ": timed out"));
    case SCSI_STATUS_CHECK_CONDITION:
      break;
    default:
      return absl::UnavailableError(absl::StrCat(what, ": transport error (status 0x", absl::Hex(status), ")"));
  }
  if (task == nullptr) return absl::UnavailableError(absl::StrCat(what, ": check condition"));
  const int key = task->sense.key, ascq = task->sense.ascq;
  const char* key_name = scsi_sense_key_str(key);
  const char* ascq_name = scsi_sense_ascq_str(ascq);
  const std::string sense = absl::StrCat(what, ": SCSI sense ", key_name && *key_name ? key_name : "key",
                                         " (0x", absl::Hex(key), "), ASC/ASCQ 0x", absl::Hex(ascq, absl::kZeroPad4),
                                         ascq_name && *ascq_name ? absl::StrCat(" ", ascq_name) : "");
  switch (key) {
    case SCSI_SENSE_ILLEGAL_REQUEST:
      if (ascq == SCSI_SENSE_ASCQ_LBA_OUT_OF_RANGE) return absl::OutOfRangeError(sense);
      if (ascq == SCSI_SENSE_ASCQ_LOGICAL_UNIT_NOT_SUPPORTED) return absl::NotFoundError(sense);
      return absl::InvalidArgumentError(sense);
    case SCSI_SENSE_DATA_PROTECTION:
      if (ascq == 0x2707) return absl::ResourceExhaustedError(sense);  // space allocation failed
      return absl::PermissionDeniedError(sense);
    case SCSI_SENSE_MEDIUM_ERROR:
    case SCSI_SENSE_HARDWARE_ERROR:
      // tgt 1.0.85 reports any failed pwrite of its backing file — a full file system included —
      // as MEDIUM ERROR / UNRECOVERED READ ERROR; it cannot be told from a real medium error.
      if (ascq == 0x2707) return absl::ResourceExhaustedError(sense);
      return absl::DataLossError(sense);
    case SCSI_SENSE_NOT_READY:
    case SCSI_SENSE_UNIT_ATTENTION:
    case SCSI_SENSE_COMMAND_ABORTED:
      return absl::UnavailableError(sense);
    default:
      return absl::InternalError(sense);
  }
}

}  // namespace vdisk::blockdev::iscsi
