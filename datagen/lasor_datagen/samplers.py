"""Samplers: shapes, genders, panoramic cameras with framing, and occluder placement.

Scene layout: every body stands on the ground plane y = 0 (its lowest vertex), the target centred
on the vertical axis (x = z = 0). The camera orbits the target's bounding-box centre.

Occluders are placed so that the target's hidden share approaches a drawn goal: each occluder
starts on the line of sight (people: standing on the ground between the camera and the target;
objects: in front of a random body part) and slides sideways until a coarse estimate of the
covered share (point splats of the meshes on a 64×64 grid over the image) reaches its goal
(bisection). The exact visible fraction is measured afterwards from the rendered masks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation

from lasor_shared.camera import intrinsics, orbit_camera, project
from lasor_shared.keypoints import SMPL24_NAMES
from lasor_datagen.scene import KIND_CODES, object_surface_points, pack_object_params

COARSE = 64
GENDER_ORDER = ("neutral", "male", "female")


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


@dataclass
class Occluders:
    persons: list = field(default_factory=list)   # dicts: pose, betas, gender, transl, role, vertices
    objects: list = field(default_factory=list)   # (kind code, params (17,))


def bbox(points):
    """(min, max) corners of (N,3) points (column-wise reductions: ~8× faster than .min(0))."""
    lo = np.array([points[:, k].min() for k in range(3)], np.float64)
    hi = np.array([points[:, k].max() for k in range(3)], np.float64)
    return lo, hi


def fast_project(points, K, R, t):
    """Pixel coordinates and depth in float32 (for placement estimates only; labels use
    lasor_shared.camera.project in float64)."""
    P = (K @ np.concatenate([R, t[:, None]], 1)).astype(np.float32)
    x = np.asarray(points, np.float32) @ P[:, :3].T + P[:, 3]
    z = x[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        return x[:, :2] / z[:, None], z


def stratified_azimuths(rng: np.random.Generator, n: int) -> np.ndarray:
    """n azimuths covering [0, 2π): one per equal stratum, in random order."""
    return (rng.permutation(n) + rng.uniform(size=n)) / n * 2 * np.pi


def sample_betas(rng, std: float) -> np.ndarray:
    return rng.normal(0.0, std, 10)


def sample_gender(rng, weights: dict) -> str:
    names = [g for g in GENDER_ORDER if weights.get(g, 0) > 0]
    w = np.array([weights[g] for g in names], float)
    return names[int(rng.choice(len(names), p=w / w.sum()))] if len(names) > 1 else names[0]


def ground_transl(vertices: np.ndarray, at=(0.0, 0.0)) -> np.ndarray:
    """Translation putting a body's lowest vertex on y = 0 and its bbox centre (x, z) at `at`."""
    lo, hi = bbox(vertices)
    c = (lo + hi) / 2
    return np.array([at[0] - c[0], -lo[1], at[1] - c[2]])


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


# ---------------------------------------------------------------- coarse occlusion estimate

def _splat(uv, image_size, grid=COARSE):
    """Cells of a grid×grid raster over the image hit by projected points (no dilation: point sets
    are dense enough, and dilation would inflate thin limbs)."""
    cells = (uv * (grid / image_size) + grid).astype(np.int64) - grid      # floor for uv > -image_size
    cx, cy = cells[:, 0], cells[:, 1]
    ok = (cx >= 0) & (cx < grid) & (cy >= 0) & (cy < grid)
    return np.bincount(cy[ok] * grid + cx[ok], minlength=grid * grid).reshape(grid, grid) > 0


def _shifted(mask, dx, dy):
    out = np.zeros_like(mask)
    h, w = mask.shape
    dx, dy = int(round(dx)), int(round(dy))
    if abs(dx) >= w or abs(dy) >= h:
        return out
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = mask[max(-dy, 0):h + min(-dy, 0),
                                                                     max(-dx, 0):w + min(-dx, 0)]
    return out


def _slide(target, union, occ_mask, cells_per_m, goal):
    """Offset (m) along the slide direction whose coverage of `target` (with `union`) is ≈ goal."""
    n = target.sum()
    if n == 0:
        return 0.0

    def cover(s):
        m = union | _shifted(occ_mask, s * cells_per_m[0], s * cells_per_m[1])
        return (target & m).sum() / n

    if cover(0.0) <= goal:
        return 0.0
    lo, hi = 0.0, 0.5
    while cover(hi) > goal and hi < 20:
        lo, hi = hi, hi * 2
    for _ in range(10):
        mid = (lo + hi) / 2
        if cover(mid) > goal:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


