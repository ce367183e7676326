"""The training loss's coarse body (lasor_trainer.decimate + bodies.CoarseBody) stands for the full one."""

import numpy as np
import pytest
import torch

from lasor_trainer.decimate import cluster_decimate
from lasor_trainer.bodies import Bodies, render_silhouettes


@pytest.fixture(scope="module")
def bodies():
    return Bodies(coarse_cell=0.02)


def _poses(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, 24, 3, 3, generator=g) * 0.25
    R = torch.linalg.matrix_exp(a - a.transpose(-1, -2))
    R[:, 0] = torch.tensor([[1.0, 0, 0], [0, -1, 0], [0, 0, -1]]) @ R[:, 0]  # facing the camera
    return R, torch.randn(n, 10, generator=g) * 1.5


def test_cluster_decimate_on_a_grid():
    # a 10×10 vertex sheet of 0.1 m squares, one label: a 0.25 m cell keeps ~16 of 100 vertices
    xs, ys = np.meshgrid(np.arange(10) * 0.1, np.arange(10) * 0.1)
    v = np.stack([xs.ravel(), ys.ravel(), np.zeros(100)], 1)
    f = [[r * 10 + c, r * 10 + c + 1, (r + 1) * 10 + c] for r in range(9) for c in range(9)]
    f += [[r * 10 + c + 1, (r + 1) * 10 + c + 1, (r + 1) * 10 + c] for r in range(9) for c in range(9)]
    keep, faces, weight, owner = cluster_decimate(v, np.array(f), np.zeros(100, int), 0.25)
    assert 9 <= len(keep) <= 16 and faces.max() < len(keep) and faces.min() >= 0
    assert weight.sum() == (owner >= 0).sum()
    assert np.all(np.abs(v[keep[owner[owner >= 0]]] - v[owner >= 0]).max(1) <= 0.25 + 1e-9)
    n = np.cross(v[keep][faces[:, 1]] - v[keep][faces[:, 0]], v[keep][faces[:, 2]] - v[keep][faces[:, 0]])
    assert np.all(n[:, 2] >= 0)  # orientation kept (all input triangles face +z)
    with pytest.raises(ValueError, match="cell"):
        cluster_decimate(v, np.array(f), np.zeros(100, int), 0.0)


def test_coarse_body_matches_the_full_body(bodies):
    c = bodies.coarse
    V = bodies.pred.v_template.shape[0]
    assert c.n_mesh < 0.4 * V and abs(float(c.weight.sum()) - 1) < 1e-5
    R, betas = _poses(6)
    j, v, coco, _ = bodies.predict(R, betas)
    jc, vc, cococ, _ = bodies.predict(R, betas, coarse=True)
    assert torch.equal(j, jc)
    assert torch.equal(vc, v[:, c.ids])  # the same vertices, only fewer
    assert float((coco - cococ).norm(dim=-1).max()) < 0.01  # keypoints within 1 cm
    # the weighted mean over the coarse body stands for the mean over all vertices
    other = v.roll(1, 0)
    full = (v - other).norm(dim=-1).mean()
    coarse = ((vc[:, :c.n_mesh] - other[:, c.ids[:c.n_mesh]]).norm(dim=-1) @ c.weight).mean()
    assert abs(float(coarse / full) - 1) < 0.01


def test_coarse_silhouettes_match_the_full_mesh(bodies):
    from lasor_trainer.neural_renderer import Renderer

    c = bodies.coarse
    R, betas = _poses(6, seed=1)
    _, v, _, _ = bodies.predict(R, betas)
    B = v.shape[0]
    K = torch.tensor([[110.0, 0, 32], [0, 110.0, 32], [0, 0, 1]]).expand(B, 3, 3)
    T = torch.tensor([0.0, 0.0, 3.0]).expand(B, 3)
    r = Renderer(image_size=48, anti_aliasing=False, fill_back=False, camera_mode="projection", orig_size=64,
                 near=0.05, far=1000.0)
    full = render_silhouettes(r, v, T, K, bodies.faces)
    coarse = render_silhouettes(r, v[:, c.ids[:c.n_mesh]], T, K, c.faces)
    iou = (full * coarse).sum((1, 2)) / ((full + coarse) > 0).float().sum((1, 2))
    assert float(iou.min()) > 0.93 and float(iou.mean()) > 0.97, iou
