#include "csi/server.h"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include "absl/strings/str_cat.h"
#include "common/fs.h"
#include "csi/controller.h"
#include "csi/group_controller.h"
#include "csi/identity.h"
#include "csi/node.h"
#include "csi/snapshot_metadata.h"
#include "spdlog/spdlog.h"

namespace vdisk::csi {

StatusOr<std::string> SocketPathFromEndpoint(const std::string& endpoint) {
  std::string path;
  if (endpoint.starts_with("unix://")) path = endpoint.substr(7);
  else if (endpoint.starts_with("unix:")) path = endpoint.substr(5);
  else if (endpoint.starts_with("/")) path = endpoint;
  else
    return absl::InvalidArgumentError(
        absl::StrCat("endpoint '", endpoint, "' is not a unix socket (unix:///path/to/csi.sock)"));
  if (path.empty() || path.front() != '/')
    return absl::InvalidArgumentError(absl::StrCat("endpoint '", endpoint, "' needs an absolute socket path"));
  if (path.size() >= 108)
    return absl::InvalidArgumentError(absl::StrCat("socket path '", path, "' is too long for a unix socket"));
  return path;
}

StatusOr<std::unique_ptr<CsiServer>> CsiServer::Start(const std::string& endpoint,
                                                      std::shared_ptr<DriverContext> ctx) {
  ASSIGN_OR_RETURN(std::string path, SocketPathFromEndpoint(endpoint));
  auto slash = path.find_last_of('/');
  if (slash > 0) RETURN_IF_ERROR(fs::MakeDirs(path.substr(0, slash), 0750));
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode))
      return absl::FailedPreconditionError(absl::StrCat(path, " exists and is not a socket; not removing it"));
    if (::unlink(path.c_str()) != 0) return LastErrnoStatus(absl::StrCat("remove stale socket ", path));
  }

  std::unique_ptr<CsiServer> s(new CsiServer());
  s->socket_path_ = path;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + path, grpc::InsecureServerCredentials());
  s->identity_ = std::make_unique<IdentityService>(ctx);
  builder.RegisterService(s->identity_.get());
  if (ctx->options().serve_controller) {
    s->controller_ = std::make_unique<ControllerService>(ctx);
    builder.RegisterService(s->controller_.get());
    s->group_controller_ = std::make_unique<GroupControllerService>(ctx);
    builder.RegisterService(s->group_controller_.get());
    s->snapshot_metadata_ = std::make_unique<SnapshotMetadataService>(ctx);
    builder.RegisterService(s->snapshot_metadata_.get());
  }
  if (ctx->options().serve_node) {
    auto node = std::make_unique<NodeService>(ctx);
    node->RestoreVhostExports();
    node->ForgetStaleCredentials();
    s->node_ = std::move(node);
    builder.RegisterService(s->node_.get());
    s->qos_refresher_ = std::make_unique<QosRefresher>(ctx, ctx->options().qos_refresh_seconds);
  }
  s->server_ = builder.BuildAndStart();
  if (!s->server_) return absl::UnavailableError(absl::StrCat("cannot listen on ", path));
  ::chmod(path.c_str(), 0660);
  return s;
}

void CsiServer::Shutdown(int grace_ms) {
  if (stopped_) return;
  stopped_ = true;
  qos_refresher_.reset();
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(grace_ms));
  server_->Wait();
  ::unlink(socket_path_.c_str());
}

CsiServer::~CsiServer() { Shutdown(0); }

}  // namespace vdisk::csi
