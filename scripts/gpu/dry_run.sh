#!/usr/bin/env bash
# Prove scripts/gpu_run.sh end to end on a CPU, as the GPU host would run it, with a tiny budget.
#
#   bash scripts/gpu/dry_run.sh            # → out/gpu-dry/result/ (the files a GPU run returns)
#
# It builds a fresh venv WITHOUT lasor installed that holds what the GPU host holds: torch (2.13.0
# here), the packages that host's image already has (DEVICE_HAS below), and nothing else; the rest
# comes from the bundle's wheels for this Python (scripts/gpu/make_bundle.sh --python-version X.Y
# --dest .whl-cpXY --no-gl), installed by gpu_run.sh itself with --no-index --no-deps. The
# neural_renderer build fails on a CPU-only torch, so the run also shows the fallback line.
# Env: DRY_VENV (default /tmp/lasor-gpu-dry-venv), PYTHON (default python3), WORK (out/gpu-dry).
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON="${PYTHON:-python3}"
DRY_VENV="${DRY_VENV:-/tmp/lasor-gpu-dry-venv}"
# what the GPU host's image provides besides torch (see the device's package list); importlib_metadata
# only because dask needs it below Python 3.12
DEVICE_HAS="numpy numba h5py click scipy tensorboard pyyaml tqdm matplotlib pillow networkx imageio msgpack
  cloudpickle toolz fsspec sortedcontainers psutil jinja2 urllib3 packaging six pytest importlib_metadata"
pyver=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
WHEELS=".whl-cp${pyver/./}"
if [ ! -x "$DRY_VENV/bin/python" ]; then
  "$PYTHON" -m venv "$DRY_VENV"
  "$DRY_VENV/bin/python" -m pip install -q "torch==2.13.0"
  # shellcheck disable=SC2086
  "$DRY_VENV/bin/python" -m pip install -q $DEVICE_HAS
fi
if "$DRY_VENV/bin/python" -c "import lasor_trainer" 2>/dev/null; then
  echo "dry_run: $DRY_VENV must not have lasor installed" >&2
  exit 2
fi
[ -d "$WHEELS" ] || PY="$DRY_VENV/bin/python" bash scripts/gpu/make_bundle.sh --python-version "$pyver" --dest "$WHEELS" --no-gl
WORK="${WORK:-out/gpu-dry}"
rm -rf "$WORK"
env -u OUT -u PYTHONPATH GPU_RUN_DRY=1 PY="$DRY_VENV/bin/python" WHEELS="$WHEELS" WORK="$WORK" \
  nice -n 10 bash scripts/gpu_run.sh
