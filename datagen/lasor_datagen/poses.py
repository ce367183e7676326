"""Pose sources: the embedded authored pose library, AMASS / 3DPW / plain-array files, mirroring.

All poses are SMPL (72,) axis-angle in lasor's body frame (y up, facing +z). External poses are
canonicalised: their world "up" (found from the data: the axis the bodies' own up vector points
along on average, or given as `up_axis`) is rotated onto +y and the heading is removed, so the
camera azimuth alone decides the viewpoint (azimuth 0 = in front of the body).

The library is authored in `pose_library` (per-joint angles in degrees, by activity group); poses of
the same group (standing, walking, sitting on a chair, lying on the back, …) are blended with per-joint slerp, then per-joint Gaussian noise
is added and clipped to anatomical joint limits (`JOINT_LIMITS`, boxes on the axis-angle
components: approximate for large combined rotations; the authored value itself is never clipped,
only noise that would leave the box).
"""

from __future__ import annotations

import glob
import os

import numpy as np
from scipy.spatial.transform import Rotation

from lasor_datagen.pose_library import J, build_library
from lasor_shared import pw3d
from lasor_shared.errors import LasorError
from lasor_shared.keypoints import SMPL24_FLIP

# Left-side / central limits (radians) per axis-angle component (x, y, z); right side mirrored.
_LIMITS_LEFT = {
    "left_hip": ((-2.2, 0.7), (-0.8, 0.8), (-0.5, 1.2)),
    "left_knee": ((-0.05, 2.6), (-0.3, 0.3), (-0.15, 0.15)),
    "left_ankle": ((-0.7, 0.8), (-0.4, 0.4), (-0.4, 0.4)),
    "left_foot": ((-0.5, 0.5), (-0.2, 0.2), (-0.2, 0.2)),
    "left_collar": ((-0.3, 0.3), (-0.4, 0.4), (-0.3, 0.5)),
    "left_shoulder": ((-1.6, 1.6), (-1.8, 1.2), (-1.7, 1.5)),
    "left_elbow": ((-1.0, 1.0), (-2.6, 0.05), (-0.2, 0.2)),
    "left_wrist": ((-0.8, 0.8), (-0.6, 0.6), (-1.0, 1.0)),
    "left_hand": ((-0.4, 0.4), (-0.4, 0.4), (-0.4, 0.4)),
    "spine1": ((-0.5, 0.9), (-0.5, 0.5), (-0.4, 0.4)),
    "spine2": ((-0.5, 0.9), (-0.5, 0.5), (-0.4, 0.4)),
    "spine3": ((-0.5, 0.9), (-0.5, 0.5), (-0.4, 0.4)),
    "neck": ((-0.6, 0.8), (-0.9, 0.9), (-0.5, 0.5)),
    "head": ((-0.5, 0.6), (-0.6, 0.6), (-0.4, 0.4)),
}


def _joint_limits():
    lo, hi = np.full((24, 3), -np.pi), np.full((24, 3), np.pi)
    for name, box in _LIMITS_LEFT.items():
        b = np.array(box)
        lo[J[name]], hi[J[name]] = b[:, 0], b[:, 1]
        if name.startswith("left_"):
            r = J["right_" + name[5:]]
            lo[r] = [b[0, 0], -b[1, 1], -b[2, 1]]
            hi[r] = [b[0, 1], -b[1, 0], -b[2, 0]]
    return lo.reshape(72), hi.reshape(72)


JOINT_LIMITS = _joint_limits()


def mirror_pose(pose: np.ndarray) -> np.ndarray:
    """Left/right mirror (x → −x) of (..., 72) poses: swap joint twins, negate y and z components."""
    p = np.asarray(pose).reshape(*np.shape(pose)[:-1], 24, 3)[..., list(SMPL24_FLIP), :].copy()
    p[..., 1:] *= -1
    return p.reshape(np.shape(pose))


# ---------------------------------------------------------------- the authored library

LIBRARY = build_library()
LIBRARY_NAMES = tuple(name for name, _, _ in LIBRARY)
LIBRARY_POSES = np.stack([p for _, _, p in LIBRARY]).astype(np.float64)
LIBRARY_GROUPS = tuple(g for _, g, _ in LIBRARY)


def slerp_pose(a: np.ndarray, b: np.ndarray, alpha: float) -> np.ndarray:
    """Per-joint spherical interpolation of two (72,) poses."""
    ra, rb = Rotation.from_rotvec(a.reshape(24, 3)), Rotation.from_rotvec(b.reshape(24, 3))
    delta = (ra.inv() * rb).as_rotvec()
    return (ra * Rotation.from_rotvec(alpha * delta)).as_rotvec().reshape(72)


def sample_library_pose(rng: np.random.Generator, interpolate: bool, noise: float) -> np.ndarray:
    """One library pose: a blend of two poses of one group, plus clipped per-joint noise (radians)."""
    i = int(rng.integers(len(LIBRARY)))
    pose = LIBRARY_POSES[i]
    if interpolate:
        same = [k for k, g in enumerate(LIBRARY_GROUPS) if g == LIBRARY_GROUPS[i]]
        k = same[int(rng.integers(len(same)))]
        pose = slerp_pose(pose, LIBRARY_POSES[k], float(rng.uniform()))
    return add_joint_noise(rng, pose, noise)


def add_joint_noise(rng, pose, noise):
    """Gaussian noise on the body joints (root tilted by half of it), clipped to the joint limits."""
    eps = rng.normal(0.0, noise, 72)
    eps[:3] *= 0.5
    noisy = pose + eps
    lo, hi = np.minimum(JOINT_LIMITS[0], pose), np.maximum(JOINT_LIMITS[1], pose)
    noisy[3:] = np.clip(noisy[3:], lo[3:], hi[3:])
    return noisy


