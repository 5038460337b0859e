#!/usr/bin/env bash
# Runs apphostd in the foreground with a local development configuration:
# NETCONF over SSH on 127.0.0.1:8830, user admin / password admin (NACM
# group admin), state in ./dev/state, media "external" in
# ./dev/media/external. Installs the apt dependencies and builds (release)
# first. Stop it with Ctrl-C.
#
# Connect:  ssh -p 8830 admin@127.0.0.1 -s netconf
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

./tools/install-deps.sh
if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
  # shellcheck disable=SC1091
  . "$HOME/.cargo/env"
fi
cargo build --release

CONFIG=dev/apphostd.toml
mkdir -p dev/media/external/app/images
# A demo image (busybox, /sbin/init prints its environment and a heartbeat).
if [ ! -f dev/media/external/app/images/busybox-a.img ]; then
  ./tools/build-test-image.sh dev/media/external/app/images/busybox-a.img A >/dev/null
  ./tools/build-test-image.sh dev/media/external/app/images/busybox-b.img B >/dev/null
  echo "built demo images dev/media/external/app/images/busybox-{a,b}.img"
fi
# crun (the default runtime) refuses a cgroup v1 "hybrid" host unless its
# leftover cgroup2 controllers are mounted as v1 hierarchies; runc does not
# care. Containers need root either way.
RUNTIME=/usr/bin/crun
if [ "$(id -u)" -eq 0 ]; then
  ./tools/hybrid-cgroup.sh apply >/dev/null || RUNTIME=/usr/sbin/runc
else
  echo "note: not root: apphostd serves its datastores but cannot run containers" >&2
fi
if [ ! -f "$CONFIG" ]; then
  # Written once: edit it freely afterwards (format: docs/configuration.md).
  cat > "$CONFIG" <<TOML
# apphostd development configuration, written by tools/run-dev.sh.
state-dir = "$ROOT/dev/state"
log-level = "info"

[netconf]
listen = ["127.0.0.1:8830"]

[[user]]
name = "admin"
# Plain-text password: for development only; use password-hash elsewhere.
password = "admin"
groups = ["admin"]

[media]
external = "$ROOT/dev/media/external"

[runtime]
binary = "$RUNTIME"
root = "/run/apphost-dev/crun"
cgroup = "apphost-dev"
TOML
  echo "wrote $CONFIG"
fi

echo "apphostd listening on 127.0.0.1:8830 (user admin, password admin)"
exec ./target/release/apphostd --config "$CONFIG"
