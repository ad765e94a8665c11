#include "common/status.h"

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace vdisk {

namespace {
absl::StatusCode CodeForErrno(int err) {
  switch (err) {
    case 0: return absl::StatusCode::kOk;
    case ENOENT: case ENXIO: case ENODEV: return absl::StatusCode::kNotFound;
    case EEXIST: case ENOTEMPTY: return absl::StatusCode::kAlreadyExists;
    case EINVAL: case ENAMETOOLONG: case EBADF: return absl::StatusCode::kInvalidArgument;
    case ENOSPC: case EDQUOT: case ENOMEM: case EMFILE: case ENFILE: case EAGAIN:
      return absl::StatusCode::kResourceExhausted;
    case EROFS: case EPERM: case EACCES: return absl::StatusCode::kPermissionDenied;
    case EBUSY: case ETXTBSY: return absl::StatusCode::kFailedPrecondition;
    case EFBIG: case EOVERFLOW: case ERANGE: return absl::StatusCode::kOutOfRange;
    case EOPNOTSUPP: case ENOSYS: case ENOTTY: case EXDEV: return absl::StatusCode::kUnimplemented;
    case ETIMEDOUT: case ECONNREFUSED: case ECONNRESET: case EHOSTUNREACH: case ENOTCONN:
    case EPIPE: case ESHUTDOWN: return absl::StatusCode::kUnavailable;
    case ECANCELED: case EINTR: return absl::StatusCode::kCancelled;
    case EIO: case EILSEQ: case EBADMSG: return absl::StatusCode::kDataLoss;
    default: return absl::StatusCode::kInternal;
  }
}
}  // namespace

Status ErrnoStatus(int err, std::string_view what) {
  if (err < 0) err = -err;
  if (err == 0) return Status();
  return Status(CodeForErrno(err), absl::StrCat(std::string(what), ": ", std::strerror(err), " (errno ", err, ")"));
}

Status LastErrnoStatus(std::string_view what) { return ErrnoStatus(errno, what); }

Status Annotate(const Status& s, std::string_view context) {
  if (s.ok()) return s;
  return Status(s.code(), absl::StrCat(std::string(context), ": ", s.message()));
}

}  // namespace vdisk
