// The VM's Kubernetes manifests (VirtualMachine, PVC, DataVolume, Secret references ...)
// stored beside its disks: loaded from files or directories at backup time, written back out
// at restore time. Thread-safe (no shared state).
#pragma once

#include <string>
#include <vector>

#include "backup/repo/manifest.h"
#include "common/status.h"

namespace vdisk::backup {

// Reads each path: a file, or a directory whose *.yaml / *.yml / *.json files are read in name
// order (not recursive). Every file must parse as YAML (several documents allowed) whose
// documents are mappings. NOT_FOUND for a missing path, INVALID_ARGUMENT for bad YAML.
StatusOr<std::vector<KubeObject>> LoadKubeManifests(const std::vector<std::string>& paths);

// Parses YAML text given directly (e.g. from a command-line argument) named `file`.
StatusOr<KubeObject> ParseKubeManifest(const std::string& file, const std::string& yaml);

// Writes each object to <dir>/<file> (dir created; name clashes get a numeric suffix).
// Returns the paths written.
StatusOr<std::vector<std::string>> WriteKubeManifests(const std::vector<KubeObject>& objects,
                                                      const std::string& dir);

}  // namespace vdisk::backup