# ---------------------------------------------------------------- external pose files

def _canonical_root(orient: np.ndarray, up: np.ndarray) -> np.ndarray:
    """(T,3) root axis-angle: rotate world `up` onto +y, then remove the heading about y."""
    up = up / np.linalg.norm(up)
    C, _ = Rotation.align_vectors([[0.0, 1.0, 0.0]], [up])
    R = C * Rotation.from_rotvec(orient)
    fwd = R.apply([0.0, 0.0, 1.0])
    alt = R.apply([0.0, 1.0, 0.0])
    horiz = np.where((np.hypot(fwd[:, 0], fwd[:, 2]) > 0.3)[:, None], fwd, alt)
    yaw = np.arctan2(horiz[:, 0], horiz[:, 2])
    return (Rotation.from_rotvec(-yaw[:, None] * np.array([0.0, 1.0, 0.0])) * R).as_rotvec()


def detect_up_axis(orient: np.ndarray) -> np.ndarray:
    """The signed world axis the bodies' own up vectors (R·ŷ) point along on average."""
    mean_up = Rotation.from_rotvec(orient).apply([0.0, 1.0, 0.0]).mean(0)
    k = int(np.argmax(np.abs(mean_up)))
    axis = np.zeros(3)
    axis[k] = np.sign(mean_up[k]) or 1.0
    return axis


_UP = {"y": np.array([0.0, 1.0, 0.0]), "-y": np.array([0.0, -1.0, 0.0]), "z": np.array([0.0, 0.0, 1.0])}


def _read_npz_poses(path, key_hint):
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = list(z.files)
            key = "poses" if "poses" in keys else key_hint if key_hint in keys else keys[0] if len(keys) == 1 else None
            if key is None:
                raise LasorError(f"{path}: no 'poses' array (found {', '.join(keys)})")
            return np.asarray(z[key])
    except LasorError:
        raise
    except (OSError, ValueError, EOFError) as e:
        raise LasorError(f"{path}: unreadable pose file ({e})") from None


MAX_POSE_RAD = 100.0  # larger axis-angle values come from no real source (and lose float32 precision)


def load_pose_file(kind: str, path: str, stride: int = 1, up_axis: str = "auto") -> np.ndarray:
    """(N,72) canonicalised poses of one source file (or folder of .npz for AMASS); LasorError names it."""
    if not os.path.exists(path):
        raise LasorError(f"{path}: pose file not found")
    if kind == "amass" and os.path.isdir(path):
        files = sorted(glob.glob(os.path.join(path, "**", "*.npz"), recursive=True))
        if not files:
            raise LasorError(f"{path}: no .npz files in the folder")
        return np.concatenate([load_pose_file(kind, f, stride, up_axis) for f in files])
    if os.path.isdir(path):
        raise LasorError(f"{path}: expected a file, got a folder")
    if kind == "3dpw":
        poses = pw3d.read_poses(path)
    elif path.endswith(".npy"):
        try:
            poses = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as e:
            raise LasorError(f"{path}: unreadable pose file ({e})") from None
    else:
        poses = _read_npz_poses(path, "poses")
    poses = np.asarray(poses)
    if poses.ndim != 2 or not np.issubdtype(poses.dtype, np.number):
        raise LasorError(f"{path}: poses must be a 2-D numeric array (N, 72), got shape {poses.shape}")
    width = poses.shape[1]
    if kind == "amass":
        if width < 66:
            raise LasorError(f"{path}: pose width {width}, AMASS poses need >= 66 columns (root + 21 joints)")
        poses = np.concatenate([poses[:, :66], np.zeros((len(poses), 6))], 1) if width != 72 else poses
    elif width != 72:
        raise LasorError(f"{path}: pose width {width}, expected 72 (SMPL axis-angle: 24 joints x 3)")
    poses = poses[::stride].astype(np.float64)
    if len(poses) == 0:
        raise LasorError(f"{path}: no poses")
    if not np.all(np.isfinite(poses)):
        raise LasorError(f"{path}: poses contain NaN or infinite values")
    if np.abs(poses).max() > MAX_POSE_RAD:
        raise LasorError(f"{path}: pose values must lie within ±{MAX_POSE_RAD} rad (axis-angle), "
                         f"got {np.abs(poses).max():.3g}")
    up = detect_up_axis(poses[:, :3]) if up_axis == "auto" else _UP[up_axis]
    poses[:, :3] = _canonical_root(poses[:, :3], up)
    return poses


class PoseSampler:
    """Draws target/occluder poses from the recipe's weighted sources (files loaded once)."""

    def __init__(self, poses_cfg):
        self.cfg = poses_cfg
        self.banks = [None if s.kind == "library" else load_pose_file(s.kind, s.path, s.stride, s.up_axis)
                      for s in poses_cfg.sources]
        w = np.array([s.weight for s in poses_cfg.sources], dtype=np.float64)
        self.weights = w / w.sum()

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        k = int(rng.choice(len(self.banks), p=self.weights)) if len(self.banks) > 1 else 0
        noise = np.deg2rad(self.cfg.noise_deg)
        if self.banks[k] is None:
            pose = sample_library_pose(rng, self.cfg.interpolate, noise)
        else:
            bank = self.banks[k]
            pose = bank[int(rng.integers(len(bank)))].copy()
        if rng.uniform() < self.cfg.mirror_prob:
            pose = mirror_pose(pose)
        return pose
