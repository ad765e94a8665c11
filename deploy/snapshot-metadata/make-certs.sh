#!/usr/bin/env bash
# TLS for the snapshot-metadata sidecar: a CA and a server certificate for the Service's DNS
# names, the secret the Deployment mounts, and the SnapshotMetadataService object with the CA.
#   deploy/snapshot-metadata/make-certs.sh [namespace] [days]
# Needs openssl and kubectl (with rights in the namespace and on the cluster-scoped object).
set -euo pipefail
ns=${1:-vdisk-system}
days=${2:-365}
svc=vdisk-csi-snapshot-metadata
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir"
printf 'subjectAltName=DNS:%s,DNS:%s.%s,DNS:%s.%s.svc,DNS:%s.%s.svc.cluster.local\n' \
  "$svc" "$svc" "$ns" "$svc" "$ns" "$svc" "$ns" > ext.cnf
openssl req -x509 -newkey rsa:4096 -days "$days" -nodes -keyout ca-key.pem -out ca-cert.pem \
  -subj "/CN=vdisk snapshot-metadata CA" 2>/dev/null
openssl req -newkey rsa:4096 -nodes -keyout server-key.pem -out server-req.pem -subj "/CN=$svc.$ns" 2>/dev/null
openssl x509 -req -in server-req.pem -days "$days" -CA ca-cert.pem -CAkey ca-key.pem -CAcreateserial \
  -out server-cert.pem -extfile ext.cnf 2>/dev/null
kubectl -n "$ns" create secret tls "$svc-certs" --cert=server-cert.pem --key=server-key.pem \
  --dry-run=client -o yaml | kubectl apply -f -
ca=$(base64 -w0 < ca-cert.pem)
cat <<YAML | kubectl apply -f -
apiVersion: cbt.storage.k8s.io/v1beta1
kind: SnapshotMetadataService
metadata:
  name: vdisk.csi.io
  labels:
    app.kubernetes.io/part-of: vdisk
spec:
  address: $svc.$ns:6443
  caCert: $ca
  audience: vdisk-snapshot-metadata
YAML
echo "secret $ns/$svc-certs and SnapshotMetadataService vdisk.csi.io are in place"