class OcclusionPlanner:
    """Places occluders around one framed target (see the module docstring)."""

    def __init__(self, cfg, image_size, cam: Camera, target_vertices, target_joints):
        self.cfg, self.W, self.cam = cfg, image_size, cam
        self.cam_pos = -cam.R.T @ cam.t
        uv, _ = fast_project(target_vertices, cam.K, cam.R, cam.t)
        self.target = _splat(uv, image_size)
        self.union = np.zeros_like(self.target)
        lo, hi = bbox(target_vertices)
        self.centre = (lo + hi) / 2
        self.height = float(max(hi[1] - lo[1], 0.6 * (hi - lo).max()))
        self.joints = target_joints

    def covered(self) -> float:
        n = self.target.sum()
        return float((self.target & self.union).sum() / n) if n else 0.0

    def _cells_per_m(self, point, direction):
        uv, _ = project(np.stack([point, point + direction]), self.cam.K, self.cam.R, self.cam.t)
        return (uv[1] - uv[0]) * (COARSE / self.W)

    def _horizontal(self):
        d = self.centre - self.cam_pos
        dh = np.array([d[0], 0.0, d[2]])
        norm = np.linalg.norm(dh)
        dh = dh / norm if norm > 1e-6 else np.array([0.0, 0.0, -1.0])
        side = np.cross([0.0, 1.0, 0.0], dh)
        return dh, side / np.linalg.norm(side), float(norm)

    def place_person(self, rng, vertices0, goal, front=True):
        """Ground translation for a person (vertices at transl 0) in front of (or behind) the target."""
        dh, side, dist_h = self._horizontal()
        pc = self.cfg.person
        ground_c = np.array([self.centre[0], 0.0, self.centre[2]])
        sign = 1.0 if rng.uniform() < 0.5 else -1.0
        if not front:
            q = ground_c + dh * rng.uniform(0.8, 2.0) + side * rng.uniform(-1.2, 1.2)
            return ground_transl(vertices0, (q[0], q[2]))
        max_gap = max(dist_h - 0.9, 0.2)
        gap = min(rng.uniform(*pc.gap), max_gap)
        best = None
        lo0, hi0 = bbox(vertices0)
        for attempt in range(4):                   # step closer to the camera (larger) if needed
            q = ground_c - dh * gap
            tr = ground_transl(vertices0, (q[0], q[2]))
            uv, z = fast_project(vertices0 + tr, self.cam.K, self.cam.R, self.cam.t)
            mask = _splat(uv[z > 0.05], self.W)
            c0 = self._cover(mask)
            if best is None or c0 > best[0]:
                mid = (lo0 + hi0) / 2 + tr
                best = (c0, tr, mask, sign * self._cells_per_m(mid, side))
            if c0 >= goal or gap >= max_gap:
                break
            gap = min(gap + 0.5 * (max_gap - gap) + 0.2, max_gap)
        _, tr, mask, cpm = best
        s = _slide(self.target, self.union, mask, cpm, goal)
        self.union |= _shifted(mask, *(s * cpm))
        return tr + sign * s * side

    def _cover(self, mask):
        n = self.target.sum()
        return float((self.target & (self.union | mask)).sum() / n) if n else 0.0

    def place_object(self, rng, kind: str, goal):
        """17 object parameters: sized relative to the target, in front of a random body part."""
        oc = self.cfg.object
        H = self.height
        ext = rng.uniform(*oc.size, size=3) * H
        radii = rng.uniform(0.5, 1.0, 8)
        if kind == "slab":
            k = int(rng.integers(3))
            ext *= 1.4
            ext[k] = rng.uniform(0.02, 0.06)
        elif kind == "sphere":
            ext[:] = ext[0]
        elif kind == "cylinder":
            ext[2] = ext[0]
            ext[1] *= 1.5
        rotvec = Rotation.random(random_state=rng).as_rotvec()
        j = int(rng.integers(len(SMPL24_NAMES)))
        part = self.joints[j]
        ray = part - self.cam_pos
        dist = np.linalg.norm(ray)
        ray /= dist
        gap = min(rng.uniform(*oc.gap), max(dist - 0.5 * np.linalg.norm(ext) - 0.3, 0.05))
        centre = part - ray * gap
        theta = rng.uniform(0, 2 * np.pi)
        direction = np.cos(theta) * self.cam.R[0] + np.sin(theta) * self.cam.R[1]
        for attempt in range(4):                   # grow (≤ 2.5×) until it can hide the goal
            params = pack_object_params(centre, ext, rotvec, radii)
            pts = object_surface_points(kind, params)
            uv, z = fast_project(pts, self.cam.K, self.cam.R, self.cam.t)
            mask = _splat(uv[z > 0.05], self.W)
            c0 = self._cover(mask)
            if c0 >= goal or attempt == 3:
                break
            ext = ext * float(np.clip(np.sqrt(goal / max(c0, 0.02)), 1.1, 1.36))
        cpm = self._cells_per_m(centre, direction)
        s = _slide(self.target, self.union, mask, cpm, goal)
        params[:3] = centre + s * direction
        self.union |= _shifted(mask, *(s * cpm))
        return KIND_CODES[kind], params


def plan_occlusion(rng, occ_cfg):
    """Per-sample occlusion plan: counts, the hidden-share goal, and whether a background person joins."""
    n_person = n_object = 0
    goal = 0.0
    if rng.uniform() >= occ_cfg.unoccluded_share:
        usable = {"person": occ_cfg.person.max_count > 0, "object": occ_cfg.object.max_count > 0}
        usable["both"] = usable["person"] and usable["object"]
        kinds = [k for k in ("person", "object", "both") if usable[k] and occ_cfg.type_weights.get(k, 0) > 0]
        w = np.array([occ_cfg.type_weights[k] for k in kinds], float)
        kind = kinds[int(rng.choice(len(kinds), p=w / w.sum()))]
        if kind in ("person", "both"):
            n_person = int(rng.integers(1, occ_cfg.person.max_count + 1))
        if kind in ("object", "both"):
            n_object = int(rng.integers(1, occ_cfg.object.max_count + 1))
        goal = float(rng.uniform(*occ_cfg.occluded_fraction))
    background = bool(rng.uniform() < occ_cfg.person.background_prob)
    return n_person, n_object, goal, background


def heading(pose: np.ndarray, angle: float) -> np.ndarray:
    """The pose turned by `angle` about the vertical axis."""
    p = pose.copy()
    p[:3] = (Rotation.from_rotvec([0.0, angle, 0.0]) * Rotation.from_rotvec(pose[:3])).as_rotvec()
    return p
