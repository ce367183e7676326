#!/usr/bin/env bash
# The standard model, end to end, with one command (this is how the shipped pretrained model is made):
#   generate the standard training set and a test set (same recipe, another seed) → train → evaluate
#   → export the inference checkpoint → write the model card.
#
#   bash scripts/train_standard.sh                      # 2-core CPU defaults (out/standard)
#   DEVICE=cuda WORKERS=16 BATCH=128 bash scripts/train_standard.sh    # a GPU host (see scripts/gpu_run.sh)
#
# Environment knobs (all optional): OUT, VENV, WORKERS (Dask workers), SHARDS (training shards),
# TEST_SHARDS, DEVICE (cpu|cuda), TIME_LIMIT (s, training), STEPS, BATCH, SETS (extra --set pairs),
# TRAIN_CONFIG, RECIPE, SHIP=1 (copy the result into the package as the shipped model),
# STAGES (a subset of "generate train eval export card", run in that order; default all: a caller can
# do work between stages, e.g. scripts/gpu_run.sh sizes the training to the time left after generating).
# Each stage adds its seconds to OUT/timings.json.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
[ -x "$VENV/bin/python" ] && export PATH="$VENV/bin:$PATH"
export PYOPENGL_PLATFORM="${PYOPENGL_PLATFORM:-egl}"
OUT="${OUT:-out/standard}"
RECIPE="${RECIPE:-manifests/standard.yaml}"
TRAIN_CONFIG="${TRAIN_CONFIG:-trainer/configs/standard.yaml}"
DEVICE="${DEVICE:-cpu}"
TEST_SHARDS="${TEST_SHARDS:-16}"
STAGES="${STAGES:-generate train eval export card}"
for s in $STAGES; do
  case "$s" in generate|train|eval|export|card) ;; *) echo "train_standard: unknown stage '$s' in STAGES" >&2; exit 2 ;; esac
done
has() { [[ " $STAGES " == *" $1 "* ]]; }
mkdir -p "$OUT"
T0=$(date +%s)
record() {  # record STAGE: merge STAGE_s (seconds since the stage began) and the run's facts into timings.json
  python - "$OUT/timings.json" "$1" $(($(date +%s) - T0)) "$DEVICE" "${WORKERS:-auto}" "$(nproc)" <<'PY'
import json, os, sys
path, stage, secs, device, workers, cpus = sys.argv[1:]
t = json.load(open(path)) if os.path.exists(path) else {}
t[f"{stage}_s"] = int(secs)
t["total_s"] = sum(v for k, v in t.items() if k.endswith("_s") and k != "total_s")
t.update(device=device, workers=workers, cpus=int(cpus))
with open(path + ".tmp", "w") as f:
    json.dump(t, f)
os.replace(path + ".tmp", path)
PY
  T0=$(date +%s)
}
gen_flags=()
[ -n "${WORKERS:-}" ] && gen_flags+=(--workers "$WORKERS")
[ -n "${SHARDS:-}" ] && gen_flags+=(--shards "$SHARDS")
train_flags=(--device "$DEVICE")
[ -n "${TIME_LIMIT:-}" ] && train_flags+=(--time-limit "$TIME_LIMIT")
[ -n "${STEPS:-}" ] && train_flags+=(--steps "$STEPS")
[ -n "${BATCH:-}" ] && train_flags+=(--set "optim.batch_size=$BATCH")
for s in ${SETS:-}; do train_flags+=(--set "$s"); done

if has generate; then
  echo "== generate the training set ($RECIPE) and a test set (seed 7, $TEST_SHARDS shards)"
  lasor-datagen generate "$RECIPE" --out "$OUT/data" "${gen_flags[@]}"
  lasor-datagen generate "$RECIPE" --out "$OUT/data-test" --seed 7 --shards "$TEST_SHARDS" ${WORKERS:+--workers "$WORKERS"}
  record generate
fi

if has train; then
  echo "== train ($TRAIN_CONFIG on $DEVICE; resumes if interrupted)"
  RESUME=""
  [ -f "$OUT/run/latest.pt" ] && RESUME="--resume"
  lasor-train --data "$OUT/data" --out "$OUT/run" --config "$TRAIN_CONFIG" "${train_flags[@]}" $RESUME
  record train
fi

if has eval; then
  echo "== evaluate on the held-out test set"
  lasor-eval --checkpoint "$OUT/run/best.pt" --data "$OUT/data-test" --out "$OUT/eval" --device "$DEVICE"
  record eval
fi

if has export; then
  echo "== export the inference checkpoint"
  python -m lasor_trainer.pretrained "$OUT/run/best.pt" "$OUT/standard.pt"
  record export
fi

if has card; then
  echo "== model card"
  python scripts/model_card.py --run "$OUT/run" --eval "$OUT/eval" --out "$OUT/MODEL_CARD.md" \
    --command "${CARD_COMMAND:-bash scripts/train_standard.sh}   # $(tr -d '\n' < "$OUT/timings.json")" \
    ${ABLATIONS:+--ablations "$ABLATIONS"} ${CARD_EXTRA:+--extra "$CARD_EXTRA"}
fi
if [ "${SHIP:-0}" = 1 ] && has export && has card; then
  cp "$OUT/standard.pt" "$OUT/MODEL_CARD.md" trainer/lasor_trainer/pretrained/
  echo "shipped: trainer/lasor_trainer/pretrained/standard.pt + MODEL_CARD.md"
fi
echo "done ($STAGES): $OUT/ (run/, eval/report.md, standard.pt, MODEL_CARD.md, timings.json)"
