#!/usr/bin/env bash
# Benchmark apphostd against Debian's netconfd (yuma123) in one run, same
# client (ncclient), same model (tools/bench/yang/bench@2026-12-03.yang).
#
#   tools/bench/run.sh [bench.py args, e.g. --iterations 50 --json out.json]
#
# Environment:
#   APPHOSTD       apphostd binary (default target/release/apphostd; built
#                  with cargo --release when missing)
#   BENCH_PEER=0   measure apphostd alone
#   BENCH_PORTS    "APPHOSTD_PORT PEER_PORT" (default "18840 18841")
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="$repo/.venv"
read -r ah_port peer_port <<<"${BENCH_PORTS:-18840 18841}"

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import ncclient" 2>/dev/null; then
  python3 -m venv "$venv" && "$venv/bin/pip" install -q -r "$repo/tools/interop/requirements.txt" || exit 1
fi

tmp="$(mktemp -d /tmp/apphost-bench.XXXXXX)"
chmod 755 "$tmp" # the netconfd peer's login user must reach its socket
ah_pid=""
cleanup() {
  local rc=$?
  [ "${BENCH_PEER:-1}" = 0 ] || "$here/netconfd-peer.sh" stop "$tmp/peer" || true
  if [ -n "$ah_pid" ]; then
    kill -TERM "$ah_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$ah_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$ah_pid" 2>/dev/null || true
    wait "$ah_pid" 2>/dev/null || true
  fi
  for d in /sys/fs/cgroup/*/apphost-bench /sys/fs/cgroup/apphost-bench; do
    [ -d "$d" ] && rmdir "$d" 2>/dev/null
  done
  if [ $rc -ne 0 ]; then echo "bench: logs kept in $tmp" >&2; else rm -rf "$tmp"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_port() {
  local i
  for i in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

bin="${APPHOSTD:-$repo/target/release/apphostd}"
if [ ! -x "$bin" ]; then
  echo "bench: building apphostd (release)" >&2
  (cd "$repo" && cargo build --release --bin apphostd >&2) || exit 1
fi

mkdir -p "$tmp/ah/state" "$tmp/ah/media/external"
cat >"$tmp/ah/apphostd.toml" <<EOF
state-dir = "$tmp/ah/state"

[netconf]
listen = ["127.0.0.1:$ah_port"]

[[user]]
name = "admin"
password = "admin"
groups = ["admin"]

[media]
external = "$tmp/ah/media/external"

[runtime]
root = "$tmp/ah/runtime"
cgroup = "apphost-bench"

[yang]
dir = "$here/yang"
modules = ["bench"]
EOF
RUST_LOG="${RUST_LOG:-warn}" "$bin" --config "$tmp/ah/apphostd.toml" >"$tmp/ah/apphostd.log" 2>&1 &
ah_pid=$!
wait_port "$ah_port" || { echo "bench: apphostd did not listen on $ah_port" >&2; tail -30 "$tmp/ah/apphostd.log" >&2; exit 1; }
targets=(--target "apphostd,127.0.0.1,$ah_port,$ah_pid")

if [ "${BENCH_PEER:-1}" != 0 ]; then
  "$here/netconfd-peer.sh" start "$tmp/peer" "$peer_port" bench >&2 || exit 1
  targets+=(--target "netconfd,127.0.0.1,$peer_port,$(cat "$tmp/peer/netconfd.pid")+$(cat "$tmp/peer/sshd-main.pid")")
fi

"$venv/bin/python" "$here/bench.py" "${targets[@]}" "$@"
