"""Tests of the Kato-style neural mesh renderer (CPU kernels; CUDA/neural_renderer path if present).

Forward agreement with pyrender lives in test_neural_renderer_pyrender.py.
"""

import logging

import numpy as np
import pytest
import torch
from lasor_trainer import neural_renderer as nr
from lasor_trainer.neural_renderer import Renderer, RendererInputError
from nr_testing import _icosphere, _rot, body_like_mesh, fit_similarity


@pytest.fixture(scope="module", autouse=True)
def _compiled():
    nr.warmup()  # numba compile (cached on disk after the first run)


def iou(a, b):
    a, b = a > 0.5, b > 0.5
    return ((a & b).sum() / (a | b).sum()).item()


def ndc_renderer(S=64, aa=False, fill_back=True):
    return Renderer(image_size=S, anti_aliasing=aa, fill_back=fill_back, camera_mode="none")


def tri(*verts, B=1):
    return torch.tensor([list(verts)] * B, dtype=torch.float32), torch.tensor([[[0, 1, 2]]] * B, dtype=torch.int32)


# --------------------------------------------------------------------------------------------------
# upstream reference gradients (64 px, no anti-aliasing, vertices in NDC, batch element 2 of 4)
# --------------------------------------------------------------------------------------------------

REF_CASES = [
    (((0.8, 0.8, 1.0), (0.0, -0.5, 1.0), (0.2, -0.4, 1.0)), (25, 35), 1.0,
     [[1.6725862, -0.26021874, 0.0], [1.41986704, -1.64284933, 0.0], [0.0, 0.0, 0.0]]),
    (((0.8, 0.8, 1.0), (-0.5, -0.8, 1.0), (0.8, -0.8, 1.0)), (40, 50), 0.0,
     [[0.98647, 1.04629, 0.0], [-1.03416, -0.10404, 0.0], [3.00094, -1.55173, 0.0]]),
]


def _ref_grad(verts, pix, target):
    v = torch.zeros(4, 3, 3)
    v[2] = torch.tensor(verts)
    v.requires_grad_(True)
    f = torch.tensor([[[0, 1, 2]]] * 4, dtype=torch.int32)
    img = ndc_renderer(64).render_silhouettes(v, f)
    (img[:, pix[0], pix[1]] - target).abs().sum().backward()
    return img.detach(), v.grad


@pytest.mark.parametrize("verts,pix,target,ref", REF_CASES)
def test_reference_gradients(verts, pix, target, ref):
    img, g = _ref_grad(verts, pix, target)
    assert img[2, pix[0], pix[1]] == 1.0 - target  # the loss is not satisfied yet
    np.testing.assert_allclose(g[2].numpy(), np.array(ref, np.float32), rtol=1e-2, atol=1e-5)
    assert torch.count_nonzero(g[[0, 1, 3]]) == 0  # other batch entries untouched


def test_step_by_inverse_gradient_flips_pixel():
    # case 1: the pixel is outside; moving v0.x by −1/g puts the edge just past the pixel centre
    verts, pix, target, _ = REF_CASES[0]
    _, g = _ref_grad(verts, pix, target)
    v = torch.tensor([verts], dtype=torch.float32)
    v[0, 0, 0] -= 1.0 / g[2, 0, 0]
    img = ndc_renderer(64).render_silhouettes(v, torch.tensor([[[0, 1, 2]]], dtype=torch.int32))
    assert img[0, pix[0], pix[1]] == 1.0
    v[0, 0, 0] += 0.2 * (1.0 / g[2, 0, 0])  # 80 % of the way is not enough
    img = ndc_renderer(64).render_silhouettes(v, torch.tensor([[[0, 1, 2]]], dtype=torch.int32))
    assert img[0, pix[0], pix[1]] == 0.0


# --------------------------------------------------------------------------------------------------
# gradient structure: signs, zeros, batch independence, depth
# --------------------------------------------------------------------------------------------------

RIGHT_TRI = ((-0.5, -0.5, 2.0), (0.3, -0.5, 2.0), (0.3, 0.5, 2.0))  # CCW; right edge at x = 0.3


def _col(x, S=32):  # column whose centre is nearest to NDC x
    return int(np.floor((x + 1) * S / 2))


