// Errors as values across every library boundary in vdisk.
//
// vdisk uses absl::Status / absl::StatusOr<T> (Debian's libabsl, already pulled in by gRPC).
// Codes carry meaning the CSI layer maps 1:1 to gRPC codes (csi/status_mapping.cc is the only
// place that does it): INVALID_ARGUMENT bad input, NOT_FOUND unknown object, ALREADY_EXISTS
// incompatible repeat, FAILED_PRECONDITION wrong state, OUT_OF_RANGE size/offset limits,
// ABORTED concurrent operation on the same object, RESOURCE_EXHAUSTED no space,
// UNAVAILABLE transient backend failure (retry), INTERNAL bugs and unexpected I/O errors.
// Messages never contain secrets.
//
// Note: Debian's absl is built with its own absl::string_view (not std::string_view); pass
// std::string (not std::string_view) to absl::StrCat and friends.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace vdisk {

using absl::Status;
using absl::StatusOr;

// Maps an errno value to a status code and message "<what>: <strerror> (errno N)".
Status ErrnoStatus(int err, std::string_view what);

// Same, for the current errno.
Status LastErrnoStatus(std::string_view what);

// Prefixes a non-OK status message with context, keeping its code.
Status Annotate(const Status& s, std::string_view context);

}  // namespace vdisk

#define VDISK_CONCAT_INNER(a, b) a##b
#define VDISK_CONCAT(a, b) VDISK_CONCAT_INNER(a, b)

// Returns from the current function if `expr` (a Status) is not OK.
#define RETURN_IF_ERROR(expr)                  \
  do {                                         \
    ::absl::Status _vdisk_st = (expr);         \
    if (!_vdisk_st.ok()) return _vdisk_st;     \
  } while (0)

// `ASSIGN_OR_RETURN(auto x, MakeX());` assigns the value of a StatusOr or returns its error.
#define ASSIGN_OR_RETURN(lhs, expr) \
  VDISK_ASSIGN_OR_RETURN_IMPL(VDISK_CONCAT(_vdisk_sor_, __LINE__), lhs, expr)
#define VDISK_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return tmp.status();               \
  lhs = std::move(tmp).value()
