"""Samplers of a sample's parameters: shapes, genders, azimuths, headings, occlusion plans, and the
scene layout every body shares.

Scene layout: every body stands on the ground plane y = 0 (its lowest vertex), the target centred
on the vertical axis (x = z = 0). Camera framing lives in `framing`, occluder placement in `occlusion`.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from lasor_shared.shards import GENDERS


def bbox(points):
    """(min, max) corners of (N,3) points (column-wise reductions: ~8× faster than .min(0))."""
    lo = np.array([points[:, k].min() for k in range(3)], np.float64)
    hi = np.array([points[:, k].max() for k in range(3)], np.float64)
    return lo, hi


def stratified_azimuths(rng: np.random.Generator, n: int, range_deg=(0.0, 360.0)) -> np.ndarray:
    """n azimuths (radians, in [0, 2π)) covering `range_deg`: one per equal stratum, in random order."""
    lo, hi = np.deg2rad(range_deg[0]), np.deg2rad(range_deg[1])
    a = (rng.permutation(n) + rng.uniform(size=n)) / n
    return np.mod(lo + a * (hi - lo), 2 * np.pi)


def sample_betas(rng, std: float) -> np.ndarray:
    return rng.normal(0.0, std, 10)


def sample_gender(rng, weights: dict) -> str:
    names = [g for g in GENDERS if weights.get(g, 0) > 0]
    w = np.array([weights[g] for g in names], float)
    return names[int(rng.choice(len(names), p=w / w.sum()))] if len(names) > 1 else names[0]


def ground_transl(vertices: np.ndarray, at=(0.0, 0.0)) -> np.ndarray:
    """Translation putting a body's lowest vertex on y = 0 and its bbox centre (x, z) at `at`."""
    return ground_transl_box(*bbox(vertices), at)


def ground_transl_box(lo, hi, at=(0.0, 0.0)) -> np.ndarray:
    """ground_transl of a body whose bounding box is (lo, hi)."""
    c = (lo + hi) / 2
    return np.array([at[0] - c[0], -lo[1], at[1] - c[2]])


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
