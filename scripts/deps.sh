#!/usr/bin/env bash
# Installs every Debian 12 package vdisk needs to build, test and benchmark (idempotent).
#   scripts/deps.sh          build + test + bench dependencies (default)
#   scripts/deps.sh build    only what building needs
#   scripts/deps.sh sanitize what building needs, plus clang for the fuzz targets
set -euo pipefail

BUILD_PKGS=(
  g++ cmake ninja-build ccache pkg-config git
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  librbd-dev librados-dev libiscsi-dev libnfs-dev liburing-dev
  libspdlog-dev libbenchmark-dev libgtest-dev libgmock-dev
  libcurl4-openssl-dev libssl-dev libzstd-dev libxxhash-dev
  nlohmann-json3-dev libcli11-dev libyaml-cpp-dev
)
# Real servers and peer tools the tests and benchmarks start (see tests/env/).
TEST_PKGS=(
  util-linux mount e2fsprogs xfsprogs btrfs-progs kmod procps psmisc jq curl
  ceph-mon ceph-osd ceph-mgr radosgw ceph-common python3-rados python3-rbd python3-boto3
  tgt libiscsi-bin iproute2
  nfs-ganesha nfs-ganesha-vfs libnfs-utils
  qemu-system-x86 qemu-utils qemu-system-common qemu-block-extra busybox-static cpio
  fio awscli gdb restic linux-perf
)
# scripts/sanitize.sh: clang with compiler-rt (libFuzzer, ASan, UBSan) for fuzz/; GCC's own
# ASan/UBSan/TSan runtimes come with g++.
SANITIZE_PKGS=(clang libclang-rt-dev)

pkgs=("${BUILD_PKGS[@]}")
case "${1:-all}" in
  build) ;;
  sanitize) pkgs+=("${SANITIZE_PKGS[@]}") ;;
  *) pkgs+=("${TEST_PKGS[@]}") ;;
esac

if [[ $(id -u) -ne 0 ]]; then
  echo "deps.sh: must run as root (apt-get install)" >&2
  exit 1
fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} == 0)); then
  echo "deps.sh: all ${#pkgs[@]} packages present"
  exit 0
fi
echo "deps.sh: installing ${#missing[@]} packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# Keep Debian's daemons from starting as services: tests start their own on 127.0.0.1.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; created_policy=1
fi
# What apt prints next includes packages' service hooks failing harmlessly, because this machine
# (a container or CI runner) has no running systemd and policy-rc.d forbids starting daemons:
#   "invoke-rc.d: could not determine current runlevel", "policy-rc.d denied execution of start",
#   "Created symlink /etc/systemd/system/...", "Failed to connect to ... system_bus_socket",
#   "debconf: falling back to frontend: Teletype". None of it is an error.
echo "deps.sh: service messages from apt below (invoke-rc.d, policy-rc.d, systemd symlinks, dbus) are" \
  "expected: no daemon is started as a service; the tests start their own"
apt-get install -y -q --no-install-recommends "${missing[@]}"
if ((created_policy)); then rm -f "$policy"; fi
