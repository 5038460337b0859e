#!/usr/bin/env python3
"""Commit-to-running latency of an app, against a raw `crun run -d` of the
same bundle, measured in one run (root, real crun).

  container.py --host 127.0.0.1 --port P --state-dir DIR --cgroup NAME \
               --runtime /usr/bin/crun --image-file PATH [--iterations N]

The agent must already serve a media holding the image (--image); it is
labelled `bench` first (container.sh sets all of this up). Per iteration:

  agent: edit-config (app enabled + autostart, image bench, host-os netns)
         + commit, then wait until the app's cgroup holds a process whose
         executable is the image's init (the container's process runs);
         then delete the app + commit and wait until it is gone.
  raw:   the bundle the agent wrote (its config.json, its mounted rootfs),
         copied with a new id and cgroup, run with `crun run -d` and waited
         for the same way; then `crun delete -f`.
  raw on a fresh mount (information, after the raw runs): the same, but
         the rootfs is the image loop-mounted anew (squashfs + tmpfs upper +
         overlay, as the agent does per start; the mount itself is not
         timed). The raw run above reuses the agent's mounted rootfs, whose
         page cache is warm; every agent start reads a cold SquashFS, which
         for the bench's gzip busybox costs ~10 ms on its own.

Both waits poll the cgroup's `cgroup.procs` every 0.5 ms, so the clock of
both stops at the same event. Prints medians and the ratio agent/raw.
"""

import argparse
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import ncclient.transport.session
from ncclient import manager
from ncclient.xml_ import to_ele

ncclient.transport.session.TICK = 0.001

AH_NS = "urn:apphost:yang:app-hosting"
NC_NS = "urn:ietf:params:xml:ns:netconf:base:1.0"
APP = "benchapp"


def procs_of(cgroup_rel):
    """Pids in the cgroup (any hierarchy that has it)."""
    for base in ["/sys/fs/cgroup"] + sorted(glob.glob("/sys/fs/cgroup/*")):
        p = os.path.join(base, cgroup_rel.lstrip("/"), "cgroup.procs")
        try:
            with open(p) as f:
                pids = [int(x) for x in f.read().split()]
        except OSError:
            continue
        if pids:
            return pids
    return []


def runs_init(pid):
    """The process has exec'd the container's command (not the runtime)."""
    try:
        cmd = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
    except OSError:
        return False
    return bool(cmd) and (cmd[0].endswith(b"/sbin/init") or cmd[0] == b"/bin/sh")


def wait_running(cgroup_rel, timeout=30.0):
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        if any(runs_init(p) for p in procs_of(cgroup_rel)):
            return time.perf_counter()
        time.sleep(0.0005)
    raise SystemExit(f"no process ran in {cgroup_rel} within {timeout} s")


def wait_gone(cgroup_rel, timeout=30.0):
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        if not procs_of(cgroup_rel):
            return
        time.sleep(0.005)
    raise SystemExit(f"{cgroup_rel} still has processes after {timeout} s")


def app_config(op=None):
    if op:
        return (
            f'<config xmlns="{NC_NS}"><app-hosting xmlns="{AH_NS}" xmlns:nc="{NC_NS}">'
            f'<app nc:operation="{op}"><name>{APP}</name></app></app-hosting></config>'
        )
    return (
        f'<config xmlns="{NC_NS}"><app-hosting xmlns="{AH_NS}"><app><name>{APP}</name>'
        "<enable>true</enable><autostart>true</autostart><netns>host-os</netns>"
        "<image>bench</image></app></app-hosting></config>"
    )


def agent_once(m, cgroup):
    m.edit_config(target="candidate", config=app_config())
    t0 = time.perf_counter()
    m.commit()
    t1 = wait_running(f"{cgroup}/{APP}")
    return (t1 - t0) * 1000.0


def agent_remove(m, cgroup, state_dir):
    m.edit_config(target="candidate", config=app_config("delete"))
    m.commit()
    wait_gone(f"{cgroup}/{APP}")
    # The teardown goes on after the processes are gone (unmounts, cgroup):
    # wait for all of it, or the next start would wait for it and its time
    # would be counted as start latency.
    app_dir = os.path.join(state_dir, "apps", APP)
    end = time.perf_counter() + 30
    while os.path.exists(app_dir):
        if time.perf_counter() > end:
            raise SystemExit(f"{app_dir} still there 30 s after the delete")
        time.sleep(0.002)


