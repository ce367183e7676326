"""Physical plausibility tests used while sampling scenes: penetration depths and limb self-contact.

- `BodyVolume`: inside test and penetration depth of points against a posed body mesh. The sign
  comes from the nearest vertex's area-weighted normal, the depth from the distance to that vertex's
  tangent plane (exact for a locally flat surface, an underestimate deep inside, where it is large
  anyway). Only points that can be inside look for their nearest vertex: those in the body's
  bounding box whose `VOXEL` cell is on or inside the surface (a voxel shell of the mesh, dilated by
  one cell, flood-filled from outside); points in cells the fill reaches are outside. The grid, the
  vertices bucketed by cell (exact nearest-vertex search) and each vertex normal are built on first
  need (numba kernels in `body_grid`).
- `convex_depth`: exact penetration depth of points inside a convex mesh (every object occluder
  is convex as rendered: box, slab, cylinder, sphere and prism meshes).
- `SelfContact`: a capsule body built from the model's mean shape (rest joints, and per-bone radii
  = median distance of the bone's skinned vertices to the bone); a pose is rejected when a forearm,
  hand, shin or foot passes through the torso or head, or limbs of different chains pass through
  each other (axis distance < `SLACK` × the sum of the radii).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from lasor_datagen import body_grid
from lasor_datagen.timers import stage

PENETRATION_TOL = 0.005   # m: deeper than this counts as interpenetration while placing (audit: 1 cm)
VOXEL = 0.03              # m: cells of the inside/outside grid (edges of the body mesh reach 6 cm)
SLACK = 0.75              # capsules may overlap by 25 % of their radii (soft tissue, touching)


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    tri = vertices[faces]
    fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])      # area-weighted face normals
    n = np.zeros_like(vertices, dtype=np.float64)
    for k in range(3):
        for c in range(3):
            n[:, c] += np.bincount(faces[:, k], weights=fn[:, c], minlength=len(vertices))
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


_EDGES: dict = {}
_VERTEX_FACES: dict = {}


def _edges(faces: np.ndarray) -> np.ndarray:
    """Unique edges (E,2) of a mesh topology, built once per faces array."""
    key = id(faces)
    if key not in _EDGES or _EDGES[key][0] is not faces:
        f = np.asarray(faces)
        e = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
        _EDGES[key] = (faces, np.ascontiguousarray(np.unique(e, axis=0), np.int64))
    return _EDGES[key][1]


def _vertex_faces(faces: np.ndarray, n_vertices: int):
    """Faces (int64) and vertex → face incidence of a mesh topology, built once per faces array."""
    key = (id(faces), n_vertices)
    if key not in _VERTEX_FACES or _VERTEX_FACES[key][0] is not faces:
        _VERTEX_FACES[key] = (faces, np.ascontiguousarray(faces, np.int64), *body_grid.vertex_faces(faces, n_vertices))
    return _VERTEX_FACES[key][1:]


class BodyVolume:
    """A posed body mesh for inside tests (see the module docstring)."""

    def __init__(self, vertices: np.ndarray, faces: np.ndarray):
        self.v = np.ascontiguousarray(vertices, np.float64)
        self.faces = faces
        self.lo = np.array([self.v[:, k].min() for k in range(3)])
        self.hi = np.array([self.v[:, k].max() for k in range(3)])
        self._origin = self.lo - 2 * VOXEL
        self._shape = np.floor((self.hi - self._origin) / VOXEL).astype(np.int64) + 3
        self._cells = self._buckets = self._normals = None

    def _build_cells(self):
        """Cells holding the surface (vertices, plus points along edges longer than a cell so that
        samples are ≤ one cell apart), dilated by one cell, and those the outside does not reach
        through the others."""
        self._cells = body_grid.cells(self.v, _edges(self.faces), self._origin, self._shape, VOXEL, VOXEL ** 2)

    def _normal_args(self):
        """The vertex-normal arguments of body_grid's kernels: faces, incidence, normals computed so far."""
        if self._normals is None:
            self._normals = (np.empty_like(self.v), np.zeros(len(self.v), bool))
        return (*_vertex_faces(self.faces, len(self.v)), *self._normals)

    def _normals_at(self, idx: np.ndarray) -> np.ndarray:
        """Area-weighted unit normals of the vertices `idx` (= vertex_normals(...)[idx])."""
        return body_grid.normals_at(np.asarray(idx, np.int64), self.v, *self._normal_args())

    def nearest(self, points: np.ndarray):
        """Nearest vertex (index) of each point and the point's signed distance along its normal."""
        if self._buckets is None:
            self._buckets = body_grid.bucket(self.v, self._origin, self._shape, VOXEL)
        return body_grid.nearest_signed(np.ascontiguousarray(points, np.float64), self.v, self._origin,
                                        self._shape, VOXEL, *self._buckets, *self._normal_args())

    def depth(self, points: np.ndarray) -> float:
        """Deepest penetration (m) of `points` into the body; 0 when none is inside."""
        with stage("inside_tests"):
            return self._depth(points)

    def _depth(self, points: np.ndarray) -> float:
        p = np.ascontiguousarray(points, np.float64)
        inside = body_grid.in_box(p, self.lo, self.hi)
        if not len(inside):
            return 0.0
        if self._cells is None:
            self._build_cells()
        p = body_grid.in_cells(p, inside, self._origin, VOXEL, self._cells)    # in the grid: in the box
        if not len(p):
            return 0.0
        _, s = self.nearest(p)
        return float(max(-s.min(), 0.0))


