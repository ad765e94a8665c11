// Pools that keep one record file per volume and snapshot (local, nfs): the JSON form of the
// records, and the rules for pool-local ids and CSI names. Pure functions; thread-safe.
#pragma once

#include <string>

#include "blockdev/pool.h"
#include "common/status.h"

namespace vdisk::blockdev {

// The "format" every record carries; Decode refuses others.
inline constexpr int kRecordFormat = 1;
inline constexpr size_t kMaxIdBytes = 64;
inline constexpr size_t kMaxNameBytes = 1024;

// INVALID_ARGUMENT unless `id` is non-empty, at most kMaxIdBytes of [A-Za-z0-9._-], and not
// "." or "..". Every id from outside is checked with this before it touches a path.
Status ValidateId(const std::string& id);

// INVALID_ARGUMENT for an empty name, one longer than kMaxNameBytes, or one containing NUL or a
// control character. Names are never used as paths.
Status ValidateName(const std::string& name);

// A fresh id for an object called `name`: a sanitized prefix of the name plus 48 random bits.
std::string NewId(const std::string& name);

// JSON text <-> records. Decode: INVALID_ARGUMENT (naming the problem) for malformed input,
// including an id that fails ValidateId or an unknown format version.
std::string EncodeVolume(const Volume& v);
StatusOr<Volume> DecodeVolume(const std::string& json);
std::string EncodeSnapshot(const Snapshot& s);
StatusOr<Snapshot> DecodeSnapshot(const std::string& json);

}  // namespace vdisk::blockdev