def test_gradient_signs_at_edges():
    S, row = 32, 16  # row 16 (centre y = −1/32) crosses the right edge
    out_col = _col(0.3) + 1  # first pixel right of the edge
    in_col = _col(0.3) - 1   # a pixel inside, next to the edge
    v, f = tri(*RIGHT_TRI)
    v.requires_grad_(True)
    img = ndc_renderer(S, fill_back=False).render_silhouettes(v, f)
    assert img[0, row, out_col] == 0 and img[0, row, in_col] == 1
    (-img[0, row, out_col]).backward()  # want the outside pixel covered: move right edge right
    g = v.grad[0]
    assert g[1, 0] < 0 and g[2, 0] < 0 and g[0, 0] == 0
    assert torch.all(g[:, 1:] == 0)  # no y gradient (no column scan reaches the pixel), no z
    v.grad = None
    img = ndc_renderer(S, fill_back=False).render_silhouettes(v, f)
    img[0, row, in_col].backward()  # want the inside pixel uncovered: move right edge left
    g = v.grad[0]
    assert g[1, 0] > 0 and g[2, 0] > 0
    assert torch.all(g[:, 2] == 0)


def test_gradient_zero_when_satisfied_or_unreachable():
    S = 32
    v, f = tri(*RIGHT_TRI)
    v.requires_grad_(True)
    r = ndc_renderer(S)
    img = r.render_silhouettes(v, f)
    ((img - img.detach()) ** 2).sum().backward()  # already satisfied
    assert torch.count_nonzero(v.grad) == 0
    v.grad = None
    img = r.render_silhouettes(v, f)
    (-img[0, 1, 30]).backward()  # top-right corner: no row or column of the face reaches it
    assert torch.count_nonzero(v.grad) == 0
    v.grad = None
    img = r.render_silhouettes(v, f)
    img[0, 5, 5].backward()  # background pixel, and the loss wants it to stay background
    assert torch.count_nonzero(v.grad) == 0


def test_hidden_and_offscreen_faces_get_no_gradient():
    front = [(-0.8, -0.8, 1.0), (0.8, -0.8, 1.0), (0.0, 0.8, 1.0)]
    hidden = [(-0.3, -0.3, 3.0), (0.3, -0.3, 3.0), (0.0, 0.3, 3.0)]
    offscreen = [(2.0, 2.0, 1.0), (2.5, 2.0, 1.0), (2.2, 2.5, 1.0)]
    v = torch.tensor([front + hidden + offscreen], requires_grad=True)
    f = torch.tensor([[[0, 1, 2], [3, 4, 5], [6, 7, 8]]], dtype=torch.int32)
    img = ndc_renderer(32).render_silhouettes(v, f)
    ((img - 0.5) ** 2).sum().backward()  # wants every pixel to change
    assert torch.count_nonzero(v.grad[0, :3]) > 0
    assert torch.count_nonzero(v.grad[0, 3:]) == 0


def test_batch_entries_independent():
    vb, fb = body_like_mesh(2)
    K = np.array([[120.0, 0, 64], [0, 120, 64], [0, 0, 1]])
    shifts = torch.tensor([[0.0, 0.0, 3.0], [0.2, -0.1, 3.2], [-0.15, 0.1, 2.8]])
    v = (torch.from_numpy(vb)[None] + shifts[:, None]).contiguous()
    f = torch.from_numpy(fb)[None].expand(3, -1, -1)
    r = Renderer(image_size=48, K=K, R=np.eye(3), t=np.zeros(3), orig_size=128)
    target = torch.zeros(3, 48, 48)
    target[:, 10:40, 15:35] = 1
    va = v.clone().requires_grad_(True)
    ((r.render_silhouettes(va, f) - target) ** 2).sum().backward()
    for i in range(3):
        vi = v[i:i + 1].clone().requires_grad_(True)
        ((r.render_silhouettes(vi, f[i:i + 1]) - target[i:i + 1]) ** 2).sum().backward()
        torch.testing.assert_close(va.grad[i], vi.grad[0])
    vc = v.clone().requires_grad_(True)
    ((r.render_silhouettes(vc, f)[1] - target[1]) ** 2).sum().backward()
    assert torch.count_nonzero(vc.grad[[0, 2]]) == 0 and torch.count_nonzero(vc.grad[1]) > 0


