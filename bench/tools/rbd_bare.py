#!/usr/bin/python3
"""The bare librbd cost of a control-plane operation, in a client that is already connected
(what a long-running driver pays; the rbd CLI adds its process start and cluster connect).

  rbd_bare.py <conf> <user> <keyring> <pool> snapshot <image> <snap-name>
  rbd_bare.py <conf> <user> <keyring> <pool> clone <image> <snap-name> <clone-name>

Connects first (not timed), then times the operation alone, as the rbd CLI does it:
snapshot = open the image, create the snapshot, close; clone = rbd clone (v2) of image@snap.
Prints the milliseconds on stdout.
"""
import sys
import time

import rados
import rbd


def main():
    conf, user, keyring, pool, op = sys.argv[1:6]
    cluster = rados.Rados(conffile=conf, rados_id=user, conf={"keyring": keyring})
    cluster.connect()
    io = cluster.open_ioctx(pool)
    try:
        if op == "snapshot":
            image, snap = sys.argv[6:8]
            t0 = time.monotonic()
            with rbd.Image(io, image) as img:
                img.create_snap(snap)
            t1 = time.monotonic()
        elif op == "clone":
            image, snap, child = sys.argv[6:9]
            t0 = time.monotonic()
            rbd.RBD().clone(io, image, snap, io, child)  # v2: the cluster conf's default
            t1 = time.monotonic()
        else:
            sys.exit(f"unknown op {op}")
        print(f"{(t1 - t0) * 1000:.1f}")
    finally:
        io.close()
        cluster.shutdown()


if __name__ == "__main__":
    main()
