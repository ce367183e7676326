#!/usr/bin/env bash
# The standard model on one CUDA GPU in one command, within one 10-minute run, on a host that has
# only PyTorch, CUDA and nvcc and cannot download anything (README: "Training on a GPU host").
#
#   bash scripts/gpu/make_bundle.sh        # beforehand, with network: .whl/ (wheels + neural_renderer
#                                          # source) and .gl/ (EGL loader .debs); carry both to the host
#   bash scripts/gpu_run.sh                # on the GPU host, in the repository root
#   bash scripts/gpu/dry_run.sh            # the same steps on a CPU with a tiny budget (a fresh venv)
#
# Steps: install the carried wheels into a target folder (no network, no dependencies resolved);
# put lasor-datagen/-train/-eval/-predict shims (python -m …) on PATH with PYTHONPATH=shared:datagen:
# trainer; unpack the GL loaders (EGL through the NVIDIA driver); build the CUDA neural_renderer in
# the background (timeout; on failure training falls back to lasor's own renderer and says so);
# generate the standard dataset and its test set with every core (scripts/train_standard.sh, stage
# generate); time a short training run to size the schedule to the time left; train with AMP and
# the CUDA renderer; evaluate, export, model card (stages train eval export card); run the CUDA
# tests if time is left. Results go flat into $OUT (at most 8 files): standard.pt, metrics.json,
# report.md, MODEL_CARD.md, timings.json, gpu_run.log, tests.log, logs.tar.gz.
#
# Env (all optional): OUT (results; default WORK/result), WORK (data, runs, build; default
# out/gpu-run), PY (python with torch; default python3), WHEELS (default .whl), GL_DEBS (default
# .gl), GPU_RUN_BUDGET (s for everything; default 510), SHARDS (training shards; default 256),
# BATCH (default 128), LOADER_WORKERS (DataLoader workers; default nproc/2), NR_BUILD_TIMEOUT (s;
# default 300), GPU_RUN_DRY=1 (CPU, tiny data and steps, GL packages not unpacked: proves the path
# without a GPU).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
T_START=$(date +%s)
DRY="${GPU_RUN_DRY:-0}"
BUDGET="${GPU_RUN_BUDGET:-510}"
DEADLINE=$((T_START + BUDGET))
WORK="${WORK:-out/gpu-run}"
RESULT="${OUT:-$WORK/result}"
PY="${PY:-python3}"
WHEELS="${WHEELS:-.whl}"
GL_DEBS="${GL_DEBS:-.gl}"
NCPU=$(nproc)
STD="$WORK/standard"
SITE="$WORK/site"
mkdir -p "$WORK" "$RESULT"
WORK="$(cd "$WORK" && pwd)"
RESULT="$(cd "$RESULT" && pwd)"
STD="$WORK/standard"
SITE="$WORK/site"
exec > >(tee -a "$RESULT/gpu_run.log") 2>&1

now() { date +%s; }
log() { echo "[gpu_run +$(($(now) - T_START))s] $*"; }
die() { log "error: $*"; exit 1; }
declare -A TIMES=()
GPU_NAME="none"
RENDERER="not decided"

