#!/usr/bin/env python3
"""Samples one running process for a benchmark (used by scripts/bench-scale.sh).

    sample.py PID SECONDS [--socket PATH] [--libvirtd PID] [--warmup S]

After WARMUP seconds, watches PID for SECONDS: its CPU time (/proc/PID/stat), and at the
end its memory (/proc/PID/status, smaps_rollup, and /proc/PID/smaps grouped by kind of
mapping: the binary, shared libraries, heap, thread stacks); with --libvirtd, the CPU that daemon spent
in the same window; with --socket (a vmpulse control socket), GET /status once a second:
every collection's duration, the writer's queue depth (also per minute: peak and mean),
requests in flight, and the lines queued and written. Prints one JSON object on stdout.
"""
import argparse
import http.client
import json
import os
import socket
import statistics
import time

HZ = os.sysconf("SC_CLK_TCK")


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=5)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(5)
        self.sock.connect(self.path)


def status(path):
    conn = UnixHTTP(path)
    try:
        conn.request("GET", "/status")
        return json.loads(conn.getresponse().read())
    except (OSError, ValueError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def memory(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                out[key] = int(value.split()[0])
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key == "Pss":
                out["Pss"] = int(value.split()[0])
    return {k: round(v / 1024, 1) for k, v in out.items()}


def memory_by_kind(pid):
    """Resident MiB per kind of mapping: where the memory goes."""
    exe = os.path.realpath(f"/proc/{pid}/exe")
    maps, cur = [], None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = line.split(None, 5)
            if len(head) >= 5 and "-" in head[0] and len(head[1]) == 4:
                lo, hi = (int(x, 16) for x in head[0].split("-"))
                cur = {"kib": (hi - lo) // 1024, "perms": head[1],
                       "path": head[5].strip() if len(head) > 5 else "", "rss": 0, "anon": 0}
                maps.append(cur)
            elif cur is not None and line.startswith(("Rss:", "Anonymous:")):
                cur["rss" if line.startswith("Rss:") else "anon"] = int(line.split()[1])
    kinds = {"binary": 0, "libraries": 0, "heap": 0, "thread_stacks": 0, "other": 0}
    for prev, m in zip([None] + maps, maps):
        path = m["path"]
        if path.startswith(exe):
            kinds["binary"] += m["rss"]
        elif path.startswith("/"):
            kinds["libraries"] += m["rss"]
        elif path == "[stack]" or (path == "" and prev and prev["perms"].startswith("---")
                                   and prev["kib"] <= 64 and m["kib"] <= 8 * 1024 + 64):
            kinds["thread_stacks"] += m["rss"]  # a stack sits right above its guard page
        elif path in ("", "[heap]"):
            kinds["heap"] += m["rss"]  # brk heap, malloc arenas, large allocations
        else:
            kinds["other"] += m["rss"]
    return {k: round(v / 1024, 1) for k, v in kinds.items()}


def pct(values, q):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("pid", type=int)
    p.add_argument("seconds", type=float)
    p.add_argument("--socket")
    p.add_argument("--libvirtd", type=int)
    p.add_argument("--warmup", type=float, default=0)
    a = p.parse_args()
    time.sleep(a.warmup)
    t0, start = ticks(a.pid), time.monotonic()
    lv0 = ticks(a.libvirtd) if a.libvirtd else None
    cycles, depth, in_flight, seen, first, last = [], [], [], None, None, None
    while time.monotonic() - start < a.seconds:
        time.sleep(1)
        s = status(a.socket) if a.socket else None
        if not s:
            continue
        w = s.get("writer") or {}
        if s.get("last_collection_time") != seen:
            seen = s.get("last_collection_time")
            cycles.append(s.get("last_collection_duration_ms") or 0.0)
        depth.append(w.get("queue_depth", 0))
        in_flight.append(w.get("requests_in_flight", 0))
        first = first or s
        last = s
    elapsed = time.monotonic() - start
    out = {"seconds": round(elapsed, 1), "cpu_percent": round(100 * (ticks(a.pid) - t0) / HZ / elapsed, 2)}
    out["memory_mib"] = memory(a.pid)
    out["memory_by_kind_mib"] = memory_by_kind(a.pid)
    if a.libvirtd:
        out["libvirtd_ms_per_s"] = round(1000 * (ticks(a.libvirtd) - lv0) / HZ / elapsed, 2)
    if cycles:
        out["cycle_ms"] = {"median": round(statistics.median(cycles), 1), "p90": round(pct(cycles, 0.9), 1),
                           "max": round(max(cycles), 1), "n": len(cycles)}
    if depth:
        half = len(depth) // 2 or 1
        out["queue_depth"] = {"max": max(depth), "first_half_mean": round(statistics.mean(depth[:half])),
                              "second_half_mean": round(statistics.mean(depth[half:] or depth)), "last": depth[-1]}
        # Per minute, the peak and the mean: a queue that grows shows as a rising series.
        out["queue_by_minute"] = [[max(depth[i:i + 60]), round(statistics.mean(depth[i:i + 60]))]
                                  for i in range(0, len(depth), 60)]
        out["requests_in_flight_max"] = max(in_flight)
    if first and last:
        fw, lw = first.get("writer") or {}, last.get("writer") or {}
        span = max(1e-9, (last.get("uptime_seconds") or 0) - (first.get("uptime_seconds") or 0))
        out["lines_per_s"] = {"queued": round((lw.get("lines_queued", 0) - fw.get("lines_queued", 0)) / span),
                              "written": round((lw.get("lines_written", 0) - fw.get("lines_written", 0)) / span)}
        out["vms"] = last.get("vms_monitored")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
