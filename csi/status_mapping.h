// The one place where vdisk's absl::Status codes become gRPC status codes and back.
//
// vdisk libraries already use the CSI meaning of each code (see common/status.h), so the map is
// one-to-one by name; this file makes that explicit, keeps the message, and is the single point
// to change should a code ever need translating. Thread-safe, pure.
#pragma once

#include <grpcpp/support/status.h>

#include "common/status.h"

namespace vdisk::csi {

grpc::StatusCode ToGrpcCode(absl::StatusCode code);
absl::StatusCode FromGrpcCode(grpc::StatusCode code);

// OK maps to grpc::Status::OK. Messages are kept as they are (they never hold secrets).
grpc::Status ToGrpcStatus(const Status& status);
Status FromGrpcStatus(const grpc::Status& status);

}  // namespace vdisk::csi