def convex_planes(vertices: np.ndarray, faces: np.ndarray):
    """Outward unit normals (F,3) and offsets (F,) of a convex mesh's face planes."""
    v = np.asarray(vertices, np.float64)
    tri = v[faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    d = np.einsum("ij,ij->i", n, tri[:, 0])
    flip = n @ v.mean(0) - d > 0                  # the centroid must lie on the inner side
    n[flip], d[flip] = -n[flip], -d[flip]
    return n, d


def convex_depth(planes, points: np.ndarray) -> float:
    """Deepest penetration (m) of points into a convex mesh given by its planes; 0 when none."""
    n, d = planes
    with stage("inside_tests"):
        s = (np.asarray(points, np.float64) @ n.T - d).max(1)
        return float(max(-s.min(), 0.0)) if len(s) else 0.0


# ---------------------------------------------------------------- self-contact (capsules)

TORSO = [(0, 3), (3, 6), (6, 9), (9, 12), (12, 15)]                  # pelvis … neck, neck–head
ARMS = [[(16, 18), (18, 20), (20, 22)], [(17, 19), (19, 21), (21, 23)]]   # upper, fore, hand (L, R)
LEGS = [[(1, 4), (4, 7), (7, 10)], [(2, 5), (5, 8), (8, 11)]]           # thigh, shin, foot (L, R)


def _pairs():
    """Bone pairs that must not pass through each other (bones meeting at a joint are left out)."""
    torso = list(range(len(TORSO)))
    bones = list(TORSO) + [b for chain in ARMS + LEGS for b in chain]
    idx = {b: i for i, b in enumerate(bones)}
    pairs = []
    for side in range(2):
        for b in ARMS[side][1:] + LEGS[side][1:]:          # forearm, hand, shin, foot vs torso/head
            pairs += [(idx[b], t) for t in torso]
        for b in ARMS[side]:                               # arm vs the other arm and both legs
            pairs += [(idx[b], idx[o]) for o in ARMS[1 - side] if side == 0]
            pairs += [(idx[b], idx[o]) for leg in LEGS for o in leg]
    pairs += [(idx[a], idx[b]) for a in LEGS[0] for b in LEGS[1] if (a, b) != ((1, 4), (2, 5))]
    return bones, np.array(sorted(set(pairs)))


def _segment_distance(p0, p1, q0, q1):
    """Distances between segments p0–p1 and q0–q1 (batched, (N,3) each)."""
    d1, d2, r = p1 - p0, q1 - q0, p0 - q0
    a, e = (d1 * d1).sum(1), (d2 * d2).sum(1)
    b, c, f = (d1 * d2).sum(1), (d1 * r).sum(1), (d2 * r).sum(1)
    den = np.maximum(a * e - b * b, 1e-12)
    s = np.clip((b * f - c * e) / den, 0, 1)
    t = np.clip((b * s + f) / np.maximum(e, 1e-12), 0, 1)
    s = np.clip((b * t - c) / np.maximum(a, 1e-12), 0, 1)
    return np.linalg.norm(p0 + d1 * s[:, None] - q0 - d2 * t[:, None], axis=1)


class SelfContact:
    """Capsule self-penetration test for poses (see the module docstring)."""

    def __init__(self, rest_joints: np.ndarray, parents: np.ndarray, vertices: np.ndarray,
                 vertex_part: np.ndarray):
        self.rest = np.asarray(rest_joints, np.float64)
        self.parents = np.asarray(parents, np.int64)
        self.offsets = self.rest - self.rest[np.maximum(self.parents, 0)]
        depth = np.zeros(len(self.parents), np.int64)
        for k, p in enumerate(self.parents):            # SMPL lists parents before children
            depth[k] = depth[p] + 1 if p >= 0 else 0
        self.levels = [np.flatnonzero(depth == lv) for lv in range(1, depth.max() + 1)]
        self.bones, self.pairs = _pairs()
        a = np.array([b[0] for b in self.bones])
        b = np.array([b[1] for b in self.bones])
        v = np.asarray(vertices, np.float64)
        radii = []
        for i, j in zip(a, b):
            pts = v[vertex_part == (j if (i, j) == (12, 15) else i)]     # the head bone: head vertices
            radii.append(np.median(_segment_distance(pts, pts, np.repeat(self.rest[i][None], len(pts), 0),
                                                     np.repeat(self.rest[j][None], len(pts), 0))))
        self.radii = np.array(radii)
        self.a, self.b = a, b
        self.limit = SLACK * (self.radii[self.pairs[:, 0]] + self.radii[self.pairs[:, 1]])

    def posed_joints(self, pose: np.ndarray) -> np.ndarray:
        """Joint positions of the mean-shape skeleton in `pose` (forward kinematics, level by level)."""
        rot = Rotation.from_rotvec(np.asarray(pose, np.float64).reshape(-1, 3)).as_matrix()
        G = rot.copy()
        J = self.rest.copy()
        for idx in self.levels:
            par = self.parents[idx]
            J[idx] = J[par] + np.einsum("kij,kj->ki", G[par], self.offsets[idx])
            G[idx] = G[par] @ rot[idx]
        return J

    def ok(self, pose: np.ndarray) -> bool:
        J = self.posed_joints(pose)
        p, q = self.pairs[:, 0], self.pairs[:, 1]
        d = _segment_distance(J[self.a[p]], J[self.b[p]], J[self.a[q]], J[self.b[q]])
        return bool(np.all(d >= self.limit))
