#!/usr/bin/python3
"""Queue depth over time from a perf trace (bench/tools/inflight.sh records it).

Reads `perf script` output of block:block_rq_issue / block:block_rq_complete (one device) and
syscalls:sys_enter_io_uring_enter (one process), and prints for the traced run:
  - the device's time-weighted mean number of requests in flight, and the share of time spent
    at each in-flight level (0, 1-7, 8-15, 16-23, 24-31, >=32);
  - the longest and mean gaps with nothing in flight (the "idle between bursts" of a lockstep);
  - io_uring_enter calls per I/O and how many SQEs each call submitted (histogram).
A workload that holds its queue depth keeps the device near the depth it was given; one that
runs in lockstep alternates between a full burst and an idle device.
"""
import re
import sys
from collections import Counter

BLOCK = re.compile(r"\s(\d+\.\d+):\s+block:block_rq_(issue|complete):\s+(\d+),(\d+)\s+\S+\s+\d*\s*\(\)\s+(\d+)\s+\+\s+(\d+)")
ENTER = re.compile(r"\s(\d+\.\d+):\s+syscalls:sys_enter_io_uring_enter:.*to_submit: (0x[0-9a-f]+|\d+), min_complete: (0x[0-9a-f]+|\d+)")


def main():
    dev = sys.argv[1] if len(sys.argv) > 1 else None  # "254,0"
    # Only requests issued by this command (perf's trailing [comm]); others on the device
    # (other processes of a shared machine) are left out.
    comm = sys.argv[2] if len(sys.argv) > 2 else None
    # Pass 1: pair each issue with the next completion of the same sector. A request whose
    # completion perf lost (buffer overrun under load) is left out rather than counted forever.
    open_reqs = {}
    intervals = []
    enters = Counter()
    n_enter = 0
    for line in sys.stdin:
        m = BLOCK.search(line)
        if m:
            t = float(m.group(1))
            kind, major, minor, sector = m.group(2), m.group(3), m.group(4), m.group(5)
            if dev and f"{major},{minor}" != dev:
                continue
            key = (major, minor, sector)
            if kind == "issue":
                if comm and not line.rstrip().endswith(f"[{comm}]"):
                    continue
                open_reqs.setdefault(key, []).append(t)
            elif open_reqs.get(key):
                intervals.append((open_reqs[key].pop(0), t))
            continue
        m = ENTER.search(line)
        if m and (not comm or line.split()[0] == comm):
            n_enter += 1
            enters[int(m.group(2), 0)] += 1
    lost = sum(len(v) for v in open_reqs.values())
    if not intervals:
        print("no block events for the device")
        return
    # Pass 2: the in-flight level over time.
    events = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals])
    first_t, last_t = events[0][0], events[-1][0]
    span = last_t - first_t
    level = 0
    prev = first_t
    weighted = 0.0
    time_at = Counter()
    idle_gaps = []
    idle_start = None
    for t, d in events:
        dt = t - prev
        weighted += level * dt
        time_at[bucket(level)] += dt
        prev = t
        if d > 0 and level == 0 and idle_start is not None:
            idle_gaps.append(t - idle_start)
        level += d
        if level == 0:
            idle_start = t
    issued = len(intervals)
    print(f"device requests {issued} in {span:.3f} s ({issued / span:.0f}/s)"
          + (f", {lost} without a traced completion left out" if lost else ""))
    print(f"mean in flight (time-weighted) {weighted / span:.2f}")
    order = ["0", "1-7", "8-15", "16-23", "24-31", ">=32"]
    print("time at in-flight level: " + ", ".join(
        f"{k} {100 * time_at[k] / span:.1f}%" for k in order))
    if idle_gaps:
        idle_gaps.sort()
        print(f"idle gaps {len(idle_gaps)}: mean {1e6 * sum(idle_gaps) / len(idle_gaps):.1f} us, "
              f"p50 {1e6 * idle_gaps[len(idle_gaps) // 2]:.1f} us, max {1e6 * idle_gaps[-1]:.1f} us")
    lat = sorted(b - a for a, b in intervals)
    print(f"device latency: mean {1e6 * sum(lat) / len(lat):.1f} us, "
          f"p50 {1e6 * lat[len(lat) // 2]:.1f} us, p99 {1e6 * lat[int(len(lat) * 0.99)]:.1f} us")
    if n_enter:
        subs = sum(k * v for k, v in enters.items())
        print(f"io_uring_enter calls {n_enter} ({n_enter / max(issued, 1):.2f} per I/O), "
              f"SQEs submitted per call: mean {subs / n_enter:.1f}")
        top = sorted(enters.items(), key=lambda kv: -kv[1])[:8]
        print("  to_submit histogram (value:calls): " + " ".join(f"{k}:{v}" for k, v in top))


def bucket(n):
    if n == 0:
        return "0"
    if n < 8:
        return "1-7"
    if n < 16:
        return "8-15"
    if n < 24:
        return "16-23"
    if n < 32:
        return "24-31"
    return ">=32"


if __name__ == "__main__":
    main()
