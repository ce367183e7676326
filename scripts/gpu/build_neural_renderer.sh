#!/usr/bin/env bash
# Build neural_renderer_pytorch (Kato's renderer, CUDA extension) from its sdist for the torch and
# GPU at hand, in place, then check it renders like lasor's own renderer.
#
#   bash scripts/gpu/build_neural_renderer.sh SDIST.tar.gz BUILD_DIR
#
# On success (exit 0) `BUILD_DIR/src` is importable (add it to PYTHONPATH). The 2019 sources use
# APIs that torch 2.x removed; they are patched here, at build time, not vendored:
#   AT_CHECK → TORCH_CHECK, x.type().is_cuda() → x.is_cuda(), AT_DISPATCH_*(x.type(), …) →
#   AT_DISPATCH_*(x.scalar_type(), …), x.data<T>() → x.data_ptr<T>().
# Env: PY (python with torch; default python3), TORCH_CUDA_ARCH_LIST (default: the visible GPU's),
# MAX_JOBS (parallel compiles; default nproc/2).
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 SDIST.tar.gz BUILD_DIR" >&2; exit 2; }
SDIST="$1"
BUILD="$2"
PY="${PY:-python3}"
HERE="$(cd "$(dirname "$0")" && pwd)"
[ -f "$SDIST" ] || { echo "build_neural_renderer: no sdist $SDIST (run scripts/gpu/make_bundle.sh)" >&2; exit 2; }
rm -rf "$BUILD"
mkdir -p "$BUILD"
tar xzf "$SDIST" -C "$BUILD"
mv "$BUILD"/neural_renderer_pytorch-* "$BUILD/src"
cd "$BUILD/src"

sed -i -E \
  -e 's/\bAT_CHECK\(/TORCH_CHECK(/g' \
  -e 's/\.type\(\)\.is_cuda\(\)/.is_cuda()/g' \
  -e 's/(AT_DISPATCH_[A-Z_]+\([A-Za-z_]+)\.type\(\)/\1.scalar_type()/g' \
  -e 's/\.data<([A-Za-z0-9_]+)>\(\)/.data_ptr<\1>()/g' \
  neural_renderer/cuda/*.cpp neural_renderer/cuda/*.cu
if grep -nE 'AT_CHECK|\.type\(\)|\.data<' neural_renderer/cuda/*.cpp neural_renderer/cuda/*.cu; then
  echo "build_neural_renderer: the patterns above survived the torch 2.x patch" >&2
  exit 1
fi

if [ -z "${TORCH_CUDA_ARCH_LIST:-}" ]; then
  TORCH_CUDA_ARCH_LIST=$("$PY" -c "import torch; print('%d.%d' % torch.cuda.get_device_capability())" 2>/dev/null) || {
    echo "build_neural_renderer: torch sees no CUDA device ($("$PY" -c 'import torch; print(torch.__version__)'))" >&2
    exit 1
  }
  export TORCH_CUDA_ARCH_LIST
fi
inc=$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['include'])")
[ -f "$inc/Python.h" ] || { echo "build_neural_renderer: no Python.h in $inc (the Python headers are not installed)" >&2; exit 1; }
command -v nvcc >/dev/null || [ -x "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc" ] || {
  echo "build_neural_renderer: nvcc not found (PATH, CUDA_HOME or /usr/local/cuda)" >&2; exit 1; }
export MAX_JOBS="${MAX_JOBS:-$(( $(nproc) / 2 > 0 ? $(nproc) / 2 : 1 ))}"
echo "building neural_renderer for sm_${TORCH_CUDA_ARCH_LIST/./} with $("$PY" -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda)') (MAX_JOBS=$MAX_JOBS)"
"$PY" setup.py -q build_ext --inplace -j 3
cd - >/dev/null
PYTHONPATH="$BUILD/src${PYTHONPATH:+:$PYTHONPATH}" "$PY" "$HERE/check_neural_renderer.py"
