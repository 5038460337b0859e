#!/usr/bin/env python3
"""NETCONF server benchmark: the same ncclient client, the same 4-leaf list
model (tools/bench/yang/bench@2026-12-03.yang), against several servers in
one run, so ratios are measured under the same machine noise.

  bench.py --target apphostd,127.0.0.1,18840,PID \
           --target netconfd,127.0.0.1,18841,PID+PID

Each target is NAME,HOST,PORT[,PIDS]; PIDS ('+'-separated) are the root
processes whose resident memory counts for that server, children included
(for netconfd behind sshd: netconfd and the sshd listener, which covers the
per-connection sshd and netconf-subsystem processes).

Measured, per target:
  rss_idle_kb         RSS with no session and no bench data
  commit_10_ms        edit-config (merge one entry) on candidate + commit,
                      10 entries stored
  commit_1000_ms      the same with 1000 entries stored
  get_config_1000_ms  get-config (subtree filter /bench) of 1000 entries
  rss_loaded_kb       RSS with 1000 entries stored and one session open
Latencies are medians over --iterations runs; ratios compare each target
with the first one.
"""

import argparse
import json
import os
import statistics
import sys
import time

import ncclient.transport.session
from ncclient import manager

# ncclient's reader thread polls every TICK seconds (0.1 by default), which
# would put a 100 ms floor under every request.
ncclient.transport.session.TICK = 0.001

BENCH_NS = "urn:apphost:yang:bench"
NC_NS = "urn:ietf:params:xml:ns:netconf:base:1.0"


class Target:
    def __init__(self, spec):
        parts = spec.split(",")
        if len(parts) not in (3, 4):
            raise SystemExit(f"--target {spec!r}: want NAME,HOST,PORT[,PID+PID]")
        self.name, self.host, self.port = parts[0], parts[1], int(parts[2])
        self.pids = [int(p) for p in parts[3].split("+")] if len(parts) == 4 and parts[3] else []
        self.results = {}


def connect(t, user, password):
    return manager.connect(
        host=t.host,
        port=t.port,
        username=user,
        password=password,
        hostkey_verify=False,
        allow_agent=False,
        look_for_keys=False,
        timeout=120,
    )


# ===== memory =====


def children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name may hold spaces: the fields after ')' are fixed.
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def tree_rss_kb(roots):
    """Summed VmRSS of the roots and all their descendants, in KiB."""
    kids = children_map()
    seen, todo, total = set(), list(roots), 0
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        todo.extend(kids.get(pid, []))
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def rss(t):
    return tree_rss_kb(t.pids) if t.pids else None


# ===== data =====


def entry(i, value):
    return f"<entry><name>e{i}</name><value>{value}</value><text>entry number {i}</text><enabled>true</enabled></entry>"


def bench_config(body, op=None):
    attr = f' xmlns:nc="{NC_NS}" nc:operation="{op}"' if op else ""
    return f'<config xmlns="{NC_NS}"><bench xmlns="{BENCH_NS}"{attr}>{body}</bench></config>'


def clear(m):
    m.discard_changes()
    try:
        m.edit_config(target="candidate", config=bench_config("", op="remove"))
    except Exception:  # noqa: BLE001 - nothing to remove is fine
        pass
    m.commit()


def load(m, n):
    clear(m)
    m.edit_config(target="candidate", config=bench_config("".join(entry(i, i) for i in range(n))))
    m.commit()
    got = count_entries(m)
    if got != n:
        raise SystemExit(f"loaded {n} entries, server holds {got}")


def count_entries(m):
    reply = m.get_config("running", filter=("subtree", f'<bench xmlns="{BENCH_NS}"/>'))
    return len(reply.data_ele.findall(f".//{{{BENCH_NS}}}entry"))


def timed(fn, iterations, warmup=2):
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000.0)
    return samples


def commit_one(m, counter):
    """Merge one entry (a new value for an existing one) on candidate, commit."""
    counter[0] += 1
    m.edit_config(target="candidate", config=bench_config(entry(0, 100000 + counter[0])))
    m.commit()


def run_target(t, args):
    print(f"--- {t.name} ({t.host}:{t.port})", file=sys.stderr)
    m = connect(t, args.user, args.password)
    clear(m)
    m.close_session()
    time.sleep(args.settle)
    t.results["rss_idle_kb"] = rss(t)

    m = connect(t, args.user, args.password)
    counter = [0]
    load(m, 10)
    s = timed(lambda: commit_one(m, counter), args.iterations)
    t.results["commit_10_ms"] = statistics.median(s)
    t.results["commit_10_samples"] = s

    load(m, 1000)
    s = timed(lambda: commit_one(m, counter), args.iterations)
    t.results["commit_1000_ms"] = statistics.median(s)
    t.results["commit_1000_samples"] = s

    flt = ("subtree", f'<bench xmlns="{BENCH_NS}"/>')
    s = timed(lambda: m.get_config("running", filter=flt), args.iterations)
    t.results["get_config_1000_ms"] = statistics.median(s)
    t.results["get_config_1000_samples"] = s
    if count_entries(m) != 1000:
        raise SystemExit(f"{t.name}: store does not hold 1000 entries")

    time.sleep(args.settle)
    t.results["rss_loaded_kb"] = rss(t)
    if not args.keep:
        clear(m)
    m.close_session()


METRICS = [
    ("commit_10_ms", "edit-config+commit, 10 entries (ms)", "{:.1f}"),
    ("commit_1000_ms", "edit-config+commit, 1000 entries (ms)", "{:.1f}"),
    ("get_config_1000_ms", "get-config of 1000 entries (ms)", "{:.1f}"),
    ("rss_idle_kb", "RSS idle (MiB)", "mib"),
    ("rss_loaded_kb", "RSS, 1000 entries + 1 session (MiB)", "mib"),
]


def fmt(v, how):
    if v is None:
        return "n/a"
    if how == "mib":
        return f"{v / 1024:.1f}"
    return how.format(v)


def report(targets):
    names = [t.name for t in targets]
    w = max(len(label) for _, label, _ in METRICS) + 2
    head = "".ljust(w) + "".join(n.rjust(12) for n in names)
    if len(targets) > 1:
        head += "".join(f"{t.name}/{targets[0].name}".rjust(22) for t in targets[1:])
    print(head)
    for key, label, how in METRICS:
        row = label.ljust(w) + "".join(fmt(t.results.get(key), how).rjust(12) for t in targets)
        base = targets[0].results.get(key)
        for t in targets[1:]:
            v = t.results.get(key)
            ratio = f"{v / base:.2f}" if v and base else "n/a"
            row += ratio.rjust(22)
        print(row)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", action="append", required=True, help="NAME,HOST,PORT[,PID+PID]")
    ap.add_argument("--user", default="admin")
    ap.add_argument("--password", default="admin")
    ap.add_argument("--iterations", type=int, default=30)
    ap.add_argument("--settle", type=float, default=1.0, help="seconds to wait before reading RSS")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--keep", action="store_true", help="leave the 1000 entries in place")
    args = ap.parse_args()
    targets = [Target(s) for s in args.target]
    for t in targets:
        run_target(t, args)
    print(f"NETCONF benchmark: ncclient {manager.__name__ and __import__('ncclient').__version__}, "
          f"{args.iterations} iterations, medians")
    report(targets)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({t.name: t.results for t in targets}, f, indent=2)


if __name__ == "__main__":
    main()
