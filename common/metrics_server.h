// A minimal HTTP/1.1 endpoint for Prometheus: GET /metrics answers Registry::Render() in the
// text exposition format; GET / names the endpoint; anything else is 404 / 405. One request per
// connection (Connection: close), handled one at a time on the server's own thread, with 5 s
// socket timeouts so a stuck client cannot hold it. Thread-safe; the registry must outlive it.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "common/metrics.h"
#include "common/status.h"

namespace vdisk::metrics {

class MetricsServer {
 public:
  // `address` is "host:port", ":port" (every interface) or "[v6addr]:port"; port 0 picks a free
  // port (see port()). INVALID_ARGUMENT for a malformed address, the errno for bind failures.
  static StatusOr<std::unique_ptr<MetricsServer>> Start(const std::string& address,
                                                        Registry* registry);
  ~MetricsServer();  // stops serving and closes the socket

  int port() const { return port_; }

 private:
  MetricsServer() = default;
  void Loop();
  void Serve(int fd);
  Registry* registry_ = nullptr;
  int listen_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: written to stop the loop
  int port_ = 0;
  std::thread thread_;
};

// Splits "host:port" / ":port" / "[v6]:port"; INVALID_ARGUMENT if there is no numeric port.
StatusOr<std::pair<std::string, int>> ParseHostPort(const std::string& address);

}  // namespace vdisk::metrics
