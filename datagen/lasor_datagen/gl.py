"""Offscreen OpenGL selection for pyrender: EGL first, OSMesa as the fallback.

PyOpenGL fixes its platform when first imported, so the choice is made once, before anything
imports pyrender, by probing each backend in a short subprocess; the answer is exported through
PYOPENGL_PLATFORM so that forked/spawned Dask workers inherit it. Never create a GL context in a
parent process before workers start.
"""

import os
import subprocess
import sys

from lasor_shared.errors import LasorError

_PROBE = "import pyrender; r = pyrender.OffscreenRenderer(8, 8); r.delete()"


def select_gl_platform() -> str:
    """Set and return a working PYOPENGL_PLATFORM ('egl' or 'osmesa'); LasorError if none works."""
    wanted = os.environ.get("PYOPENGL_PLATFORM")
    candidates = [wanted] if wanted else ["egl", "osmesa"]
    errors = []
    for platform in candidates:
        env = dict(os.environ, PYOPENGL_PLATFORM=platform)
        proc = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=120)
        if proc.returncode == 0:
            os.environ["PYOPENGL_PLATFORM"] = platform
            return platform
        last = (proc.stderr.strip().splitlines() or ["unknown error"])[-1]
        errors.append(f"{platform}: {last}")
    raise LasorError("no offscreen OpenGL backend available for pyrender ("
                     + "; ".join(errors) + "); install Mesa EGL (libegl1) or OSMesa (libosmesa6)")
