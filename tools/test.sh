#!/usr/bin/env bash
# Runs every check of the project, non-interactively, on Debian 12:
#   apt dependencies, Python venv (.venv: pyang, interop clients),
#   cargo fmt --check, cargo clippy -D warnings, cargo test (root tests too
#   when run as root), then the interop suite if present.
# Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

START=$(date +%s)
step() { echo; echo "==> $* ($(( $(date +%s) - START ))s)"; }

step "apt dependencies (tools/install-deps.sh)"
./tools/install-deps.sh

# A fresh machine may have rustup without cargo on PATH in this shell.
if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
  # shellcheck disable=SC1091
  . "$HOME/.cargo/env"
fi
command -v cargo >/dev/null 2>&1 || { echo "cargo not found: install the Rust toolchain (rustup)" >&2; exit 1; }
if command -v rustup >/dev/null 2>&1; then
  installed=$(rustup component list --installed 2>/dev/null || true)
  for c in rustfmt clippy; do
    grep -q "^$c" <<<"$installed" || rustup component add "$c"
  done
fi

step "Python venv (.venv)"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
PIP=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
# Every requirements file of tools/: pyang (schema checks), pyftpdlib
# (image import tests), ncclient/ansible/scrapli (interop suite).
for req in tools/requirements.txt tools/*/requirements.txt; do
  [ -f "$req" ] && "${PIP[@]}" -r "$req"
done
# Tests and the interop suite find pyang, ncclient, ... here first.
export PATH="$PWD/.venv/bin:$PATH"
export VIRTUAL_ENV="$PWD/.venv"

step "cargo fmt --check"
cargo fmt --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

if [ "$(id -u)" -eq 0 ]; then
  step "cargo test --features test_as_root (all tests, root tests included)"
  cargo test --features test_as_root
else
  step "cargo test (not root: root-only tests are skipped)"
  cargo test
fi

if [ -f tools/interop/run.sh ]; then
  step "interop suite (tools/interop/run.sh)"
  # The binary cargo test just built, never a stale release build.
  APPHOSTD="$PWD/target/debug/apphostd" bash tools/interop/run.sh
fi

step "all checks passed"
