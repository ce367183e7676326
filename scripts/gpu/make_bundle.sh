#!/usr/bin/env bash
# Fill the bundle that scripts/gpu_run.sh installs on a GPU host with no network:
#   .whl/  the wheels of scripts/gpu/wheels.txt for that host's Python (default CPython 3.12,
#          manylinux x86_64), downloaded without dependencies (each needed one is listed there),
#          plus the neural_renderer_pytorch source (built there with nvcc; patched for torch 2.x
#          at build time by scripts/gpu/build_neural_renderer.sh)
#   .gl/   the GL loader packages (.deb) that give EGL through the NVIDIA driver
# Both folders are git-ignored; pass them to the device run as carried paths.
#
#   bash scripts/gpu/make_bundle.sh                          # the GPU host's bundle (.whl, .gl)
#   bash scripts/gpu/make_bundle.sh --python-version 3.11 --dest .whl-cp311 --no-gl   # CPU dry run here
#
# Needs network and pip here (PY=python with pip; default .venv/bin/python, else python3) and, for
# .gl, apt-get (Debian/Ubuntu).
set -euo pipefail
cd "$(dirname "$0")/../.."
PYVER=3.12
DEST=.whl
GL_DEST=.gl
WITH_GL=1
while [ $# -gt 0 ]; do
  case "$1" in
    --python-version) PYVER="$2"; shift 2 ;;
    --dest) DEST="$2"; shift 2 ;;
    --gl-dest) GL_DEST="$2"; shift 2 ;;
    --no-gl) WITH_GL=0; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "make_bundle: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
if [ -z "${PY:-}" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
LIST=scripts/gpu/wheels.txt
# neural_renderer_pytorch 1.1.3 (MIT, Kato/Kolotouros): its only release, an sdist. pip cannot fetch
# it without a CUDA torch (its setup.py needs CUDA_HOME just to report metadata), so the file is
# fetched by URL and checked against its published sha256.
NR_FILE=neural_renderer_pytorch-1.1.3.tar.gz
NR_URL=https://files.pythonhosted.org/packages/15/28/dd59b5098e60e75948ae414ee65700597217199591dffa22797f47914702/$NR_FILE
NR_SHA256=d0d86b003c2cc1a4d8a909862fb52ff153641636471097651239764a428c9137

# only our own kind of files may be replaced (two versions of one package stop the install there)
if [ -d "$DEST" ] && find "$DEST" -mindepth 1 ! -name '*.whl' ! -name '*.tar.gz' | grep -q .; then
  echo "make_bundle: $DEST holds files other than wheels/sdists; choose another --dest" >&2
  exit 2
fi
mkdir -p "$DEST"
rm -f "$DEST"/*.whl "$DEST"/*.tar.gz

mapfile -t reqs < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$LIST" | grep -v '^$')
echo "== wheels for CPython $PYVER manylinux x86_64 (${#reqs[@]} from $LIST) → $DEST"
tag="${PYVER//./}"
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp \
  --abi "cp$tag" --abi abi3 --abi none \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64 --platform any \
  -d "$DEST" "${reqs[@]}" 2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2)
n=$(ls "$DEST"/*.whl | wc -l)
[ "$n" -eq "${#reqs[@]}" ] || { echo "make_bundle: expected ${#reqs[@]} wheels in $DEST, got $n" >&2; exit 1; }

echo "== $NR_FILE (source, built on the GPU host)"
"$PY" - "$NR_URL" "$DEST/$NR_FILE" "$NR_SHA256" <<'PY'
import hashlib, sys, urllib.request
url, path, sha = sys.argv[1:]
data = urllib.request.urlopen(url, timeout=60).read()
got = hashlib.sha256(data).hexdigest()
if got != sha:
    sys.exit(f"make_bundle: {url}: sha256 {got} != expected {sha}")
open(path, "wb").write(data)
PY

if [ "$WITH_GL" = 1 ]; then
  echo "== GL loader packages (EGL via the NVIDIA driver) → $GL_DEST"
  mkdir -p "$GL_DEST" /tmp/lasor-apt-amd64/partial
  rm -f "$GL_DEST"/*.deb
  o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/lasor-apt-amd64)
  apt-get "${o[@]}" -qq update
  (cd "$GL_DEST" && apt-get "${o[@]}" -qq download libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
fi

mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
ls -1 "$DEST"
b_whl=$(du -sb "$DEST" | cut -f1)
b_gl=0
[ -d "$GL_DEST" ] && [ "$WITH_GL" = 1 ] && { ls -1 "$GL_DEST"; b_gl=$(du -sb "$GL_DEST" | cut -f1); }
b_tree=$( (git ls-files -z; git ls-files -z -o --exclude-standard) | xargs -0 -r stat -c %s 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')
total=$((b_whl + b_gl + b_tree))
echo "bundle: $DEST $(mib "$b_whl"), $GL_DEST $(mib "$b_gl"); working tree $(mib "$b_tree"); what travels: $(mib "$total") of 64 MiB"
[ "$total" -lt $((64 * 1048576)) ] || { echo "make_bundle: over the 64 MiB that a device run carries" >&2; exit 1; }
