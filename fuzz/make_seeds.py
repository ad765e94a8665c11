#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/corpus/<target>/ (run again after changing a format).

Seeds are small valid (and a few nearly valid) inputs so that the fuzzers start from inside
each parser rather than from its first rejection.
"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def put(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


# S3 responses as radosgw and AWS send them.
put("s3_xml_fuzz", "list", """<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>packs/</Prefix>
<KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated>
<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
<Contents><Key>packs/a&amp;b</Key><LastModified>2026-12-06T10:00:00.000Z</LastModified>
<ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag><Size>8388608</Size></Contents>
<Contents><Key>packs/&#x41;&#66;</Key><Size>12</Size></Contents></ListBucketResult>""")
put("s3_xml_fuzz", "initiate", "<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key>"
    "<UploadId>2~abc</UploadId></InitiateMultipartUploadResult>")
put("s3_xml_fuzz", "uploads", "<ListMultipartUploadsResult><Upload><Key>k</Key><UploadId>1</UploadId>"
    "</Upload><Upload><Key>k2</Key><UploadId>2</UploadId></Upload></ListMultipartUploadsResult>")
put("s3_xml_fuzz", "error", "<Error><Code>SlowDown</Code><Message>Please reduce &lt;rate&gt;"
    "</Message><RequestId>tx0</RequestId></Error>")
put("s3_xml_fuzz", "broken", "<Error><Code>NoSuchKey<Message>&#xFFFFFFFF;&#; &bogus;</Code>")

# CSI ids (NUL-separated fields), then key/value StorageClass parameters.
put("csi_ids_fuzz", "volume", b"vdisk1.v.local.pvc-0a1b2c3d-1234\0vdisk1.s.ceph.snap-1")
put("csi_ids_fuzz", "params", b"x\0pool\0ceph\0rbd_pool\0vms\0features\0layering,exclusive-lock,"
    b"object-map,fast-diff\0clone_soft_depth\x002\0clone_hard_depth\x004\0data_pool\0ec")
put("csi_ids_fuzz", "bad", b"\0vdisk1.v..\0" + b"a" * 200 + b"\0op_timeout\0-1\0connect_timeout\x0099999")

# The configuration file.
put("config_fuzz", "full", """driverName: vdisk.csi.io
nodeId: node-1
endpoint: unix:///run/vdisk/csi.sock
role: both
stateDir: /var/lib/vdisk-csi
allowedPathRoots: [/var/lib/kubelet]
maxVolumesPerNode: 0
topologyKey: topology.vdisk.csi.io/node
metricsAddress: ":9810"
healthInterval: 10
pools:
  - name: local
    kind: local
    root: /var/lib/vdisk
  - name: fast
    kind: local
    options: {root: /mnt/nvme/vdisk}
  - name: ceph
    kind: rbd
    conf: /etc/ceph/ceph.conf
    user: vdisk
    op_timeout: 120
""")
put("config_fuzz", "json", json.dumps({"nodeId": "n", "pools": [{"name": "p", "kind": "local", "root": "/x"}]}))
put("config_fuzz", "bad", "pools: {a: [1, {b: &x *x}]}\nhealthInterval: -1\nunknownKey: 1\n")


# Virtqueues: header (ring size log2, flags, last_avail_idx, inflight entries) + guest RAM.
def ring(num_log2, flags, chains, last_avail=0, extra=b""):
    num = 1 << num_log2
    ram = bytearray(16 << 10)
    desc, avail = 0, 16 * num
    used = (avail + 6 + 2 * num + 3) & ~3
    buf = 0x2000
    heads = []
    i = 0
    for chain in chains:  # chain: list of (len, write, indirect_entries or None)
        heads.append(i)
        for j, (ln, wr, ind) in enumerate(chain):
            fl = (2 if wr else 0) | (1 if j + 1 < len(chain) else 0)
            addr = buf
            if ind is not None:  # an indirect table of `ind` descriptors
                fl = 4
                tbl = buf
                for k in range(ind):
                    struct.pack_into("<QIHH", ram, tbl + 16 * k, buf + 0x400 + 64 * k, 64,
                                     (2 if k else 0) | (1 if k + 1 < ind else 0), k + 1)
                ln = 16 * ind
            struct.pack_into("<QIHH", ram, desc + 16 * i, addr, ln, fl, i + 1)
            buf += 0x800
            i += 1
    struct.pack_into("<HH", ram, avail, 0, (last_avail + len(heads)) & 0xffff)
    for n, h in enumerate(heads):
        struct.pack_into("<H", ram, avail + 4 + 2 * ((last_avail + n) % num), h)
    hdr = struct.pack("<BBHHH", num_log2, flags, last_avail, 0, 0)
    return hdr + bytes(ram[:used + 6 + 8 * num + 0x2000]) + extra


