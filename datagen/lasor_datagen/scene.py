"""Object occluder geometry: primitive meshes with a fixed topology per kind, rebuilt from parameters.

object_params (17 floats, as stored in shards): centre (3, world), extents (3), rotation (3,
axis-angle), prism vertex radii (8, fraction of the half extent; unused by other kinds).
Unit shapes fill [-0.5, 0.5]^3 before scaling by the extents, so `extents` is the object's size.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.spatial.transform import Rotation

from lasor_shared.shards import OBJECT_KINDS, OBJECT_PARAMS, PRISM_SIDES

KIND_CODES = {name: i for i, name in enumerate(OBJECT_KINDS)}
_CYL_SEGMENTS = 24


def _box():
    v = np.array([[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)])
    f = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                  [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])
    return v, f


def _icosphere(subdiv=2):
    t = (1 + 5 ** 0.5) / 2
    v = [[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0], [0, -1, t], [0, 1, t], [0, -1, -t], [0, 1, -t],
         [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]]
    f = [[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9], [5, 11, 4], [11, 10, 2],
         [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8], [3, 8, 9], [4, 9, 5], [2, 4, 11],
         [6, 2, 10], [8, 6, 7], [9, 8, 1]]
    v = [np.array(p, float) / np.linalg.norm(p) for p in v]
    for _ in range(subdiv):
        cache, nf = {}, []
        for a, b, c in f:
            ids = []
            for i, j in ((a, b), (b, c), (c, a)):
                key = (min(i, j), max(i, j))
                if key not in cache:
                    m = v[i] + v[j]
                    v.append(m / np.linalg.norm(m))
                    cache[key] = len(v) - 1
                ids.append(cache[key])
            ab, bc, ca = ids
            nf += [[a, ab, ca], [b, bc, ab], [c, ca, bc], [ab, bc, ca]]
        f = nf
    return np.array(v) * 0.5, np.array(f)


def _prism_faces(n):
    """Faces of an n-gon prism: vertices 0..n-1 bottom ring, n..2n-1 top ring, 2n, 2n+1 cap centres."""
    f = []
    for i in range(n):
        j = (i + 1) % n
        f += [[i, n + j, j], [i, n + i, n + j], [2 * n, i, j], [2 * n + 1, n + j, n + i]]
    return np.array(f)                 # counter-clockwise seen from outside (back faces are culled)


def _prism_unit(radii):
    n = len(radii)
    ang = 2 * np.pi * np.arange(n) / n
    ring = np.stack([0.5 * radii * np.cos(ang), np.zeros(n), 0.5 * radii * np.sin(ang)], 1)
    bottom, top = ring + [0, -0.5, 0], ring + [0, 0.5, 0]
    return np.concatenate([bottom, top, [[0, -0.5, 0], [0, 0.5, 0]]])


@lru_cache(maxsize=None)
def unit_mesh(kind: str):
    """(vertices, faces) of a kind's unit shape; prism vertices are for radii 1 (use object_vertices)."""
    if kind in ("box", "slab"):
        return _box()
    if kind == "sphere":
        return _icosphere(2)
    if kind == "cylinder":
        return _prism_unit(np.ones(_CYL_SEGMENTS)), _prism_faces(_CYL_SEGMENTS)
    if kind == "prism":
        return _prism_unit(np.ones(PRISM_SIDES)), _prism_faces(PRISM_SIDES)
    raise ValueError(kind)


def object_vertices(kind: int | str, params: np.ndarray) -> np.ndarray:
    """World vertices (V,3) float32 of one object from its kind and 17 parameters."""
    name = OBJECT_KINDS[kind] if not isinstance(kind, str) else kind
    params = np.asarray(params, dtype=np.float64)
    centre, extents, rotvec, radii = params[:3], params[3:6], params[6:9], params[9:9 + PRISM_SIDES]
    v = _prism_unit(radii) if name == "prism" else unit_mesh(name)[0]
    world = Rotation.from_rotvec(rotvec).apply(v * extents) + centre
    return world.astype(np.float32)


def object_faces(kind: int | str) -> np.ndarray:
    name = OBJECT_KINDS[kind] if not isinstance(kind, str) else kind
    return unit_mesh(name)[1]


@lru_cache(maxsize=None)
def _unit_surface_points(kind: str, n: int = 3000):
    """Evenly spread points on the unit shape's surface (barycentric grid per face, deterministic)."""
    v, f = unit_mesh(kind) if kind != "prism" else (_prism_unit(np.ones(PRISM_SIDES)), _prism_faces(PRISM_SIDES))
    tri = v[f]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    pts = []
    for t, a in zip(tri, area):
        k = max(2, int(np.ceil(np.sqrt(n * a / area.sum() * 2))))
        for i in range(k + 1):
            for j in range(k + 1 - i):
                w = np.array([i, j, k - i - j]) / k
                pts.append(w @ t)
    return np.array(pts), f


def object_surface_points(kind: str, params: np.ndarray) -> np.ndarray:
    """Dense surface points of an object (for the coarse occlusion estimate used during placement)."""
    params = np.asarray(params, dtype=np.float64)
    pts, _ = _unit_surface_points(kind)
    if kind == "prism":
        # scale ring points radially by the interpolated vertex radius
        ang = np.arctan2(pts[:, 2], pts[:, 0]) % (2 * np.pi)
        seg = ang / (2 * np.pi / PRISM_SIDES)
        i0 = np.floor(seg).astype(int) % PRISM_SIDES
        w = seg - np.floor(seg)
        r = params[9:9 + PRISM_SIDES]
        scale = (1 - w) * r[i0] + w * r[(i0 + 1) % PRISM_SIDES]
        pts = pts * np.stack([scale, np.ones(len(pts)), scale], 1)
    return Rotation.from_rotvec(params[6:9]).apply(pts * params[3:6]) + params[:3]


def pack_object_params(centre, extents, rotvec, radii=None) -> np.ndarray:
    p = np.zeros(OBJECT_PARAMS)
    p[:3], p[3:6], p[6:9] = centre, extents, rotvec
    p[9:9 + PRISM_SIDES] = 1.0 if radii is None else radii
    return p
