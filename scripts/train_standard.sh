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
# TRAIN_CONFIG, RECIPE, SHIP=1 (copy the result into the package as the shipped model).
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
mkdir -p "$OUT"
T0=$(date +%s)
gen_flags=()
[ -n "${WORKERS:-}" ] && gen_flags+=(--workers "$WORKERS")
[ -n "${SHARDS:-}" ] && gen_flags+=(--shards "$SHARDS")
train_flags=(--device "$DEVICE")
[ -n "${TIME_LIMIT:-}" ] && train_flags+=(--time-limit "$TIME_LIMIT")
[ -n "${STEPS:-}" ] && train_flags+=(--steps "$STEPS")
[ -n "${BATCH:-}" ] && train_flags+=(--set "optim.batch_size=$BATCH")
for s in ${SETS:-}; do train_flags+=(--set "$s"); done

echo "== 1/5 generate the training set ($RECIPE) and a test set (seed 7, $TEST_SHARDS shards)"
lasor-datagen generate "$RECIPE" --out "$OUT/data" "${gen_flags[@]}"
lasor-datagen generate "$RECIPE" --out "$OUT/data-test" --seed 7 --shards "$TEST_SHARDS" ${WORKERS:+--workers "$WORKERS"}
T1=$(date +%s)

echo "== 2/5 train ($TRAIN_CONFIG on $DEVICE; resumes if interrupted)"
RESUME=""
[ -f "$OUT/run/latest.pt" ] && RESUME="--resume"
lasor-train --data "$OUT/data" --out "$OUT/run" --config "$TRAIN_CONFIG" "${train_flags[@]}" $RESUME
T2=$(date +%s)

echo "== 3/5 evaluate on the held-out test set"
lasor-eval --checkpoint "$OUT/run/best.pt" --data "$OUT/data-test" --out "$OUT/eval" --device "$DEVICE"
T3=$(date +%s)

echo "== 4/5 export the inference checkpoint"
python -m lasor_trainer.pretrained "$OUT/run/best.pt" "$OUT/standard.pt"
cat > "$OUT/timings.json" <<JSON
{"generate_s": $((T1 - T0)), "train_s": $((T2 - T1)), "eval_s": $((T3 - T2)), "total_s": $(($(date +%s) - T0)),
 "device": "$DEVICE", "workers": "${WORKERS:-auto}", "cpus": $(nproc)}
JSON

echo "== 5/5 model card"
python scripts/model_card.py --run "$OUT/run" --eval "$OUT/eval" --out "$OUT/MODEL_CARD.md" \
  --command "bash scripts/train_standard.sh   # $(cat "$OUT/timings.json" | tr -d '\n')" \
  ${ABLATIONS:+--ablations "$ABLATIONS"} ${CARD_EXTRA:+--extra "$CARD_EXTRA"}
if [ "${SHIP:-0}" = 1 ]; then
  cp "$OUT/standard.pt" "$OUT/MODEL_CARD.md" trainer/lasor_trainer/pretrained/
  echo "shipped: trainer/lasor_trainer/pretrained/standard.pt + MODEL_CARD.md"
fi
echo "done in $(($(date +%s) - T0)) s: $OUT/ (run/, eval/report.md, standard.pt, MODEL_CARD.md, timings.json)"
