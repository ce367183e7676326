"""Panoramic camera framing: an orbit camera per sample that keeps the target in the image.

Scene layout (see `samplers`): the target stands on y = 0, centred on the vertical axis; the camera
orbits its bounding-box centre.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lasor_shared.camera import intrinsics, orbit_camera
from lasor_datagen.samplers import bbox


@dataclass
class Camera:
    azimuth: float
    elevation: float
    roll: float
    distance: float
    focal: float
    K: np.ndarray
    R: np.ndarray
    t: np.ndarray


def fast_project(points, K, R, t):
    """Pixel coordinates and depth in float32 (for placement estimates only; labels use
    lasor_shared.camera.project in float64)."""
    P = (K @ np.concatenate([R, t[:, None]], 1)).astype(np.float32)
    x = np.asarray(points, np.float32) @ P[:, :3].T + P[:, 3]
    z = x[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        return x[:, :2] / z[:, None], z


def _bbox(uv):
    return uv.min(0), uv.max(0)


def frame_camera(rng, cam_cfg, image_size: int, azimuth: float, vertices: np.ndarray) -> Camera:
    """Orbit camera at `azimuth` with sampled elevation/roll/distance/focal that keeps the body framed.

    The distance grows until the body's projection fits inside the margin; the image is then shifted
    (camera translated in its own plane, rotation unchanged) to a random position inside the margin,
    or, with `truncation_prob`, up to `max_truncation` of the body's box beyond the image edge.
    """
    W = image_size
    el = np.deg2rad(rng.uniform(*cam_cfg.elevation_deg))
    roll = np.deg2rad(rng.uniform(*cam_cfg.roll_deg))
    dist = rng.uniform(*cam_cfg.distance)
    focal = rng.uniform(*cam_cfg.focal) * W
    truncate = rng.uniform() < cam_cfg.truncation_prob
    u_shift, v_shift, side = rng.uniform(size=3)
    K = intrinsics(focal, W, W)
    lo, hi = bbox(vertices)
    centre = (lo + hi) / 2
    pts = vertices[::7]
    avail = (1 - 2 * cam_cfg.margin) * W
    for _ in range(6):
        R, t = orbit_camera(azimuth, el, roll, dist, target=centre)
        uv, z = fast_project(pts, K, R, t)
        if z.min() <= 0.05:
            dist *= 1.5
            continue
        a, b = _bbox(uv)
        s = max((b - a).max() / avail, 0.0)
        if s <= 1.0:
            break
        dist *= s * 1.02
    R, t = orbit_camera(azimuth, el, roll, dist, target=centre)
    uv, z = fast_project(pts, K, R, t)
    a, b = _bbox(uv)
    m = cam_cfg.margin * W
    lo_s, hi_s = m - a, (W - m) - b                 # allowed pixel shifts keeping the box inside
    lo_s, hi_s = np.minimum(lo_s, hi_s), np.maximum(lo_s, hi_s)
    if truncate:
        extra = cam_cfg.max_truncation * (b - a)
        axis = int(side * 4)                       # which edge: left, right, top, bottom
        if axis % 2 == 0:
            lo_s[axis // 2] -= extra[axis // 2]
        else:
            hi_s[axis // 2] += extra[axis // 2]
    shift = lo_s + np.array([u_shift, v_shift]) * (hi_s - lo_s)
    zc = (R @ centre + t)[2]
    t = t + np.array([shift[0] * zc / focal, shift[1] * zc / focal, 0.0])
    return Camera(azimuth, el, roll, dist, focal, K, R, t)
