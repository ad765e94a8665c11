// The vdisk-csi configuration file (YAML, or JSON which is a subset of it):
//
//   driverName: vdisk.csi.io          # optional; all keys below are optional too
//   nodeId: node-1
//   endpoint: unix:///run/vdisk/csi.sock
//   role: both                        # controller | node | both
//   stateDir: /var/lib/vdisk-csi
//   allowedPathRoots: [/var/lib/kubelet]
//   maxVolumesPerNode: 0
//   topologyKey: topology.vdisk.csi.io/node
//   metricsAddress: ":9810"            # Prometheus /metrics (off unless set)
//   healthInterval: 10                # seconds between pool health checks (Probe)
//   pools:
//     - name: local                   # StorageClass parameter pool=local
//       kind: local
//       root: /var/lib/vdisk          # any other key is a backend option
//     - name: fast
//       kind: local
//       options: {root: /mnt/nvme/vdisk}
//
// Command-line flags override the file. Unknown top-level keys are INVALID_ARGUMENT (typos
// must not silently change behaviour). Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "blockdev/registry.h"
#include "common/status.h"

namespace vdisk::csi {

struct FileConfig {
  std::optional<std::string> driver_name, node_id, endpoint, role, state_dir, topology_key, vhost_dir;
  std::optional<std::vector<std::string>> allowed_path_roots;
  std::optional<int64_t> max_volumes_per_node;
  std::optional<std::string> metrics_address;
  std::optional<int64_t> health_interval_s;
  std::vector<blockdev::PoolConfig> pools;
};

StatusOr<FileConfig> ParseConfig(const std::string& text);
StatusOr<FileConfig> LoadConfigFile(const std::string& path);

}  // namespace vdisk::csi
