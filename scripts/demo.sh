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
echo "== 2. generate the demo dataset (Dask LocalCluster, pyrender)"
lasor-datagen generate manifests/demo.yaml --out "$OUT/data"
lasor-datagen verify "$OUT/data"
lasor-datagen preview "$OUT/data" -n 48 --out "$OUT/preview.png"
lasor-datagen stats "$OUT/data" --out "$OUT/stats"

echo
echo "demo finished: see $OUT/"
