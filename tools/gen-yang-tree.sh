#!/usr/bin/env bash
# Regenerates docs/yang-tree.txt from the app-hosting module with pyang.
# tests/yang_lint.rs checks that the file is current.
set -euo pipefail
cd "$(dirname "$0")/.."
PYANG=.venv/bin/pyang
if [ ! -x "$PYANG" ]; then
  PYANG=$(command -v pyang || true)
fi
if [ -z "$PYANG" ]; then
  echo "pyang not found: run ./tools/test.sh once (it creates .venv with pyang)" >&2
  exit 1
fi
"$PYANG" -f tree -p yang yang/app-hosting@2026-12-03.yang > docs/yang-tree.txt
echo "wrote docs/yang-tree.txt"
