// Runs one CSI RPC handler (ServeRpc; ServeStreamRpc for server-streaming calls): logs the call
// (request with secrets redacted at debug level, the outcome and duration at info level), counts
// it (rpc_metrics.h), turns the handler's Status into a gRPC status through
// status_mapping, and turns an escaped C++ exception into INTERNAL instead of a crash.
#pragma once

#include <grpcpp/support/status.h>

#include <chrono>
#include <exception>

#include "absl/functional/function_ref.h"
#include "common/status.h"
#include "csi/request_log.h"
#include "csi/rpc_metrics.h"
#include "csi/status_mapping.h"
#include "spdlog/spdlog.h"

namespace vdisk::csi {

namespace rpc_internal {

// Runs `handler`, turning an escaped exception into INTERNAL; `ms` gets the duration.
inline Status Run(const char* method, const google::protobuf::Message& request,
                  absl::FunctionRef<Status()> handler, double* ms) {
  const auto start = std::chrono::steady_clock::now();
  metrics::InFlight in_flight(RpcInFlight(method));
  if (spdlog::should_log(spdlog::level::debug))
    spdlog::debug("rpc={} request=\"{}\"", method, Redact(request));
  Status status;
  try {
    status = handler();
  } catch (const std::exception& e) {
    status = absl::InternalError(std::string("unexpected exception: ") + e.what());
  } catch (...) {
    status = absl::InternalError("unexpected exception");
  }
  *ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  RecordRpc(method, status.code(), *ms / 1000);
  return status;
}

inline void LogFailure(const char* method, const Status& status, double ms) {
  auto level = status.code() == absl::StatusCode::kInternal ||
                       status.code() == absl::StatusCode::kDataLoss ||
                       status.code() == absl::StatusCode::kUnknown
                   ? spdlog::level::err
                   : spdlog::level::info;
  spdlog::log(level, "rpc={} code={} ms={:.1f} error=\"{}\"", method,
              absl::StatusCodeToString(status.code()), ms, std::string(status.message()));
}

}  // namespace rpc_internal

// A server-streaming call: the handler writes its messages itself; only the outcome is logged.
template <typename Request>
grpc::Status ServeStreamRpc(const char* method, const Request& request,
                            absl::FunctionRef<Status()> handler) {
  double ms = 0;
  Status status = rpc_internal::Run(method, request, handler, &ms);
  if (status.ok()) spdlog::info("rpc={} code=OK ms={:.1f}", method, ms);
  else rpc_internal::LogFailure(method, status, ms);
  return ToGrpcStatus(status);
}

template <typename Request, typename Response>
grpc::Status ServeRpc(const char* method, const Request& request, Response* response,
                      absl::FunctionRef<Status()> handler) {
  double ms = 0;
  Status status = rpc_internal::Run(method, request, handler, &ms);
  if (status.ok()) {
    spdlog::info("rpc={} code=OK ms={:.1f}", method, ms);
    if (spdlog::should_log(spdlog::level::debug))
      spdlog::debug("rpc={} response=\"{}\"", method, Redact(*response));
  } else {
    rpc_internal::LogFailure(method, status, ms);
    response->Clear();
  }
  return ToGrpcStatus(status);
}

}  // namespace vdisk::csi