put("virtqueue_fuzz", "blk_read", ring(3, 0, [[(16, False, None), (512, True, None), (1, True, None)]]))
put("virtqueue_fuzz", "event_idx", ring(4, 1, [[(16, False, None), (1, True, None)]] * 3, last_avail=65534))
put("virtqueue_fuzz", "indirect", ring(3, 3, [[(0, False, 4)]]))
put("virtqueue_fuzz", "loop", ring(2, 0, [[(16, False, None)] * 6]))
inflight = struct.pack("<QHHHH", 0, 1, 8, 0, 0) + b"".join(
    struct.pack("<B5xHQ", 1 if k in (0, 2) else 0, 0, k) for k in range(8))
hdr = bytearray(ring(3, 4, [[(16, False, None), (1, True, None)]]))
struct.pack_into("<H", hdr, 4, 8)
put("virtqueue_fuzz", "inflight", bytes(hdr[:8]) + bytes(hdr[8:]).ljust(16 << 10, b"\0") + inflight)

# Backup objects: [decoder][object]. 3 = a manifest's JSON (sealed by the harness).
manifest = {"version": 1, "id": "m", "group": "ns/vm", "created": 1765000000000, "parent": "",
            "tags": {"a": "b"}, "disks": [{"name": "rootdisk", "size_bytes": 1048576,
            "block_size": 512, "chunk_size": 65536, "chunks": "AAAAAA==", "unallocated": [[0, 4096]]}]}
put("backup_objects_fuzz", "manifest", b"\x03" + json.dumps(manifest).encode())
put("backup_objects_fuzz", "index", b"\x02" + struct.pack("<I", 1) + b"a" * 64 + struct.pack("<QI", 100, 1)
    + b"\x01" * 32 + struct.pack("<QII", 0, 50, 60))
put("backup_objects_fuzz", "trailer", b"\x01" + struct.pack("<I", 1) + b"\x02" * 32 + struct.pack("<QII", 0, 10, 20))
put("backup_objects_fuzz", "footer", b"\x00" + b"x" * 40 + struct.pack("<I", 28) + b"VDPACK01")
put("backup_objects_fuzz", "chunk", b"\x05" + struct.pack("<I", 5) + b"\x00hello")
put("backup_objects_fuzz", "key", b"\x06" + json.dumps({"kdf": "hkdf-sha256", "salt": "AAAA",
    "wrapped": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "created": 1}).encode())
put("backup_objects_fuzz", "key_scrypt", b"\x06" + json.dumps({"kdf": "scrypt", "salt": "AA==",
    "wrapped": "AA==", "scrypt": {"n": "x", "r": 8, "p": 1}}).encode())
put("backup_objects_fuzz", "hex", b"\x07" + b"0f" * 32)

# vhost-user sessions (vhost_user_fuzz.cc's script format): a QEMU-like start-up, rings in guest
# RAM, requests, a kick, then the calls QEMU makes when the guest stops.
VA = 0x7F0000000000


def msg(request, payload=b"", fd=0, need_reply=False):
    return struct.pack("<BBH", request - 1, (fd << 1) | int(need_reply), len(payload)) + payload


def ram(off, data):
    out = b""
    while data:
        part, data = data[:255], data[255:]
        out += struct.pack("<BHB", 0xFF, off, len(part)) + part
        off += len(part)
    return out


