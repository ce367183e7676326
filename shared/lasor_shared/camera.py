"""Cameras and projection in lasor's one convention (OpenCV): x right, y down, z forward.

Intrinsics K (3×3); extrinsics R (3×3), t (3) map body/world points p to camera space R·p + t.
Pixel (row r, col c) covers [c, c+1) × [r, r+1); its centre is (c + ½, r + ½).
Works on numpy arrays and torch tensors alike (batched with leading dimensions).
"""

import numpy as np


def intrinsics(focal: float, width: int, height: int) -> np.ndarray:
    """K for a square-pixel camera whose principal point is the image centre."""
    return np.array([[focal, 0.0, width / 2.0], [0.0, focal, height / 2.0], [0.0, 0.0, 1.0]])


def to_camera(points, R, t):
    """(..., N, 3) world points → camera space, with R (..., 3, 3) and t (..., 3)."""
    return points @ R.swapaxes(-1, -2) + t[..., None, :]


def project(points, K, R, t):
    """(..., N, 3) world points → ((..., N, 2) pixel coordinates, (..., N) camera depth z)."""
    cam = to_camera(points, R, t)
    z = cam[..., 2]
    xy = cam[..., :2] / z[..., None]
    uv = xy @ K[..., :2, :2].swapaxes(-1, -2) + K[..., None, :2, 2]
    return uv, z


def orbit_camera(azimuth: float, elevation: float, roll: float, distance: float, target=(0.0, 0.0, 0.0)):
    """(R, t) of a camera on a ring around the body's vertical (y) axis, looking at `target`.

    azimuth 0 puts the camera in front of the body (on +z, the way SMPL bodies face), π/2 on the
    body's left (+x); elevation > 0 raises the camera and looks down; roll turns the image
    clockwise about the optical axis. Angles in radians, distance in metres.
    """
    target = np.asarray(target, dtype=np.float64)
    ce, se = np.cos(elevation), np.sin(elevation)
    position = target + distance * np.array([np.sin(azimuth) * ce, se, np.cos(azimuth) * ce])
    forward = target - position
    forward /= np.linalg.norm(forward)
    down = np.array([0.0, -1.0, 0.0])
    down = down - forward * (down @ forward)
    down /= np.linalg.norm(down)
    right = np.cross(down, forward)
    R = np.stack([right, down, forward])
    cr, sr = np.cos(roll), np.sin(roll)
    R = np.array([[cr, -sr, 0.0], [sr, cr, 0.0], [0.0, 0.0, 1.0]]) @ R
    return R, -R @ position


def opengl_camera_pose(R, t) -> np.ndarray:
    """The 4×4 camera-to-world pose pyrender/OpenGL wants for the OpenCV extrinsics (R, t).

    The one place where OpenCV (y down, z forward) turns into OpenGL (y up, z backward).
    """
    world_to_cv = np.eye(4)
    world_to_cv[:3, :3] = np.asarray(R, dtype=np.float64)
    world_to_cv[:3, 3] = np.asarray(t, dtype=np.float64)
    return np.linalg.inv(np.diag([1.0, -1.0, -1.0, 1.0]) @ world_to_cv)
