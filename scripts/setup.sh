#!/usr/bin/env bash
# Create/refresh the virtual environment and install lasor with the extras named in $1 (default: dev).
# Installs the system libraries for headless OpenGL (Mesa EGL + OSMesa) with apt-get when run as root.
set -euo pipefail
EXTRAS="${1:-dev}"
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"

need_sys=()
for lib in libEGL.so.1 libOSMesa.so.8 libGL.so.1; do
  ldconfig -p 2>/dev/null | grep -q "$lib" || need_sys+=("$lib")
done
if [ "${#need_sys[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "[setup] installing Mesa EGL/OSMesa for offscreen rendering (missing: ${need_sys[*]})"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      libegl1 libgl1 libgl1-mesa-dri libglu1-mesa libosmesa6 >/dev/null
  else
    echo "[setup] warning: missing ${need_sys[*]}; install Mesa EGL or OSMesa (e.g. apt-get install libegl1 libgl1-mesa-dri libosmesa6) as root" >&2
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
# torch first and pinned: an unpinned torch would pull a multi-GB CUDA build.
"$VENV/bin/python" -m pip install -q "torch==2.13.0"
"$VENV/bin/python" -m pip install -q -e ".[$EXTRAS]"
touch "$VENV/.installed-$EXTRAS"
echo "[setup] ready: $VENV (extras: $EXTRAS)"
