#!/usr/bin/env bash
# NETCONF interop suite: real clients (ncclient, scrapli, netconf-console2,
# Ansible ansible.netcommon, yangcli) against a freshly started apphostd.
#
#   tools/interop/run.sh                 # against apphostd (default)
#   INTEROP_TARGET=netconfd tools/interop/run.sh   # against Debian's netconfd
#   tools/interop/run.sh -k lock         # extra args go to pytest
#
# Environment:
#   APPHOSTD        path of the apphostd binary (default: target/release,
#                   then target/debug; built with cargo when neither exists)
#   INTEROP_PORT    loopback port to use (default 18830)
#   INTEROP_TARGET  apphostd | netconfd
#   INTEROP_KEEP=1  keep the temp dir (config, logs) for inspection
#
# Exits non-zero when any step fails; always stops the server it started.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="$repo/.venv"
target="${INTEROP_TARGET:-apphostd}"
port="${INTEROP_PORT:-18830}"

log() { echo "== interop: $*"; }

# ----- Python environment -----
ensure_venv() {
  if [ ! -x "$venv/bin/python" ]; then
    log "creating $venv"
    python3 -m venv "$venv" || return 1
  fi
  if ! "$venv/bin/python" - <<'EOF' 2>/dev/null; then
import importlib.util, sys
need = ["ncclient", "scrapli_netconf", "ncclient", "pytest", "six",
        "ansible_collections.ansible.netcommon"]
sys.exit(0 if all(importlib.util.find_spec(n) for n in need) else 1)
EOF
    log "installing tools/interop/requirements.txt"
    "$venv/bin/pip" install -q -r "$here/requirements.txt" || return 1
  fi
}

ensure_venv || { echo "interop: cannot set up $venv" >&2; exit 1; }
export PATH="$venv/bin:$PATH"

tmp="$(mktemp -d /tmp/apphost-interop.XXXXXX)"
chmod 755 "$tmp" # the netconfd peer's login user must reach its socket
server_pid=""

