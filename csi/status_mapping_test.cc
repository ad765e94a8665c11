#include "csi/status_mapping.h"

#include <gtest/gtest.h>

namespace vdisk::csi {
namespace {

TEST(StatusMapping, EveryCodeRoundTripsWithItsMessage) {
  for (int c = 0; c <= 16; ++c) {
    auto code = static_cast<absl::StatusCode>(c);
    Status s(code, code == absl::StatusCode::kOk ? "" : "why it failed");
    grpc::Status g = ToGrpcStatus(s);
    EXPECT_EQ(static_cast<int>(g.error_code()), c);
    if (c != 0) {
      EXPECT_EQ(g.error_message(), "why it failed");
    }
    Status back = FromGrpcStatus(g);
    EXPECT_EQ(back.code(), code);
  }
}

TEST(StatusMapping, CsiMeaningsAreKept) {
  EXPECT_EQ(ToGrpcCode(absl::StatusCode::kAborted), grpc::StatusCode::ABORTED);
  EXPECT_EQ(ToGrpcCode(absl::StatusCode::kAlreadyExists), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(ToGrpcCode(absl::StatusCode::kOutOfRange), grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_EQ(ToGrpcCode(absl::StatusCode::kResourceExhausted), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(ToGrpcCode(absl::StatusCode::kFailedPrecondition), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(ToGrpcStatus(Status()).ok());
}

}  // namespace
}  // namespace vdisk::csi