def blk_ring(num, requests):
    """Descriptor table at GPA 0, avail/used after it; each request = (type, sector, data_len)."""
    desc, avail = 0, 16 * num
    used = (avail + 6 + 2 * num + 3) & ~3
    table, heads = b"", []
    for k, (kind, sector, length) in enumerate(requests):
        base = 0x1000 + k * 0x1000
        head = len(table) // 16
        heads.append(head)
        chain = [(base, 16, 0)]
        if length:
            chain.append((base + 0x100, length, 2 if kind == 0 else 0))
        chain.append((base + 0xF00, 1, 2))
        for j, (addr, ln, wflag) in enumerate(chain):
            last = j == len(chain) - 1
            table += struct.pack("<QIHH", addr, ln, wflag | (0 if last else 1), head + j + 1 if not last else 0)
    out = ram(desc, table)
    out += ram(avail, struct.pack("<HH", 0, len(heads)) + b"".join(struct.pack("<H", h) for h in heads))
    for k, (kind, sector, length) in enumerate(requests):
        out += ram(0x1000 + k * 0x1000, struct.pack("<IIQ", kind, 0, sector))
        if kind == 1 and length:
            out += ram(0x1100 + k * 0x1000, bytes([0x5A]) * min(length, 255))
    return out, desc, avail, used


def session(num_queues, num, requests, features, inflight=False, tail=b""):
    rings, desc, avail, used = blk_ring(num, requests)
    s = bytes([num_queues - 1])
    s += msg(1, need_reply=True) + msg(15, need_reply=True)
    s += msg(2, struct.pack("<Q", features)) + msg(16, struct.pack("<Q", 0x1229)) + msg(17)
    s += msg(21, fd=5)
    s += msg(24, struct.pack("<III", 0, 60, 0) + bytes(60))
    if inflight:
        s += msg(31, struct.pack("<QQHHI", 0, 0, num_queues, num, 0))
        s += msg(32, struct.pack("<QQHHI", 4096, 0, num_queues, num, 0), fd=4)
    s += msg(5, struct.pack("<II", 1, 0) + struct.pack("<QQQQ", 0, 64 << 10, VA, 0), fd=1, need_reply=True)
    s += msg(8, struct.pack("<II", 0, num)) + msg(10, struct.pack("<II", 0, 0))
    s += msg(9, struct.pack("<IIQQQQ", 0, 0, VA + desc, VA + used, VA + avail, 0))
    s += msg(13, struct.pack("<Q", 0), fd=2)
    s += rings
    s += msg(12, struct.pack("<Q", 0), fd=2) + msg(18, struct.pack("<II", 0, 1)) + b"\xfe"
    s += tail + msg(11, struct.pack("<II", 0, 0)) + msg(34)
    return s


F = (1 << 32) | (1 << 30) | (1 << 28) | (1 << 29)
put("vhost_user_fuzz", "read", session(1, 8, [(0, 0, 512)], 1 << 32 | 1 << 30))
put("vhost_user_fuzz", "write_flush", session(2, 16, [(1, 8, 1024), (4, 0, 0), (8, 0, 0)], F))
put("vhost_user_fuzz", "inflight", session(1, 8, [(0, 2040, 4096), (1, 3, 512)], F, inflight=True))
put("vhost_user_fuzz", "remap", session(1, 8, [(0, 0, 512)], F, tail=msg(
    5, struct.pack("<II", 2, 0) + struct.pack("<QQQQ", 0, 32 << 10, VA, 0)
    + struct.pack("<QQQQ", 32 << 10, 32 << 10, VA + (32 << 10), 32 << 10), fd=7) + b"\xfe"))
put("vhost_user_fuzz", "bad_fds", bytes([3]) + msg(13, struct.pack("<Q", 0), fd=6)
    + msg(12, struct.pack("<Q", 0x100)) + msg(5, b"\x09" + bytes(7), fd=1) + msg(22, bytes(300))
    + msg(32, struct.pack("<QQHHI", 1 << 40, 0, 1, 8, 0), fd=4))