def raw_once(runtime, root, bundle, i, parent):
    cid = f"benchraw{i}"
    # The same parent group as the agent's app: the same CPU/RAM budget.
    cg = f"/{parent}/{cid}"
    with open(os.path.join(bundle, "config.json")) as f:
        spec = json.load(f)
    spec["linux"]["cgroupsPath"] = cg
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(spec, f)
    t0 = time.perf_counter()
    subprocess.run(
        [runtime, "--root", root, "run", "-d", "--bundle", bundle, cid],
        check=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    t1 = wait_running(cg)
    subprocess.run([runtime, "--root", root, "delete", "-f", cid], check=True)
    wait_gone(cg)
    return (t1 - t0) * 1000.0


def mount_fresh(image, d):
    """The image as the agent mounts it; returns the rootfs path."""
    lower, upper, rootfs = (os.path.join(d, x) for x in ("lower", "upper", "rootfs"))
    for p in (lower, upper, rootfs):
        os.makedirs(p)
    subprocess.run(["mount", "-o", "loop,ro", image, lower], check=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", upper], check=True)
    os.makedirs(os.path.join(upper, "u"))
    os.makedirs(os.path.join(upper, "w"))
    subprocess.run(
        ["mount", "-t", "overlay", "overlay", "-o",
         f"lowerdir={lower},upperdir={upper}/u,workdir={upper}/w", rootfs],
        check=True,
    )
    return rootfs


def unmount_fresh(d):
    for sub in ("rootfs", "upper", "lower"):
        subprocess.run(["umount", os.path.join(d, sub)], stderr=subprocess.DEVNULL)


def raw_fresh_once(runtime, root, bundle, i, parent, image):
    """raw_once on a rootfs mounted just before (cold page cache)."""
    d = tempfile.mkdtemp(prefix="fresh-", dir=os.path.dirname(bundle))
    cfg = os.path.join(bundle, "config.json")
    with open(cfg) as f:
        spec = json.load(f)
    borrowed = spec["root"]["path"]
    try:
        spec["root"]["path"] = mount_fresh(image, d)
        with open(cfg, "w") as f:
            json.dump(spec, f)
        return raw_once(runtime, root, bundle, f"fresh{i}", parent)
    finally:
        unmount_fresh(d)
        spec["root"]["path"] = borrowed
        with open(cfg, "w") as f:
            json.dump(spec, f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", default="admin")
    ap.add_argument("--password", default="admin")
    ap.add_argument("--state-dir", required=True)
    ap.add_argument("--cgroup", required=True)
    ap.add_argument("--runtime", default="/usr/bin/crun")
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--image", default="bench.img", help="image file on the media to label 'bench'")
    ap.add_argument("--image-file", required=True, help="that image's path, for the fresh-mount runs")
    ap.add_argument("--json")
    args = ap.parse_args()

    m = manager.connect(
        host=args.host, port=args.port, username=args.user, password=args.password,
        hostkey_verify=False, allow_agent=False, look_for_keys=False, timeout=120,
    )
    m.dispatch(to_ele(
        f'<set-label xmlns="{AH_NS}"><image>{args.image}</image><label>bench</label></set-label>'
    ))
    agent = []
    for i in range(args.iterations + 2):
        ms = agent_once(m, args.cgroup)
        if i >= 2:  # warm-up: page cache, first loop device
            agent.append(ms)
        if i < args.iterations + 1:
            agent_remove(m, args.cgroup, args.state_dir)

    # The app runs now: borrow its bundle (config.json + mounted rootfs).
    app_dir = os.path.join(args.state_dir, "apps", APP)
    raw_root = tempfile.mkdtemp(prefix="apphost-bench-raw-")
    bundle = os.path.join(raw_root, "bundle")
    os.makedirs(bundle)
    with open(os.path.join(app_dir, "config.json")) as f:
        spec = json.load(f)
    spec["root"]["path"] = os.path.join(app_dir, "rootfs")
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(spec, f)
    image = args.image_file
    raw, fresh = [], []
    state = os.path.join(raw_root, "state")
    try:
        for i in range(args.iterations + 2):
            ms = raw_once(args.runtime, state, bundle, i, args.cgroup)
            if i >= 2:
                raw.append(ms)
        # A phase of its own: interleaved, the unmounts' aftermath slowed
        # the warm runs next to them (the reference above must stay as is).
        for i in range(args.iterations + 2):
            ms = raw_fresh_once(args.runtime, state, bundle, i, args.cgroup, image)
            if i >= 2:
                fresh.append(ms)
    finally:
        shutil.rmtree(raw_root, ignore_errors=True)

    agent_remove(m, args.cgroup, args.state_dir)
    m.close_session()

    a, r = statistics.median(agent), statistics.median(raw)
    print(f"{'':40} {'median ms':>10} {'min':>8} {'max':>8}")
    print(f"{'apphostd commit -> app process running':40} {a:10.1f} {min(agent):8.1f} {max(agent):8.1f}")
    print(f"{'raw crun run -d of the same bundle':40} {r:10.1f} {min(raw):8.1f} {max(raw):8.1f}")
    f_ = statistics.median(fresh)
    print(f"{'raw crun run -d, rootfs freshly mounted':40} {f_:10.1f} {min(fresh):8.1f} {max(fresh):8.1f}")
    print(f"ratio apphostd / raw crun: {a / r:.2f}x  (n={len(agent)})")
    print(f"ratio apphostd / raw crun on a fresh mount: {a / f_:.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {"agent_ms": agent, "raw_ms": raw, "raw_fresh_ms": fresh, "ratio": a / r,
                 "ratio_fresh": a / f_},
                f, indent=1,
            )


if __name__ == "__main__":
    sys.exit(main())
