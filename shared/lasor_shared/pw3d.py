"""3DPW sequence pickles, read without running code (`lasor_shared.safe_pickle`: numpy arrays and plain
containers only): the one reader behind the generator's 3DPW pose source and the trainer's 3DPW benchmark.

Per person: `poses` (T,72) world frame, `betas`, `trans` (T,3), `poses2d` (T,3,18 COCO-18 OpenPose
detections), `campose_valid` (T,), `genders`; per frame: `cam_poses` (T,4,4) world→camera; and
`cam_intrinsics` (3,3). Anything else is a one-line LasorError naming the file and the field.
"""

from __future__ import annotations

import pickle

import numpy as np

from lasor_shared import safe_pickle
from lasor_shared.errors import LasorError

SEQUENCE_KEYS = ("poses", "betas", "trans", "cam_poses", "cam_intrinsics", "poses2d", "campose_valid", "genders")
PER_PERSON = ("poses", "betas", "trans", "poses2d", "campose_valid", "genders")


def _load(path: str) -> dict:
    try:
        with open(path, "rb") as f:
            data = safe_pickle.load(f)
    except (OSError, pickle.UnpicklingError) as e:
        raise LasorError(f"3DPW {path}: not a readable sequence pickle ({e})") from None
    if not isinstance(data, dict):
        raise LasorError(f"3DPW {path}: expected a dict")
    return data


def _array(path, key, value, shape):
    """`value` as a finite float array of `shape` (None = any length on that axis); LasorError names it."""
    try:
        a = np.asarray(value, dtype=np.float64)
    except (ValueError, TypeError):
        raise LasorError(f"3DPW {path}: {key} is not a numeric array") from None
    if a.ndim != len(shape) or any(n is not None and a.shape[i] != n for i, n in enumerate(shape)):
        want = "(" + ", ".join("T" if n is None else str(n) for n in shape) + ")"
        raise LasorError(f"3DPW {path}: {key} has shape {a.shape}, expected {want}")
    if not np.all(np.isfinite(a)):
        raise LasorError(f"3DPW {path}: {key} contains NaN or infinite values")
    return a


def read_sequence(path: str) -> dict:
    """A whole 3DPW sequence (every key of SEQUENCE_KEYS), its fields checked and converted to float
    arrays (per-person fields as lists)."""
    data = _load(path)
    missing = [k for k in SEQUENCE_KEYS if k not in data]
    if missing:
        raise LasorError(f"3DPW {path}: missing key(s) {', '.join(missing)}")
    for k in PER_PERSON:
        if not isinstance(data[k], (list, tuple)):
            raise LasorError(f"3DPW {path}: {k} must be a list with one entry per person")
    n = len(data["poses"])
    if n == 0 or any(len(data[k]) != n for k in PER_PERSON):
        raise LasorError(f"3DPW {path}: {', '.join(PER_PERSON)} must list the same number (>= 1) of people")
    cam_poses = _array(path, "cam_poses", data["cam_poses"], (None, 4, 4))
    T = len(cam_poses)
    out = {"cam_poses": cam_poses, "cam_intrinsics": _array(path, "cam_intrinsics", data["cam_intrinsics"], (3, 3)),
           "poses": [_array(path, f"poses[{p}]", v, (T, 72)) for p, v in enumerate(data["poses"])],
           "trans": [_array(path, f"trans[{p}]", v, (T, 3)) for p, v in enumerate(data["trans"])],
           "poses2d": [_array(path, f"poses2d[{p}]", v, (T, 3, 18)) for p, v in enumerate(data["poses2d"])],
           "campose_valid": [_array(path, f"campose_valid[{p}]", v, (T,)) for p, v in enumerate(data["campose_valid"])],
           "betas": [_array(path, f"betas[{p}]", np.ravel(v) if isinstance(v, np.ndarray) else v, (None,))
                     for p, v in enumerate(data["betas"])],
           "genders": list(data["genders"])}
    if any(len(b) < 10 for b in out["betas"]):
        raise LasorError(f"3DPW {path}: betas must hold at least 10 values per person")
    K = out["cam_intrinsics"]
    if K[0, 0] <= 0 or K[1, 1] <= 0 or K[0, 2] <= 0 or K[1, 2] <= 0:
        raise LasorError(f"3DPW {path}: cam_intrinsics must have positive focal lengths and principal point")
    return out


def read_poses(path: str) -> np.ndarray:
    """(N,72) poses of every person of a sequence, only the frames with a valid camera pose where
    `campose_valid` gives one (T,) array per person; needs only `poses` (a list of (T,72) arrays)."""
    data = _load(path)
    if "poses" not in data:
        raise LasorError(f"3DPW {path}: missing key(s) poses")
    people = data["poses"] if isinstance(data["poses"], (list, tuple)) else [data["poses"]]
    if not people:
        raise LasorError(f"3DPW {path}: poses must list one (T, 72) array per person")
    arrays = [_array(path, f"poses[{p}]", v, (None, 72)) for p, v in enumerate(people)]
    valid = data.get("campose_valid")
    try:
        if valid is not None and len(valid) == len(arrays):
            arrays = [a[np.asarray(v, bool)] if np.shape(v) == (len(a),) else a for a, v in zip(arrays, valid)]
    except (TypeError, ValueError):
        raise LasorError(f"3DPW {path}: campose_valid must be one (T,) array per person") from None
    return np.concatenate(arrays)