collect() {  # whatever exists goes to $RESULT, flat (also after a failure)
  local rc=$?
  set +e
  for f in "$STD/standard.pt" "$STD/eval/metrics.json" "$STD/eval/report.md" "$STD/MODEL_CARD.md"; do
    [ -f "$f" ] && cp "$f" "$RESULT/"
  done
  if [ -f "$STD/timings.json" ] || [ "${#TIMES[@]}" -gt 0 ]; then
    "$PY" - "$STD/timings.json" "$RESULT/timings.json" "$GPU_NAME" "$RENDERER" "$(($(now) - T_START))" "$rc" \
      "$(for k in "${!TIMES[@]}"; do printf '%s=%s ' "$k" "${TIMES[$k]}"; done)" <<'PY'
import json, os, sys
src, dst, gpu, renderer, wall, rc, extra = sys.argv[1:]
t = json.load(open(src)) if os.path.exists(src) else {}
for kv in extra.split():
    k, v = kv.split("=", 1)
    try:
        v = float(v) if "." in v else int(v)
    except ValueError:
        pass
    t[k] = v
t.update(gpu=gpu, renderer=renderer, gpu_run_wall_s=int(wall), gpu_run_exit=int(rc))
json.dump(t, open(dst, "w"), indent=1)
PY
  fi
  (cd "$WORK" && tar czf "$RESULT/logs.tar.gz" --ignore-failed-read \
     $(cd "$WORK" && ls -d standard/run/log.jsonl standard/run/summary.json standard/run/config.json \
       standard/eval/*.json standard/eval/*.png standard/eval/per_sample.npz standard/data/manifest.json \
       standard/data-test/manifest.json calib/summary.json calib/log.jsonl nr_build.log card_extra.md 2>/dev/null))
  log "results in $RESULT: $(cd "$RESULT" && ls | tr '\n' ' ')(exit $rc)"
}
trap collect EXIT
trap 'log "stopped by a signal"; exit 143' TERM INT

# ---------------------------------------------------------------------------------------- 1. host
log "lasor GPU run: budget ${BUDGET}s, $NCPU CPUs, dry run: $DRY, results → $RESULT"
"$PY" -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'CUDA', torch.version.cuda)" \
  || die "$PY has no torch"
if [ "$DRY" = 1 ]; then
  DEVICE=cpu
else
  DEVICE=cuda
  GPU_NAME=$("$PY" -c "import torch; assert torch.cuda.is_available(); print(torch.cuda.get_device_name(0))" 2>/dev/null) \
    || die "torch sees no CUDA device (GPU_RUN_DRY=1 runs the same steps on the CPU)"
  log "GPU: $GPU_NAME; nvcc: $(nvcc --version 2>/dev/null | tail -1 || echo 'not found')"
fi

# ---------------------------------------------------------------------------------------- 2. wheels
t=$(now)
ls "$WHEELS"/*.whl >/dev/null 2>&1 || die "no wheels in $WHEELS/ (run scripts/gpu/make_bundle.sh and carry $WHEELS)"
n_want=$(sed -e 's/#.*//' -e 's/[[:space:]]//g' scripts/gpu/wheels.txt | grep -c .)
n_have=$(ls "$WHEELS"/*.whl | wc -l)
[ "$n_have" -eq "$n_want" ] || die "$WHEELS holds $n_have wheels, scripts/gpu/wheels.txt lists $n_want (rerun make_bundle.sh)"
rm -rf "$SITE"
"$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" "$WHEELS"/*.whl \
  || die "installing the carried wheels failed"
BIN="$WORK/bin"
mkdir -p "$BIN"
shim() { printf '#!/bin/sh\nexec "%s" -m %s "$@"\n' "$(command -v "$PY")" "$2" > "$BIN/$1"; chmod +x "$BIN/$1"; }
shim lasor-datagen lasor_datagen.cli
shim lasor-train "lasor_trainer.cli train"
shim lasor-eval "lasor_trainer.cli eval"
shim lasor-predict "lasor_trainer.cli predict"
printf '#!/bin/sh\nexec "%s" "$@"\n' "$(command -v "$PY")" > "$BIN/python"; chmod +x "$BIN/python"
export PATH="$BIN:$PATH" PYTHONPATH="$ROOT/shared:$ROOT/datagen:$ROOT/trainer:$SITE" PYTHONUNBUFFERED=1
export VENV="$WORK/no-venv"  # train_standard.sh must not put a .venv of the repository on PATH
TIMES[install_s]=$(($(now) - t))
log "installed $n_have wheels into $SITE in ${TIMES[install_s]}s; shims in $BIN"

# ---------------------------------------------------------------------------------------- 3. GL
export PYOPENGL_PLATFORM=egl
if [ "$DRY" = 1 ]; then
  log "dry run: the GL loader packages in $GL_DEBS/ are not unpacked (this host's EGL is used)"
else
  ls "$GL_DEBS"/*.deb >/dev/null 2>&1 || die "no .deb in $GL_DEBS/ (run scripts/gpu/make_bundle.sh and carry $GL_DEBS)"
  for f in "$GL_DEBS"/*.deb; do dpkg -x "$f" / || die "dpkg -x $f failed"; done
  ldconfig
  vendor=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
  [ -f "$vendor" ] && export __EGL_VENDOR_LIBRARY_FILENAMES="$vendor"
fi
"$PY" scripts/gpu/check_env.py "$SITE" || die "the Python environment is incomplete (see above)"
"$PY" -c "from lasor_datagen.gl import select_gl_platform; print('offscreen GL:', select_gl_platform())" \
  || die "no offscreen OpenGL (EGL) here"

# ---------------------------------------------------------------------------------------- 4. neural_renderer (background)
NR_SDIST=$(ls "$WHEELS"/neural_renderer_pytorch-*.tar.gz 2>/dev/null | head -1)
t_nr=$(now)
(
  timeout "${NR_BUILD_TIMEOUT:-300}" env PY="$PY" MAX_JOBS=$((NCPU / 4 > 0 ? NCPU / 4 : 1)) \
    bash scripts/gpu/build_neural_renderer.sh "${NR_SDIST:-missing.tar.gz}" "$WORK/nr" > "$WORK/nr_build.log" 2>&1
  echo $? > "$WORK/nr_build.rc"
  echo $(($(date +%s) - t_nr)) > "$WORK/nr_build.s"
) &
NR_JOB=$!
log "building neural_renderer in the background (log: nr_build.log)"

# ---------------------------------------------------------------------------------------- 5. data
export DEVICE OUT="$STD" CARD_COMMAND="bash scripts/gpu_run.sh"
if [ "$DRY" = 1 ]; then
  export WORKERS=2 SHARDS=3 TEST_SHARDS=1
  BATCH="${BATCH:-8}"
  SETS_BASE="data.val_shards=1 data.max_val_samples=32 data.num_workers=1 train.threads=2"
else
  # 256 shards (16,384 samples, ≈ 1 min on 16 cores): the full standard recipe (1,024 shards) would take
  # ≈ 3 of the run's 8.5 minutes from training; a longer GPU run should use SHARDS=1024.
  export WORKERS="$NCPU" SHARDS="${SHARDS:-256}"
  BATCH="${BATCH:-128}"
  SETS_BASE="train.amp=true data.num_workers=${LOADER_WORKERS:-$((NCPU / 2))} train.threads=4"
fi
t=$(now)
STAGES=generate bash scripts/train_standard.sh || die "data generation failed"
TIMES[generate_wall_s]=$(($(now) - t))
log "data generated in ${TIMES[generate_wall_s]}s"

# ---------------------------------------------------------------------------------------- 6. renderer decision
wait "$NR_JOB"
nr_rc=$(cat "$WORK/nr_build.rc" 2>/dev/null || echo 1)
TIMES[nr_build_s]=$(cat "$WORK/nr_build.s" 2>/dev/null || echo 0)
if [ "$nr_rc" = 0 ]; then
  export PYTHONPATH="$PYTHONPATH:$WORK/nr/src" LASOR_NMR_BACKEND=neural_renderer
  RENDERER=neural_renderer
  log "renderer: neural_renderer (CUDA extension built in ${TIMES[nr_build_s]}s): $(tail -1 "$WORK/nr_build.log")"
else
  export LASOR_NMR_BACKEND=auto
  RENDERER="lasor (fallback)"
  why=$(grep -v '^\s*$' "$WORK/nr_build.log" | tail -1)
  [ "$nr_rc" = 124 ] && why="build timed out after ${NR_BUILD_TIMEOUT:-300}s"
  log "renderer: FALLBACK to lasor's own renderer (numba CPU kernels): the neural_renderer CUDA extension could not be built or failed its check (exit $nr_rc: $why; full log in logs.tar.gz/nr_build.log)"
fi

# ---------------------------------------------------------------------------------------- 7. size the training
CONFIG=trainer/configs/standard.yaml
cal_flags=(--data "$STD/data" --config "$CONFIG" --device "$DEVICE" --no-verify --no-progress
           --set "optim.batch_size=$BATCH" --set data.max_val_samples=32)
for s in $SETS_BASE; do cal_flags+=(--set "$s"); done
if [ "$DRY" = 1 ]; then CAL_WARM=1 CAL_STEPS=2; else CAL_WARM=30 CAL_STEPS=120; fi
RESERVE=$([ "$DRY" = 1 ] && echo 60 || echo 100)  # eval + export + card + tests + collecting
t=$(now)
rm -rf "$WORK/calib"
lasor-train --out "$WORK/calib" "${cal_flags[@]}" --steps "$CAL_WARM" \
  && lasor-train --out "$WORK/calib" "${cal_flags[@]}" --steps $((CAL_WARM + CAL_STEPS)) --resume \
  || die "the timing run of lasor-train failed"
TIMES[calibrate_s]=$(($(now) - t))
rate=$("$PY" -c "import json; s = json.load(open('$WORK/calib/summary.json')); print(f'{$CAL_STEPS / s[\"elapsed_s\"]:.3f}')")
TIME_LIMIT=$((DEADLINE - $(now) - RESERVE - 20))  # 20 s: lasor-train start-up (imports, shard hashing)
[ "$TIME_LIMIT" -ge 30 ] || TIME_LIMIT=30
if [ "$DRY" = 1 ]; then
  STEPS=6
else
  STEPS=$("$PY" -c "print(max(200, int($rate * $TIME_LIMIT * 0.92) // 100 * 100))")
fi
VAL_EVERY=$((STEPS / 8 > 50 ? STEPS / 8 : STEPS))
TIMES[steps_per_s_measured]=$rate
TIMES[steps_planned]=$STEPS
TIMES[batch]=$BATCH
log "measured $rate steps/s at batch $BATCH ($CAL_STEPS steps after $CAL_WARM warm-up); training $STEPS steps, time limit ${TIME_LIMIT}s"

# ---------------------------------------------------------------------------------------- 8. train, evaluate, export, card
cat > "$WORK/card_extra.md" <<MD

## GPU run (scripts/gpu_run.sh)

- device: $GPU_NAME, $NCPU CPU cores; torch $("$PY" -c 'import torch; print(torch.__version__)'); AMP: $([ "$DEVICE" = cuda ] && echo on || echo off)
- silhouette renderer: $RENDERER$([ "$nr_rc" = 0 ] && echo " (built here in ${TIMES[nr_build_s]} s)")
- data: generated with $WORKERS Dask workers in ${TIMES[generate_wall_s]} s; batch $BATCH; training sized by a
  timing run ($rate steps/s) to $STEPS steps within ${TIME_LIMIT} s
MD
export CARD_EXTRA="$WORK/card_extra.md"
t=$(now)
STAGES=train STEPS="$STEPS" TIME_LIMIT="$TIME_LIMIT" BATCH="$BATCH" \
  SETS="$SETS_BASE train.val_every=$VAL_EVERY train.ckpt_every=$VAL_EVERY" bash scripts/train_standard.sh \
  || die "training failed"
TIMES[train_wall_s]=$(($(now) - t))
t=$(now)
STAGES="eval export card" bash scripts/train_standard.sh || die "evaluation/export/model card failed"
TIMES[eval_export_card_s]=$(($(now) - t))
log "$(grep -m1 -i 'this model' "$STD/MODEL_CARD.md" || true)"

# ---------------------------------------------------------------------------------------- 9. CUDA tests, if time is left
left=$((DEADLINE - $(now) - 10))
if [ "$left" -ge 30 ]; then
  t=$(now)
  log "tests (${left}s left): the neural_renderer backend tests and the GPU bundle checks"
  timeout "$left" "$PY" -m pytest -q -p no:cacheprovider -rs -k "backend or gpu_bundle" \
    tests/test_neural_renderer.py tests/test_gpu_bundle.py > "$RESULT/tests.log" 2>&1
  rc_t=$?
  log "tests exit $rc_t ($(tail -1 "$RESULT/tests.log"))"
  TIMES[tests_s]=$(($(now) - t))
else
  log "no time left for the tests (${left}s)"
fi
log "done in $(($(now) - T_START))s"