def test_depth_values_and_gradient():
    r = ndc_renderer(32, fill_back=False)
    v, f = tri((-0.6, -0.6, 2.0), (0.6, -0.6, 2.0), (0.0, 0.6, 2.0))
    v.requires_grad_(True)
    d = r.render_depth(v, f)
    covered = d < nr.DEFAULT_FAR
    assert torch.allclose(d[covered], torch.tensor(2.0)) and (~covered).any()
    assert torch.all(d[~covered] == nr.DEFAULT_FAR)
    d[covered].sum().backward()
    # z* = 1/Σ wₖ/zₖ with equal z: ∂z*/∂zₖ = wₖ, Σₖ wₖ = 1 per pixel; no x/y dependence
    torch.testing.assert_close(v.grad[0, :, 2].sum(), covered.sum().float(), rtol=1e-4, atol=1e-3)
    assert v.grad[0, :, :2].abs().max() < 1e-3
    # tilted face: autograd matches central differences in z (coverage does not depend on z)
    base = torch.tensor([[(-0.6, -0.6, 2.0), (0.6, -0.6, 3.0), (0.0, 0.6, 4.0)]])
    vt = base.clone().requires_grad_(True)
    mask = r.render_depth(base, f) < nr.DEFAULT_FAR
    (r.render_depth(vt, f)[mask]).sum().backward()
    for k in range(3):
        h = 1e-2
        p, m = base.clone(), base.clone()
        p[0, k, 2] += h
        m[0, k, 2] -= h
        fd = ((r.render_depth(p, f)[mask]).sum() - (r.render_depth(m, f)[mask]).sum()) / (2 * h)
        torch.testing.assert_close(vt.grad[0, k, 2], fd, rtol=2e-3, atol=1e-2)


# --------------------------------------------------------------------------------------------------
# forward conventions
# --------------------------------------------------------------------------------------------------


