"""Meshes, cameras and fits for the neural renderer's tests, benchmark and GPU check (test-only code).

``body_mesh()`` is the project's embedded SMPL-format body (lasor_shared.body_model); ``body_like_mesh``
a body-like mesh of ellipsoids built here; ``cube_mesh`` a unit cube. Importable from tests/ (pytest
puts this folder on the path) and from bench/ and scripts/ via ``sys.path.insert(0, <repo>/tests)``.
"""

from __future__ import annotations

import os

import numpy as np


def _icosphere(subdivisions: int):
    """Unit icosphere (vertices, faces) with outward CCW faces, numpy only."""
    t = (1.0 + 5.0**0.5) / 2.0
    v = [[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0], [0, -1, t], [0, 1, t], [0, -1, -t], [0, 1, -t],
         [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]]
    f = [[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9], [5, 11, 4], [11, 10, 2],
         [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8], [3, 8, 9], [4, 9, 5],
         [2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1]]
    v = np.array(v, dtype=np.float64)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    f = np.array(f, dtype=np.int64)
    for _ in range(subdivisions):
        edges = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
        uniq, inv = np.unique(edges, axis=0, return_inverse=True)
        mid = v[uniq].mean(axis=1)
        mid /= np.linalg.norm(mid, axis=1, keepdims=True)
        m = inv.reshape(3, -1).T + len(v)  # midpoints of edges (01, 12, 20)
        v = np.concatenate([v, mid])
        a, b, c = f[:, 0], f[:, 1], f[:, 2]
        ab, bc, ca = m[:, 0], m[:, 1], m[:, 2]
        f = np.concatenate([np.stack([a, ab, ca], 1), np.stack([b, bc, ab], 1),
                            np.stack([c, ca, bc], 1), np.stack([ab, bc, ca], 1)])
    return v, f


def _rot(axis, angle):
    axis = np.asarray(axis, dtype=np.float64)
    axis = axis / np.linalg.norm(axis)
    K = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * K + (1 - np.cos(angle)) * K @ K


def body_like_mesh(detail: int = 4):
    """A ~1.7 m body-like mesh (y up, facing +z) of 14 overlapping ellipsoids.

    detail=4: ≈27k faces (torso/head 5120 each, limbs 1280); detail=3: ≈7k; detail=2: ≈1.8k.
    """
    big = _icosphere(detail)
    small = _icosphere(max(detail - 1, 0))
    # (sphere, centre, radii, rotation axis, angle)
    parts = [
        (big, (0.0, 0.25, 0.0), (0.19, 0.32, 0.12), (0, 0, 1), 0.0),        # torso
        (big, (0.0, 0.72, 0.02), (0.10, 0.12, 0.11), (0, 0, 1), 0.0),       # head
        (small, (0.0, 0.57, 0.0), (0.05, 0.06, 0.05), (0, 0, 1), 0.0),      # neck
        (small, (0.0, -0.08, 0.0), (0.18, 0.12, 0.11), (0, 0, 1), 0.0),     # pelvis
        (small, (-0.30, 0.38, 0.0), (0.05, 0.16, 0.05), (0, 0, 1), -0.6),   # upper arms
        (small, (0.30, 0.38, 0.0), (0.05, 0.16, 0.05), (0, 0, 1), 0.6),
        (small, (-0.45, 0.14, 0.06), (0.04, 0.15, 0.04), (1, 0, 1), -0.3),  # forearms
        (small, (0.47, 0.18, 0.02), (0.04, 0.15, 0.04), (0, 0, 1), 0.2),
        (small, (-0.11, -0.38, 0.0), (0.08, 0.24, 0.08), (0, 0, 1), 0.05),  # thighs
        (small, (0.11, -0.38, 0.03), (0.08, 0.24, 0.08), (1, 0, 0), -0.25),
        (small, (-0.13, -0.83, 0.0), (0.055, 0.22, 0.055), (0, 0, 1), 0.0),  # shins
        (small, (0.13, -0.80, 0.12), (0.055, 0.22, 0.055), (1, 0, 0), 0.3),
        (small, (-0.13, -1.05, 0.06), (0.05, 0.03, 0.11), (0, 0, 1), 0.0),  # feet
        (small, (0.13, -1.0, 0.22), (0.05, 0.03, 0.11), (1, 0, 0), 0.3),
    ]
    verts, faces, off = [], [], 0
    for (sv, sf), centre, radii, axis, angle in parts:
        v = (sv * np.asarray(radii)) @ _rot(axis, angle).T + np.asarray(centre)
        verts.append(v)
        faces.append(sf + off)
        off += len(v)
    return np.concatenate(verts).astype(np.float32), np.concatenate(faces).astype(np.int32)


def embedded_body_path():
    """Path of the embedded SMPL-format body model (.npz), or None when lasor_shared ships none."""
    from lasor_shared.body_model import embedded_model_path
    from lasor_shared.errors import LasorError

    try:
        return embedded_model_path("neutral")
    except LasorError:
        return None


