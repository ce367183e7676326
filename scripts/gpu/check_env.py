"""Check the Python environment of a GPU run (scripts/gpu_run.sh) before it spends time on data.

    python scripts/gpu/check_env.py SITE_DIR

SITE_DIR holds the carried wheels, installed with --no-deps. Prints one line of versions, a warning
for each requirement of a carried package that the host does not meet (name, wanted, found), and
exits 1 when a module lasor needs does not import.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import sys

NEEDED = {"numpy": "numpy", "torch": "torch", "scipy": "scipy", "h5py": "h5py", "yaml": "PyYAML", "click": "click",
          "tqdm": "tqdm", "PIL": "pillow", "matplotlib": "matplotlib", "numba": "numba", "tensorboard": "tensorboard",
          "smplx": "smplx", "trimesh": "trimesh", "OpenGL": "PyOpenGL", "pyrender": "pyrender-maintained",
          "dask": "dask", "distributed": "distributed"}  # module → distribution


def unmet(site: str) -> list[str]:
    from packaging.markers import default_environment
    from packaging.requirements import Requirement

    env = default_environment()
    out = []
    for dist in md.distributions(path=[site]):
        for spec in dist.requires or []:
            req = Requirement(spec)
            if req.marker is not None and not req.marker.evaluate({**env, "extra": ""}):
                continue
            try:
                have = md.version(req.name)
            except md.PackageNotFoundError:
                out.append(f"{dist.metadata['Name']} needs {req}: not installed")
                continue
            if req.specifier and not req.specifier.contains(have, prereleases=True):
                out.append(f"{dist.metadata['Name']} needs {req}: found {have}")
    return sorted(set(out))


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    for line in unmet(sys.argv[1]):
        print(f"warning: {line}")
    versions, failed = [], []
    for name, dist in NEEDED.items():
        try:
            importlib.import_module(name)
            versions.append(f"{dist} {md.version(dist)}")
        except Exception as e:
            failed.append(f"{name} ({type(e).__name__}: {e})")
    print("python " + sys.version.split()[0] + "; " + ", ".join(versions))
    if failed:
        print("error: these modules do not import: " + "; ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