cleanup() {
  local rc=$?
  if [ "$target" = netconfd ]; then
    "$repo/tools/bench/netconfd-peer.sh" stop "$tmp/peer" || true
  elif [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  # The agent's parent cgroup outlives it by design; this suite's goes.
  for d in /sys/fs/cgroup/*/apphost-interop /sys/fs/cgroup/apphost-interop; do
    [ -d "$d" ] && rmdir "$d" 2>/dev/null
  done
  if [ "${INTEROP_KEEP:-0}" = 1 ] || [ $rc -ne 0 ]; then
    log "logs kept in $tmp"
  else
    rm -rf "$tmp"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_port() {
  local i
  for i in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    if [ -n "$server_pid" ] && ! kill -0 "$server_pid" 2>/dev/null; then return 1; fi
    sleep 0.1
  done
  return 1
}

find_apphostd() {
  if [ -n "${APPHOSTD:-}" ]; then echo "$APPHOSTD"; return; fi
  local b
  for b in "$repo/target/release/apphostd" "$repo/target/debug/apphostd"; do
    [ -x "$b" ] && { echo "$b"; return; }
  done
  log "building apphostd (cargo build --release --bin apphostd)" >&2
  (cd "$repo" && cargo build --release --bin apphostd >&2) || return 1
  echo "$repo/target/release/apphostd"
}

# Writes the apphostd TOML config used by this suite (and by the benchmark).
write_apphostd_config() {
  local dir="$1" port="$2" extra="${3:-}"
  mkdir -p "$dir/state" "$dir/media/external"
  cat >"$dir/apphostd.toml" <<EOF
state-dir = "$dir/state"

[netconf]
listen = ["127.0.0.1:$port"]

[[user]]
name = "admin"
password = "admin"
groups = ["admin"]

[[user]]
name = "reader"
password = "reader"

[media]
external = "$dir/media/external"

[runtime]
root = "$dir/runtime"
cgroup = "apphost-interop"
$extra
EOF
}

# ----- start the server -----
case "$target" in
  apphostd)
    bin="$(find_apphostd)" || { echo "interop: no apphostd binary" >&2; exit 1; }
    write_apphostd_config "$tmp" "$port"
    log "starting $bin on 127.0.0.1:$port"
    RUST_LOG="${RUST_LOG:-info}" "$bin" --config "$tmp/apphostd.toml" >"$tmp/apphostd.log" 2>&1 &
    server_pid=$!
    if ! wait_port "$port"; then
      echo "interop: apphostd did not listen on $port" >&2
      tail -50 "$tmp/apphostd.log" >&2
      exit 1
    fi
    ;;
  netconfd)
    "$repo/tools/bench/netconfd-peer.sh" start "$tmp/peer" "$port" bench app-hosting || exit 1
    ;;
  *)
    echo "interop: INTEROP_TARGET must be apphostd or netconfd" >&2
    exit 2
    ;;
esac

export NC_HOST=127.0.0.1 NC_PORT="$port" NC_USER=admin NC_PASSWORD=admin NC_SERVER="$target"

declare -a failed=()
passed=0
step() {
  local name="$1"
  shift
  log "step: $name"
  if "$@"; then
    passed=$((passed + 1))
  else
    log "FAILED: $name"
    failed+=("$name")
  fi
}

# ----- 1. Python clients: ncclient, scrapli, netconf-console2 -----
run_pytest() {
  (cd "$here" && python -m pytest -q -rsx -p no:cacheprovider \
    test_ncclient.py test_notifications.py test_scrapli.py test_netconf_console.py test_images.py test_nacm.py "$@")
}

# ----- 2. Ansible, twice: the second run must change nothing -----
reset_config() {
  (cd "$here" && python -c 'from conftest import connect, reset; m = connect(); reset(m); m.close_session()')
}

recap_field() { # recap_field FILE FIELD -> number from the PLAY RECAP line
  sed -n 's/.*'"$2"'=\([0-9]*\).*/\1/p' "$1" | tail -1
}

run_ansible() {
  reset_config || return 1
  local i out ok=0
  for i in 1 2; do
    out="$tmp/ansible-run$i.log"
    (cd "$here/ansible" && ANSIBLE_CONFIG="$here/ansible/ansible.cfg" \
      ansible-playbook playbook.yml -e "ansible_port=$port") >"$out" 2>&1
    local rc=$?
    sed -n '/PLAY RECAP/,$p' "$out"
    local changed failed unreachable
    changed="$(recap_field "$out" changed)"
    failed="$(recap_field "$out" failed)"
    unreachable="$(recap_field "$out" unreachable)"
    if [ $rc -ne 0 ] || [ -z "$changed" ] || [ "$failed" != 0 ] || [ "$unreachable" != 0 ]; then
      log "ansible run $i failed (rc $rc)"
      tail -40 "$out"
      ok=1
      continue
    fi
    if [ "$i" = 1 ] && [ "$changed" -lt 1 ]; then
      log "ansible run 1 reported no change on an empty configuration"
      ok=1
    fi
    if [ "$i" = 2 ] && [ "$changed" != 0 ]; then
      log "ansible run 2 is not idempotent: changed=$changed"
      grep -B2 -A20 "changed:" "$out" | head -60
      ok=1
    fi
  done
  reset_config || return 1
  return $ok
}

# ----- 3. yangcli (yuma123), in batch mode from a script -----
run_yangcli() {
  command -v yangcli >/dev/null || { log "yangcli missing: apt-get install yangcli"; return 1; }
  reset_config || return 1
  cat >"$tmp/yangcli.script" <<'EOF'
get-config source=running
merge /app-hosting/cpu value=35
commit
sget-config /app-hosting/cpu source=running
EOF
  local out="$tmp/yangcli.log"
  # app-hosting is YANG 1.1, announced in the YANG library 1.1 only, which
  # yangcli (yuma123 2.13) cannot read: give it the module locally, as an
  # operator would. Only this module: yang/'s IETF copies would shadow
  # yuma123's own.
  mkdir -p "$tmp/yangcli-modules"
  cp "$repo"/yang/app-hosting@*.yang "$tmp/yangcli-modules/"
  # yangcli exits 0 even when a command fails: judge its output.
  (cd "$tmp" && HOME="$tmp" timeout 120 yangcli --server=127.0.0.1 --ncport="$port" \
    --user=admin --password=admin --batch-mode \
    --modpath="$tmp/yangcli-modules:/usr/share/yuma/modules" --module=app-hosting \
    --run-script="$tmp/yangcli.script") >"$out" 2>&1
  local rc=$? ok=0
  if [ $rc -ne 0 ]; then log "yangcli exited $rc"; ok=1; fi
  if grep -qE "canceled|^Error:|rpc-error" "$out"; then log "yangcli reported an error"; ok=1; fi
  [ "$(grep -c "RPC OK Reply" "$out")" -ge 2 ] || { log "yangcli: merge/commit not acknowledged"; ok=1; }
  grep -q "cpu 35" "$out" || { log "yangcli: cpu 35 not read back"; ok=1; }
  if [ $ok -ne 0 ]; then tail -60 "$out"; else grep -A8 "RPC Data Reply" "$out" | tail -9; fi
  reset_config || return 1
  return $ok
}

step "pytest (ncclient, scrapli, netconf-console2, images)" run_pytest "$@"
step "ansible (netconf_config/netconf_get/netconf_rpc, twice)" run_ansible
step "yangcli (connect, get-config, merge, commit)" run_yangcli

if [ "$target" = apphostd ] && ! kill -0 "$server_pid" 2>/dev/null; then
  log "apphostd died during the suite"
  tail -50 "$tmp/apphostd.log"
  failed+=("apphostd alive at the end")
fi

log "steps: $passed passed, ${#failed[@]} failed"
for f in "${failed[@]}"; do log "  failed: $f"; done
[ ${#failed[@]} -eq 0 ]