def body_mesh():
    """(vertices (N,3) float32, faces (F,3) int32, name) of the embedded body's template mesh."""
    from lasor_shared.body_model import read_model_file

    path = embedded_body_path()
    if path is None:
        v, f = body_like_mesh(4)
        return v, f, "body_like_mesh(4)"
    data = read_model_file(path)
    return (np.asarray(data["v_template"], np.float32), np.asarray(data["f"], np.int32),
            os.path.basename(path))


def cube_mesh():
    """Unit cube centred at 0: 8 vertices, 12 faces wound counter-clockwise seen from outside."""
    v = np.array([[-1, -1, -1], [1, -1, -1], [1, 1, -1], [-1, 1, -1],
                  [-1, -1, 1], [1, -1, 1], [1, 1, 1], [-1, 1, 1]], np.float32) * 0.5
    f = np.array([[0, 2, 1], [0, 3, 2], [4, 5, 6], [4, 6, 7], [0, 1, 5], [0, 5, 4],
                  [3, 7, 6], [3, 6, 2], [0, 4, 7], [0, 7, 3], [1, 2, 6], [1, 6, 5]], np.int32)
    return v, f


def random_rotation(rng: np.random.Generator, max_angle: float = np.pi) -> np.ndarray:
    axis = rng.normal(size=3)
    return _rot(axis, rng.uniform(-max_angle, max_angle))


def random_view(rng: np.random.Generator, vertices: np.ndarray, orig_size: int = 512):
    """A random rigid pose of the mesh and an OpenCV camera (K, R, t) that sees it whole-ish.

    Returns (posed vertices (N,3) float32, K (3,3), R (3,3), t (3,)) in lasor's convention.
    """
    v = vertices - vertices.mean(0)
    v = v @ random_rotation(rng).T.astype(np.float32)
    extent = float(np.linalg.norm(v, axis=1).max())
    focal = orig_size * rng.uniform(1.1, 1.6)
    dist = focal * 1.8 * extent / orig_size * rng.uniform(0.9, 1.2)
    K = np.array([[focal, 0, orig_size / 2 + rng.uniform(-20, 20)],
                  [0, focal * rng.uniform(0.95, 1.05), orig_size / 2 + rng.uniform(-20, 20)],
                  [0, 0, 1]], dtype=np.float64)
    R = random_rotation(rng)
    t = np.array([rng.uniform(-0.1, 0.1) * extent, rng.uniform(-0.1, 0.1) * extent, dist])
    return v.astype(np.float32), K, R, t


def silhouette_iou(a, b) -> float:
    """Pooled IoU of two silhouette batches (tensors or arrays), binarised at 0.5 — the product's metric."""
    from lasor_trainer.metrics import silhouette_counts
    from lasor_trainer.metrics import silhouette_iou as iou_of_counts

    a, b = (np.asarray(x.detach().cpu() if hasattr(x, "detach") else x, np.float32) for x in (a, b))
    a, b = a.reshape(-1, *a.shape[-2:]), b.reshape(-1, *b.shape[-2:])
    return iou_of_counts(silhouette_counts(a, b))["iou_pooled"]


def fit_similarity(renderer, vertices, faces, target, offset, steps: int = 300, lr: float = 0.005,
                   lr_drop_at: float | None = None):
    """Fit translation, log-scale and axis-angle rotation of `vertices` (N,3) so that their silhouette
    (placed at `offset`) matches `target`, by Adam on a soft-IoU loss through the renderer, from a
    clearly wrong start. Returns (per-step IoUs, first image, final image)."""
    import torch

    from lasor_trainer.rotations import axis_angle_to_matrix

    tr = torch.tensor([0.12, -0.12, 0.3], requires_grad=True)
    log_s = torch.tensor([float(np.log(0.8))], requires_grad=True)
    rv = torch.tensor([0.1, -0.15, 0.2], requires_grad=True)
    opt = torch.optim.Adam([tr, log_s, rv], lr=lr)
    milestones = [int(steps * lr_drop_at)] if lr_drop_at else []
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones, 0.3)

    def render():
        return renderer.render_silhouettes(((vertices * log_s.exp()) @ axis_angle_to_matrix(rv).T + tr + offset)[None],
                                           faces)

    ious, first = [], None
    for _ in range(steps):
        img = render()
        if first is None:
            first = img.detach()
        ious.append(silhouette_iou(img, target))
        loss = 1 - (img * target).sum() / (img + target - img * target).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    with torch.no_grad():
        final = render()
    return ious, first, final


def offscreen_gl(size: int):
    """Generator for a pytest fixture: yields (pyrender, trimesh, an OffscreenRenderer size × size) and
    deletes the renderer afterwards; skips when pyrender/trimesh or an offscreen OpenGL is missing."""
    import pytest

    pyrender = pytest.importorskip("pyrender")
    trimesh = pytest.importorskip("trimesh")
    try:
        r = pyrender.OffscreenRenderer(size, size)
    except Exception as exc:  # no EGL/OSMesa
        pytest.skip(f"no offscreen OpenGL: {exc}")
    yield pyrender, trimesh, r
    r.delete()
