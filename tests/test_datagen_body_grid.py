"""BodyVolume's numba kernels (`lasor_datagen.body_grid`) make the same decisions, bit for bit, as the
scipy algorithm they replaced (kept here as the reference: ndimage.label flood fill, cKDTree nearest
vertex, sparse-incidence vertex normals), on posed bodies of the embedded body model."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy import ndimage
from scipy.spatial import cKDTree

from lasor_datagen import body_grid
from lasor_datagen.contact import VOXEL, BodyVolume


# ---------------------------------------------------------------- the reference (the pre-numba code)

def ref_dilate(a):
    for ax in range(3):
        b = a.copy()
        lo, hi = [slice(None)] * 3, [slice(None)] * 3
        lo[ax], hi[ax] = slice(None, -1), slice(1, None)
        b[tuple(lo)] |= a[tuple(hi)]
        b[tuple(hi)] |= a[tuple(lo)]
        a = b
    return a


def ref_enclosed(blocked):
    regions, _ = ndimage.label(~blocked)
    return regions != regions[0, 0, 0]


def ref_cells(v, faces):
    lo, hi = v.min(0), v.max(0)
    origin = lo - 2 * VOXEL
    shape = np.floor((hi - origin) / VOXEL).astype(int) + 3
    e = np.unique(np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1), axis=0)
    a, d = v[e[:, 0]], v[e[:, 1]] - v[e[:, 0]]
    length2 = np.einsum("ij,ij->i", d, d)
    long = length2 > VOXEL ** 2
    surface = [v]
    if long.any():
        k = int(np.ceil(np.sqrt(length2.max()) / VOXEL))
        surface += [a[long] + d[long] * (i / k) for i in range(1, k)]
    surface = np.concatenate(surface)
    shell = np.zeros(shape, bool)
    shell[tuple(np.floor((surface - origin) / VOXEL).astype(int).T)] = True
    return ref_enclosed(ref_dilate(shell))


def ref_normals_at(v, faces, idx):
    u, inverse = np.unique(idx, return_inverse=True)
    inc = sp.csr_matrix((np.ones(faces.size), (faces.ravel(), np.repeat(np.arange(len(faces)), 3))),
                        shape=(len(v), len(faces)))
    rows = inc[u]
    fn = np.zeros((len(faces), 3))
    f = np.unique(rows.indices)
    tri = v[faces[f]]
    fn[f] = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n = rows @ fn
    return (n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12))[inverse]


def ref_nearest_signed(v, faces, p):
    _, idx = cKDTree(v).query(p)
    return idx, np.einsum("ij,ij->i", p - v[idx], ref_normals_at(v, faces, idx))


# ---------------------------------------------------------------- posed bodies and points

@pytest.fixture(scope="module")
def bodies():
    """Library poses (noised) and a few wild random ones, random shapes, float32 vertices as the worker's."""
    from lasor_datagen.pose_library import build_library
    from lasor_shared.body_model import load_body_model

    m = load_body_model(None)
    rng = np.random.default_rng(25)
    lib = build_library()
    poses = [lib[i][2] + rng.normal(0, 0.1, 72) for i in rng.choice(len(lib), 14, replace=False)]
    poses += [rng.normal(0, 0.5, 72) for _ in range(2)]
    with torch.no_grad():
        out = m.pose(torch.tensor(np.array(poses), dtype=torch.float32),
                     torch.tensor(rng.normal(0, 1.5, (len(poses), 10)), dtype=torch.float32))
    return np.asarray(m.faces, np.int64), out.vertices.numpy()


def probe_points(v, rng):
    """Uniform in the bounding box, just off the surface on both sides, and midpoints of random vertex
    pairs (inside limbs and torso, armpits, between the legs)."""
    lo, hi = v.min(0), v.max(0)
    box = rng.uniform(lo, hi, (1500, 3))
    k = rng.integers(0, len(v), 1000)
    near = v[k] + rng.normal(0, 0.015, (1000, 3))
    a, b = rng.integers(0, len(v), (2, 1500))
    mid = v[a] + rng.uniform(0, 1, (1500, 1)) * (v[b] - v[a])
    return np.concatenate([box, near, mid])


# ---------------------------------------------------------------- the comparisons

def test_enclosed_equals_ndimage_label_on_random_grids():
    rng = np.random.default_rng(0)
    for density in (0.0, 0.1, 0.3, 0.5, 0.7):
        for _ in range(8):
            blocked = rng.random(tuple(rng.integers(1, 14, 3))) < density
            got = blocked.copy()
            body_grid.enclosed(got)
            assert np.array_equal(got, ref_enclosed(blocked))
    blocked = np.zeros((5, 6, 7), bool)
    blocked[0, 0, 0] = True                                     # a blocked corner: every free cell
    got = blocked.copy()
    body_grid.enclosed(got)
    assert np.array_equal(got, ref_enclosed(blocked)) and got.sum() == blocked.size - 1
    shell = np.zeros((9, 9, 9), bool)
    shell[2:7, 2:7, 2:7] = True
    shell[3:6, 3:6, 3:6] = False                                # a closed box with a hollow
    got = shell.copy()
    body_grid.enclosed(got)
    assert got[4, 4, 4] and got.sum() == 125


def test_cells_equal_the_reference_on_posed_bodies(bodies):
    faces, verts = bodies
    for v in verts:
        vol = BodyVolume(v, faces)
        vol._build_cells()
        ref = ref_cells(vol.v, faces)
        assert np.array_equal(vol._cells, ref)
        assert 0 < ref.sum() < ref.size


def test_nearest_vertex_and_signed_distance_equal_the_reference(bodies):
    faces, verts = bodies
    rng = np.random.default_rng(1)
    n_inside = 0
    for v in verts:
        vol = BodyVolume(v, faces)
        p = probe_points(vol.v, rng)
        idx, s = vol.nearest(p)
        ref_idx, ref_s = ref_nearest_signed(vol.v, faces, p)
        assert np.array_equal(idx, ref_idx)
        assert np.array_equal(s, ref_s)                         # the same bits, not only the same signs
        n_inside += int((s < 0).sum())
        some = rng.integers(0, len(v), 300)
        assert np.array_equal(vol._normals_at(some), ref_normals_at(vol.v, faces, some))
    assert n_inside > 1000                                      # the probes reach inside the bodies


def test_depth_equals_the_reference(bodies):
    faces, verts = bodies
    rng = np.random.default_rng(2)
    for v in verts:
        vol = BodyVolume(v, faces)
        v64 = np.asarray(v, np.float64)
        cells = ref_cells(v64, faces)
        origin = v64.min(0) - 2 * VOXEL
        for _ in range(4):
            p = probe_points(v64, rng)[rng.integers(0, 4000, 300)] + rng.normal(0, 0.05, 3)
            keep = np.all((p > v64.min(0)) & (p < v64.max(0)), axis=1)
            q = p[keep]
            ijk = np.floor((q - origin) / VOXEL).astype(int)
            q = q[cells[ijk[:, 0], ijk[:, 1], ijk[:, 2]]]
            want = float(max(-ref_nearest_signed(v64, faces, q)[1].min(), 0.0)) if len(q) else 0.0
            assert vol.depth(p) == want