def test_projection_pixel_grid_and_orientation():
    # orig = S = 32, K = [[f,0,c],[0,f,c]]; a square covering u ∈ [10.2, 19.6], v ∈ [5.1, 7.8]
    S, fcl, c, z = 32, 40.0, 16.0, 2.0
    K = np.array([[fcl, 0, c], [0, fcl, c], [0, 0, 1]])

    def back(u, v):
        return [(u - c) / fcl * z, (v - c) / fcl * z, z]

    v = torch.tensor([[back(10.2, 5.1), back(19.6, 5.1), back(19.6, 7.8), back(10.2, 7.8)]], dtype=torch.float32)
    f = torch.tensor([[[0, 1, 2], [0, 2, 3]]], dtype=torch.int32)
    r = Renderer(image_size=S, anti_aliasing=False, K=K, R=np.eye(3), t=np.zeros(3), orig_size=S)
    img = r.render_silhouettes(v, f)[0]
    expect = torch.zeros(S, S)
    expect[5:8, 10:20] = 1  # centres (c+½, r+½) inside; row 0 is the top of the image
    torch.testing.assert_close(img, expect)
    # same picture at half resolution with orig_size = 2S: pixel centres at (c+½)·2
    r2 = Renderer(image_size=S // 2, anti_aliasing=False, K=K, R=np.eye(3), t=np.zeros(3), orig_size=S)
    img2 = r2.render_silhouettes(v, f)[0]
    expect2 = torch.zeros(S // 2, S // 2)
    expect2[3:4, 5:10] = 1  # v-centres 3, 5, 7 → only 7 ∈ [5.1, 7.8]; u-centres 11..19
    torch.testing.assert_close(img2, expect2)


def test_fill_back_near_far_and_anti_aliasing():
    cw = ((-0.5, -0.5, 2.0), (0.0, 0.5, 2.0), (0.5, -0.5, 2.0))  # clockwise = back side
    v, f = tri(*cw)
    assert ndc_renderer(32, fill_back=False).render_silhouettes(v, f).sum() == 0
    assert ndc_renderer(32, fill_back=True).render_silhouettes(v, f).sum() > 0
    near = tri((-0.5, -0.5, 0.05), (0.5, -0.5, 0.05), (0.0, 0.5, 0.05))
    assert ndc_renderer(32).render_silhouettes(*near).sum() == 0  # z < near 0.1
    aa = ndc_renderer(32, aa=True).render_silhouettes(*tri(*RIGHT_TRI))
    assert aa.shape == (1, 32, 32)
    assert torch.all(aa * 4 == torch.round(aa * 4)) and ((aa > 0) & (aa < 1)).any()


# --------------------------------------------------------------------------------------------------
# optimisation through the renderer
# --------------------------------------------------------------------------------------------------

K64 = np.array([[150.0, 0, 64], [0, 150, 64], [0, 0, 1]])


def _soft_iou_loss(img, target):
    return 1 - (img * target).sum() / (img + target - img * target).sum()


def test_fit_translation_scale_rotation():
    r = Renderer(image_size=64, K=K64, R=np.eye(3), t=np.zeros(3), orig_size=128)
    vb, fb = body_like_mesh(3)
    v = torch.from_numpy(vb)
    f = torch.from_numpy(fb)[None]
    z0 = torch.tensor([0.0, 0.0, 3.5])
    with torch.no_grad():
        target = r.render_silhouettes((v + z0)[None], f)
    ious, _, _ = fit_similarity(r, v, f, target, z0, steps=300)
    assert ious[0] < 0.4, "start should be clearly wrong"
    assert max(ious[-30:]) >= 0.95, ious[::25]


def test_fit_free_vertex_offsets_with_smoothness():
    r = Renderer(image_size=64, K=K64, R=np.eye(3), t=np.zeros(3), orig_size=128)
    sv, sf = _icosphere(3)
    sv = torch.tensor(sv, dtype=torch.float32)
    f = torch.from_numpy(sf.astype(np.int32))[None]
    rot = torch.tensor(_rot((0, 0, 1), 0.5).T, dtype=torch.float32)
    with torch.no_grad():
        target = r.render_silhouettes(((sv * torch.tensor([0.9, 0.45, 0.5])) @ rot + torch.tensor([0.15, 0.1, 3.5]))[None], f)
    v0 = sv * 0.5 + torch.tensor([-0.1, 0.0, 3.5])
    n = len(sv)
    edges = np.unique(np.sort(np.concatenate([sf[:, [0, 1]], sf[:, [1, 2]], sf[:, [2, 0]]]), 1), axis=0)
    A = torch.zeros(n, n)
    A[edges[:, 0], edges[:, 1]] = 1
    A[edges[:, 1], edges[:, 0]] = 1
    lap = torch.eye(n) - A / A.sum(1, keepdim=True)
    off = torch.zeros_like(v0, requires_grad=True)
    opt = torch.optim.Adam([off], lr=0.005)
    ious = []
    for _ in range(250):
        vv = v0 + off
        img = r.render_silhouettes(vv[None], f)
        ious.append(iou(img, target))
        loss = _soft_iou_loss(img, target) + 1.0 * ((lap @ vv) ** 2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert ious[0] < 0.6
    assert max(ious[-20:]) >= 0.95, ious[::25]


# --------------------------------------------------------------------------------------------------
# input checking and backend selection
# --------------------------------------------------------------------------------------------------


def _good():
    v, f = tri((-0.5, -0.5, 2.0), (0.5, -0.5, 2.0), (0.0, 0.5, 2.0))
    return v, f


@pytest.mark.parametrize(
    "mutate,word",
    [
        (lambda v, f: (v.double(), f), "vertices"),
        (lambda v, f: (v[0], f), "vertices"),
        (lambda v, f: (v.numpy(), f), "vertices"),
        (lambda v, f: (v.masked_fill(torch.zeros_like(v, dtype=torch.bool).index_fill(1, torch.tensor([0]), True), float("nan")), f), "vertices"),
        (lambda v, f: (v, f.float()), "faces"),
        (lambda v, f: (v, f[..., :2]), "faces"),
        (lambda v, f: (v, f + 1), "faces"),
        (lambda v, f: (v, f - 1), "faces"),
        (lambda v, f: (v.expand(2, -1, -1), f.expand(3, -1, -1)), "faces"),
    ],
)
def test_bad_mesh_input(mutate, word):
    v, f = mutate(*_good())
    with pytest.raises(ValueError, match=word) as e:
        ndc_renderer(16).render_silhouettes(v, f)
    assert "\n" not in str(e.value)


def test_bad_camera_and_options():
    v, f = _good()
    K = np.array([[20.0, 0, 8], [0, 20, 8], [0, 0, 1]])
    with pytest.raises(ValueError, match="K"):
        Renderer(image_size=16, K=np.eye(4), R=np.eye(3), t=np.zeros(3)).render_silhouettes(v, f)
    with pytest.raises(ValueError, match="t"):
        Renderer(image_size=16, K=K, R=np.eye(3), t=np.zeros(4)).render_silhouettes(v, f)
    with pytest.raises(ValueError, match="R"):
        Renderer(image_size=16, K=K, R=None, t=np.zeros(3)).render_silhouettes(v, f)
    with pytest.raises(ValueError, match="image_size"):
        Renderer(image_size=0)
    with pytest.raises(ValueError, match="camera_mode"):
        Renderer(camera_mode="orthographic")
    with pytest.raises(ValueError, match="backend"):
        Renderer(backend="opengl")
    with pytest.raises(ValueError, match="mode"):
        ndc_renderer(16)(v, f, mode="normals")
    assert issubclass(RendererInputError, ValueError)


def test_backend_selection_and_logging(monkeypatch, caplog):
    cpu = torch.device("cpu")
    assert nr.resolve_backend("cpu", cpu) == "cpu"
    assert nr.resolve_backend("auto", cpu) == "cpu"
    monkeypatch.setenv("LASOR_NMR_BACKEND", "cpu")
    assert nr.resolve_backend(None, torch.device("cuda")) == "cpu"
    monkeypatch.setenv("LASOR_NMR_BACKEND", "bogus")
    with pytest.raises(ValueError, match="backend"):
        nr.resolve_backend(None, cpu)
    monkeypatch.delenv("LASOR_NMR_BACKEND")
    with pytest.raises(ValueError, match="neural_renderer"):
        nr.resolve_backend("neural_renderer", cpu)  # missing package or not CUDA: both refused
    with caplog.at_level(logging.INFO, logger="lasor_trainer.neural_renderer"):
        ndc_renderer(16).render_silhouettes(*_good())
    assert any("backend: cpu" in rec.getMessage() for rec in caplog.records)


@pytest.mark.skipif(not (torch.cuda.is_available() and nr.neural_renderer_available()),
                    reason="needs CUDA and the neural_renderer package")
def test_neural_renderer_backend_matches_cpu():
    vb, fb = body_like_mesh(3)
    K = np.array([[300.0, 0, 128], [0, 300, 128], [0, 0, 1]])
    v = torch.from_numpy(vb)[None] + torch.tensor([0.0, 0.0, 3.0])
    f = torch.from_numpy(fb)[None]
    kw = dict(image_size=128, K=K, R=np.eye(3), t=np.zeros(3), orig_size=256)
    cpu = Renderer(backend="cpu", **kw).render_silhouettes(v, f)
    gpu = Renderer(backend="auto", **kw).render_silhouettes(v.cuda(), f.cuda())
    assert gpu.is_cuda and iou(cpu, gpu.cpu()) > 0.99
    for verts, pix, target, ref in REF_CASES:
        vv = torch.zeros(4, 3, 3, device="cuda")
        vv[2] = torch.tensor(verts)
        vv.requires_grad_(True)
        ff = torch.tensor([[[0, 1, 2]]] * 4, dtype=torch.int32, device="cuda")
        img = Renderer(image_size=64, anti_aliasing=False, camera_mode="none").render_silhouettes(vv, ff)
        (img[:, pix[0], pix[1]] - target).abs().sum().backward()
        np.testing.assert_allclose(vv.grad[2].cpu().numpy(), np.array(ref, np.float32), rtol=1e-2, atol=1e-5)


def test_fill_back_in_kernel_equals_doubled_face_list():
    vb, fb = body_like_mesh(2)
    K = np.array([[120.0, 0, 64], [0, 120, 64], [0, 0, 1]])
    rot = torch.tensor(_rot((1, 1, 0), 0.7).T, dtype=torch.float32)
    v = (torch.from_numpy(vb) @ rot + torch.tensor([0.0, 0.0, 3.0]))[None]
    f = torch.from_numpy(fb)[None]
    f_open = f[:, ::2].contiguous()  # an open mesh: back faces visible through the holes
    kw = dict(image_size=48, K=K, R=np.eye(3), t=np.zeros(3), orig_size=128)
    target = torch.zeros(1, 48, 48)
    target[:, 8:40, 12:36] = 1
    grads, imgs = [], []
    for fill_back, faces in ((True, f_open), (False, torch.cat((f_open, f_open.flip(-1)), dim=1))):
        vv = v.clone().requires_grad_(True)
        img = Renderer(fill_back=fill_back, **kw).render_silhouettes(vv, faces)
        ((img - target) ** 2).sum().backward()
        grads.append(vv.grad)
        imgs.append(img.detach())
    torch.testing.assert_close(imgs[0], imgs[1])
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-3)
    assert torch.count_nonzero(grads[0]) > 0
