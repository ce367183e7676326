#!/usr/bin/env bash
# The small end-to-end demo on the embedded defaults.
set -euo pipefail
VENV="${VENV:-.venv}"
OUT="${OUT:-out/demo}"
export PATH="$VENV/bin:$PATH"
mkdir -p "$OUT"

echo "== 1. body model"
lasor-datagen body-model show --out "$OUT/body_model.png"

echo
echo "demo finished: see $OUT/"
