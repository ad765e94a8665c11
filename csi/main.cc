// vdisk-csi: the CSI driver binary (Identity + Controller and/or Node services on a Unix socket).
//
//   vdisk-csi --endpoint unix:///run/vdisk/csi.sock --node-id n1 --pool local:/var/lib/vdisk
//
// Pools come from --pool flags (blockdev::ParsePoolFlag syntax) and/or --config (YAML/JSON, see
// csi/config.h); flags win. SIGTERM / SIGINT stop it gracefully and remove the socket.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <climits>
#include <iostream>

#include "blockdev/registry.h"
#include "common/crash_report.h"
#include "common/log.h"
#include "common/metrics_server.h"
#include "csi/config.h"
#include "csi/driver.h"
#include "csi/server.h"
#include "spdlog/spdlog.h"

namespace {

std::string Hostname() {
  char buf[HOST_NAME_MAX + 1] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "";
  return buf;
}

int Fail(const std::string& msg) {
  std::cerr << "vdisk-csi: " << msg << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  vdisk::InstallCrashReporter("vdisk-csi");
  CLI::App app{"vdisk-csi: CSI driver for VM disks (Identity, Controller, Node)"};
  std::string endpoint, node_id, role, config_path, driver_name, state_dir, topology_key, vhost_dir;
  std::vector<std::string> pool_flags, allowed_roots;
  int64_t max_volumes = -1;
  int verbosity = 0;
  bool json_logs = false;
  app.add_option("--endpoint", endpoint, "CSI socket, unix:///path/to/csi.sock");
  app.add_option("--node-id", node_id, "This node's id (default: hostname)");
  app.add_option("--role", role, "Services to serve: controller, node or both (default both)")
      ->check(CLI::IsMember({"controller", "node", "both"}));
  app.add_option("--pool", pool_flags, "A pool: <kind>:<path> or name=..,kind=..,<key>=<value> (repeatable)");
  app.add_option("--config", config_path, "Configuration file (YAML or JSON)");
  app.add_option("--driver-name", driver_name, "CSI driver name (default vdisk.csi.io)");
  app.add_option("--state-dir", state_dir, "Node state directory (default /var/lib/vdisk-csi)");
  app.add_option("--allowed-target-root", allowed_roots,
                 "Staging/target paths must lie under this directory (repeatable; e.g. /var/lib/kubelet). "
                 "Default: any absolute path");
  app.add_option("--max-volumes-per-node", max_volumes, "Reported by NodeGetInfo (0 = no limit)");
  int64_t vhost_gid = -1;
  app.add_option("--vhost-socket-group", vhost_gid,
                 "Numeric group of the vhost-user sockets (attach: vhost-user), mode 0660, so an "
                 "unprivileged QEMU in that group can connect (KubeVirt's qemu: 107)");
  app.add_option("--vhost-dir", vhost_dir,
                 "Short node-local directory for the vhost-user sockets (attach: vhost-user), kept "
                 "across restarts; at most 70 bytes (default <state-dir>/vhost)");
  app.add_option("--topology-key", topology_key, "Topology segment key naming the node");
  std::string metrics_address;
  app.add_option("--metrics-address", metrics_address,
                 "Serve Prometheus metrics over HTTP at host:port or :port (GET /metrics); off "
                 "unless given");
  int64_t health_interval_s = 0;
  app.add_option("--health-interval", health_interval_s,
                 "Seconds between pool health checks, which Probe reports (default 10)")
      ->check(CLI::Range(1, 3600));
  bool snapshot_metadata = false;
  app.add_flag("--snapshot-metadata", snapshot_metadata,
               "Advertise SNAPSHOT_METADATA_SERVICE (changed-block tracking, for the "
               "external-snapshot-metadata sidecar); the service is served either way");
  int qos_refresh = -1;
  app.add_option("--qos-refresh-seconds", qos_refresh,
                 "How often the node re-reads the QoS of the volumes it exports (default 5; 0 = never)");
  app.add_flag("-v,--verbose", verbosity, "More log output (-v info, -vv debug with redacted requests)");
  app.add_flag("--log-json", json_logs, "Log one JSON object per line");
  CLI11_PARSE(app, argc, argv);

  vdisk::InitLogging(verbosity, json_logs);
  vdisk::blockdev::RegisterBuiltinBackends();

  vdisk::csi::FileConfig file;
  if (!config_path.empty()) {
    auto loaded = vdisk::csi::LoadConfigFile(config_path);
    if (!loaded.ok()) return Fail(loaded.status().ToString());
    file = std::move(*loaded);
  }
  vdisk::csi::DriverOptions opts;
  auto pick = [](const std::string& flag, const std::optional<std::string>& from_file, std::string fallback) {
    if (!flag.empty()) return flag;
    if (from_file) return *from_file;
    return fallback;
  };
  endpoint = pick(endpoint, file.endpoint, "");
  if (endpoint.empty()) return Fail("--endpoint is required (e.g. unix:///run/vdisk/csi.sock)");
  opts.node_id = pick(node_id, file.node_id, Hostname());
  if (opts.node_id.empty()) return Fail("--node-id is required (no hostname available)");
  role = pick(role, file.role, "both");
  if (role != "controller" && role != "node" && role != "both")
    return Fail("role must be controller, node or both, got '" + role + "'");
  opts.serve_controller = role != "node";
  opts.serve_node = role != "controller";
  opts.driver_name = pick(driver_name, file.driver_name, vdisk::csi::kDefaultDriverName);
  opts.state_dir = pick(state_dir, file.state_dir, opts.state_dir);
  opts.topology_key = pick(topology_key, file.topology_key, opts.topology_key);
  opts.vhost_dir = pick(vhost_dir, file.vhost_dir, "");
  if (!allowed_roots.empty()) opts.allowed_path_roots = allowed_roots;
  else if (file.allowed_path_roots) opts.allowed_path_roots = *file.allowed_path_roots;
  for (const auto& r : opts.allowed_path_roots)
    if (r.empty() || r.front() != '/') return Fail("allowed target root '" + r + "' must be an absolute path");
  opts.vhost_socket_gid = vhost_gid;
  opts.advertise_snapshot_metadata = snapshot_metadata;
  if (qos_refresh >= 0) opts.qos_refresh_seconds = qos_refresh;
  if (max_volumes >= 0) opts.max_volumes_per_node = max_volumes;
  else if (file.max_volumes_per_node) opts.max_volumes_per_node = *file.max_volumes_per_node;

  auto pools = std::make_shared<vdisk::blockdev::PoolSet>();
  for (const auto& flag : pool_flags) {
    auto pc = vdisk::blockdev::ParsePoolFlag(flag);
    if (!pc.ok()) return Fail(pc.status().ToString());
    pc->node_id = opts.node_id;
    if (auto s = pools->Add(*pc); !s.ok()) return Fail(s.ToString());
  }
  for (auto pc : file.pools) {
    if (pools->contains(pc.name)) continue;  // a flag with the same name wins
    pc.node_id = opts.node_id;
    if (auto s = pools->Add(pc); !s.ok()) return Fail(s.ToString());
  }
  if (pools->names().empty()) return Fail("no pool configured: give --pool local:/var/lib/vdisk or --config");

  // Signals are handled by sigwait() below; block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto ctx = std::make_shared<vdisk::csi::DriverContext>(opts, pools);
  if (auto s = ctx->Init(); !s.ok()) return Fail(s.ToString());
  // Open every pool now so a broken configuration fails at start-up, not at the first call.
  for (const auto& name : pools->names()) {
    auto pool = pools->Get(name, vdisk::csi::kNoCallSecrets);
    if (!pool.ok()) {
      if (absl::IsUnauthenticated(pool.status()))
        spdlog::warn("pool {} has no identity of its own: each call must bring CSI secrets", name);
      else if (absl::IsUnavailable(pool.status()) || absl::IsPermissionDenied(pool.status()))
        spdlog::warn("pool {} not usable yet: {}", name, pool.status().ToString());
      else
        return Fail("pool " + name + ": " + pool.status().ToString());
    }
  }
  if (health_interval_s == 0) health_interval_s = file.health_interval_s.value_or(10);
  // A check that has not returned after one interval plus 5 s means a backend that stopped
  // answering (librados waits instead of failing).
  ctx->StartHealthMonitor(std::chrono::seconds(health_interval_s),
                          std::chrono::seconds(health_interval_s + 5));
  std::unique_ptr<vdisk::metrics::MetricsServer> metrics_server;
  metrics_address = pick(metrics_address, file.metrics_address, "");
  if (!metrics_address.empty()) {
    auto started = vdisk::metrics::MetricsServer::Start(metrics_address,
                                                        &vdisk::metrics::Registry::Default());
    if (!started.ok()) return Fail("--metrics-address: " + started.status().ToString());
    metrics_server = std::move(*started);
    spdlog::warn("vdisk-csi: Prometheus metrics on {} (port {}), GET /metrics", metrics_address,
                 metrics_server->port());
  }
  auto server = vdisk::csi::CsiServer::Start(endpoint, ctx);
  if (!server.ok()) return Fail(server.status().ToString());
  spdlog::warn("vdisk-csi {} serving {} on {} node={} role={} pools={}", vdisk::csi::kVendorVersion,
               opts.driver_name, (*server)->socket_path(), opts.node_id, role, pools->names().size());

  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::warn("vdisk-csi: signal {} received, shutting down", sig);
  ctx->RequestCancel();  // running host copies stop at their next chunk and stay resumable
  (*server)->Shutdown();
  spdlog::warn("vdisk-csi: stopped, socket {} removed", (*server)->socket_path());
  return 0;
}
