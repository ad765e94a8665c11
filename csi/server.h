// The gRPC server of vdisk-csi: Identity always; Controller, GroupController and SnapshotMetadata
// with the controller role; Node with the node role; on a Unix socket.
//
// Start() removes a stale socket left by a crashed predecessor (refusing to touch anything that
// is not a socket), binds, and serves on gRPC's thread pool. Shutdown() stops accepting calls,
// lets in-flight calls finish (up to a deadline), and removes the socket. Thread-safe.
#pragma once

#include <grpcpp/server.h>

#include <memory>
#include <string>

#include "common/status.h"
#include "csi/driver.h"
#include "csi/volume_gates.h"

namespace vdisk::csi {

// "unix:///run/x.sock", "unix:/run/x.sock" or "/run/x.sock" -> "/run/x.sock". INVALID_ARGUMENT
// for other schemes (tcp is not offered: CSI sockets are local).
StatusOr<std::string> SocketPathFromEndpoint(const std::string& endpoint);

class CsiServer {
 public:
  static StatusOr<std::unique_ptr<CsiServer>> Start(const std::string& endpoint,
                                                    std::shared_ptr<DriverContext> ctx);
  ~CsiServer();

  const std::string& socket_path() const { return socket_path_; }
  // Graceful stop: waits up to `grace_ms` for running calls, then cancels them.
  void Shutdown(int grace_ms = 10000);

 private:
  CsiServer() = default;
  std::string socket_path_;
  std::unique_ptr<grpc::Service> identity_, controller_, group_controller_, snapshot_metadata_, node_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<QosRefresher> qos_refresher_;  // node role: keeps exported volumes' QoS current
  bool stopped_ = false;
};

}  // namespace vdisk::csi
