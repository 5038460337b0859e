#!/usr/bin/env bash
# Commit-to-running latency of an app vs a raw `crun run -d` of the same
# bundle (tools/bench/container.py), on a fresh apphostd. Root only.
#
#   tools/bench/container.sh [container.py args, e.g. --iterations 30]
#
# Environment: APPHOSTD (default target/release/apphostd, built if missing),
# BENCH_PORT (default 18842), RUNTIME (default /usr/bin/crun).
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="$repo/.venv"
port="${BENCH_PORT:-18842}"
runtime="${RUNTIME:-/usr/bin/crun}"
cgroup=apphost-bench-ct

[ "$(id -u)" -eq 0 ] || { echo "container.sh: needs root (containers, cgroups, mounts)" >&2; exit 1; }
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import ncclient" 2>/dev/null; then
  python3 -m venv "$venv" && "$venv/bin/pip" install -q -r "$repo/tools/interop/requirements.txt" || exit 1
fi
bin="${APPHOSTD:-$repo/target/release/apphostd}"
if [ ! -x "$bin" ]; then
  (cd "$repo" && cargo build --release --bin apphostd) || exit 1
fi
# crun on a cgroup v1 hybrid host (no-op elsewhere).
"$repo/tools/hybrid-cgroup.sh" apply >/dev/null || exit 1

tmp="$(mktemp -d /tmp/apphost-bench-ct.XXXXXX)"
pid=""
cleanup() {
  local rc=$?
  if [ -n "$pid" ]; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  for d in /sys/fs/cgroup/*/$cgroup /sys/fs/cgroup/$cgroup; do
    [ -d "$d" ] && rmdir "$d" 2>/dev/null
  done
  if [ $rc -ne 0 ] || [ "${BENCH_KEEP:-0}" = 1 ]; then echo "container.sh: logs kept in $tmp" >&2; else rm -rf "$tmp"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$tmp/media/app/images"
"$repo/tools/build-test-image.sh" "$tmp/media/app/images/bench.img" A >/dev/null || exit 1
cat >"$tmp/apphostd.toml" <<CFG
state-dir = "$tmp/state"
[netconf]
listen = ["127.0.0.1:$port"]
[[user]]
name = "admin"
password = "admin"
groups = ["admin"]
[media]
external = "$tmp/media"
[runtime]
binary = "$runtime"
root = "$tmp/runtime"
cgroup = "$cgroup"
CFG
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
  echo "container.sh: port $port is already in use (BENCH_PORT=...)" >&2
  exit 1
fi
RUST_LOG="${RUST_LOG:-warn}" "$bin" --config "$tmp/apphostd.toml" >"$tmp/apphostd.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || { echo "container.sh: apphostd exited" >&2; tail -20 "$tmp/apphostd.log" >&2; exit 1; }
  sleep 0.1
done
"$venv/bin/python" "$here/container.py" --port "$port" --state-dir "$tmp/state" \
  --cgroup "$cgroup" --runtime "$runtime" --image-file "$tmp/media/app/images/bench.img" "$@"
