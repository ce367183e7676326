"""neural_renderer 1.1.x API on the CPU (lasor_trainer.neural_renderer as nr): upstream's own test cases
(look_at, perspective, lighting, load_obj, the two reference gradients through textured RGB),
OBJ/MTL/texture I/O, output consistency, finite-difference gradient checks (textures; vertices through
lighting and depth) and thread-count exactness of the RGB kernels.

Rasterised pixels are piecewise constant in the vertices, so finite differences are only taken where
the image is smooth in them: texture values (linear), lighting and depth at pixels away from edges.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from nr_testing import cube_mesh

import lasor_trainer.neural_renderer as nr


@pytest.fixture(scope="module", autouse=True)
def _compiled():
    nr.warmup()
    nr.warmup_rgb()


# --------------------------------------------------------------------------------------------------
# upstream test-suite cases
# --------------------------------------------------------------------------------------------------


def test_look_at_upstream_cases():
    v = torch.tensor([[[1.0, 0.0, 0.0]]])
    eyes = [[1, 0, 1], [0, 0, -10], [-1, 1, 0]]
    answers = [[-np.sqrt(2) / 2, 0, np.sqrt(2) / 2], [1, 0, 10], [0, np.sqrt(2) / 2, 3.0 / 2.0 * np.sqrt(2)]]
    for e, a in zip(eyes, answers):
        out = nr.look_at(v, np.array(e, np.float32))
        np.testing.assert_allclose(out[0, 0].numpy(), a, atol=1e-5)
    # look along the direction at == look_at; a batch of eyes as a tensor
    eye = torch.tensor([[1.0, 2.0, -3.0], [0.5, -1.0, 2.0]])
    v2 = torch.randn(2, 5, 3)
    np.testing.assert_allclose(nr.look(v2, eye, -eye).numpy(), nr.look_at(v2, eye).numpy(), atol=1e-5)


def test_perspective_and_points_from_angles():
    v = torch.tensor([[[1.0, 2.0, 10.0]]])
    np.testing.assert_allclose(nr.perspective(v)[0, 0].numpy(), [np.sqrt(3) / 10, 2 * np.sqrt(3) / 10, 10], rtol=1e-5)
    p = nr.get_points_from_angles(2.732, 30, -15)
    assert isinstance(p, tuple) and abs(np.linalg.norm(p) - 2.732) < 1e-6 and abs(p[1] - 2.732 / 2) < 1e-6
    pt = nr.get_points_from_angles(torch.tensor([2.732, 1.0]), torch.tensor([30.0, 0.0]), torch.tensor([-15.0, 90.0]))
    np.testing.assert_allclose(pt[0].numpy(), p, rtol=1e-5)
    np.testing.assert_allclose(pt[1].numpy(), [1, 0, 0], atol=1e-6)


def test_lighting_values():
    nr.lighting(torch.randn(4, 16, 3, 3), torch.randn(4, 16, 8, 8, 8, 3))  # upstream: "is executable"
    # a face in the y = 0 plane; (v0 − v1) × (v2 − v1) points to +y for this winding
    faces = torch.tensor([[[[0.0, 0, 0], [1, 0, 0], [0, 0, 1]]]])
    tex = torch.full((1, 1, 2, 2, 2, 3), 0.8, requires_grad=True)
    out = nr.lighting(faces, tex, 0.3, 0.6, (1, 0.5, 0), (1, 1, 1), (0, 1, 0))
    np.testing.assert_allclose(out[0, 0, 0, 0, 0].detach().numpy(), 0.8 * (np.array([0.3, 0.15, 0]) + 0.6), rtol=1e-6)
    assert tex.grad is None and float(tex[0, 0, 0, 0, 0, 0].detach()) == pytest.approx(0.8)  # not in place
    back = nr.lighting(faces.flip(2), tex, 0.3, 0.6, (1, 0.5, 0), (1, 1, 1), (0, 1, 0))  # facing away: ambient only
    np.testing.assert_allclose(back[0, 0, 0, 0, 0].detach().numpy(), 0.8 * np.array([0.3, 0.15, 0]), rtol=1e-6)


REF_CASES = [  # upstream tests/test_rasterize.py backward cases: textured RGB, ambient light 1
    (((0.8, 0.8, 1.0), (0.0, -0.5, 1.0), (0.2, -0.4, 1.0)), (25, 35), 1.0,
     [[1.6725862, -0.26021874, 0.0], [1.41986704, -1.64284933, 0.0], [0.0, 0.0, 0.0]]),
    (((0.8, 0.8, 1.0), (-0.5, -0.8, 1.0), (0.8, -0.8, 1.0)), (40, 50), 0.0,
     [[0.98646867, 1.04628897, 0.0], [-1.03415668, -0.10403691, 0.0], [3.00094461, -1.55173182, 0.0]]),
]


@pytest.mark.parametrize("verts,pix,target,ref", REF_CASES)
def test_upstream_reference_gradients_through_rgb(verts, pix, target, ref):
    r = nr.Renderer(camera_mode="look_at")
    r.image_size, r.anti_aliasing, r.perspective = 64, False, False
    r.light_intensity_ambient, r.light_intensity_directional = 1.0, 0.0
    v = torch.zeros(4, 3, 3)
    v[2] = torch.tensor(verts)
    v.requires_grad_(True)
    f = torch.tensor([[[0, 1, 2]]] * 4, dtype=torch.int32)
    tex = torch.ones(4, 1, 4, 4, 4, 3)
    images = r.render(v, f, tex)[0].mean(1)
    assert float(images[2, pix[0], pix[1]].detach()) == 1.0 - target
    (images[:, pix[0], pix[1]] - target).abs().sum().backward()
    np.testing.assert_allclose(v.grad[2].numpy(), np.array(ref, np.float32), rtol=1e-2, atol=1e-5)
    assert float(v.grad[[0, 1, 3]].abs().sum()) == 0.0


TETRA = "v 1 0 0\nv 0 1 0\nv 0 0 1\nv 0 0 0\nf 2 4 3\nf 4 2 1\nf 3 1 2\nf 1 3 4\n"


def test_load_obj_tetrahedron(tmp_path):
    p = tmp_path / "tetrahedron.obj"
    p.write_text(TETRA)
    v_ref = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]], np.float32)
    f_ref = np.array([[1, 3, 2], [3, 1, 0], [2, 0, 1], [0, 2, 3]], np.int32)
    v, f = nr.load_obj(str(p), False)
    np.testing.assert_array_equal(v.numpy(), v_ref)
    np.testing.assert_array_equal(f.numpy(), f_ref)
    assert f.dtype == torch.int32 and v.dtype == torch.float32
    v, f = nr.load_obj(str(p), True)
    np.testing.assert_allclose(v.numpy(), v_ref * 2 - 1.0)
    p.write_text("v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nf 1//1 2//2 -2 -1\n")  # quad → fan, relative indices
    np.testing.assert_array_equal(nr.load_obj(str(p), False)[1].numpy(), [[0, 1, 2], [0, 2, 3]])


def _textured_quad(tmp_path, image, wrap_uv=1.0):
    from PIL import Image

    Image.fromarray(image).save(tmp_path / "tex.png")
    (tmp_path / "m.mtl").write_text("newmtl plain\nKd 0.2 0.4 0.6\nnewmtl img\nKd 1 1 1\nmap_Kd tex.png\n")
    u = wrap_uv
    (tmp_path / "m.obj").write_text(
        "mtllib m.mtl\nv 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\n"
        f"vt 0 0\nvt {u} 0\nvt {u} {u}\nvt 0 {u}\n"
        "usemtl img\nf 1/1 2/2 3/3\nusemtl plain\nf 1 3 4\n")
    return str(tmp_path / "m.obj")


def test_load_obj_textures_from_mtl_and_image(tmp_path):
    img = np.zeros((2, 3, 3), np.uint8)  # rows top-down; v = 0 is the bottom row
    img[1] = [[255, 0, 0], [0, 255, 0], [0, 0, 255]]  # bottom row
    img[0] = [[10, 20, 30], [40, 50, 60], [70, 80, 90]]  # top row
    path = _textured_quad(tmp_path, img)
    v, f, tex = nr.load_obj(path, load_texture=True, texture_size=2, use_bilinear=False)
    assert tex.shape == (2, 2, 2, 2, 3)
    # face 0 corners (uv (0,0), (1,0), (1,1)): texel (1,0,0) = corner 0, (0,1,0) = corner 1, (0,0,1) = corner 2
    np.testing.assert_allclose(tex[0, 1, 0, 0].numpy(), [1, 0, 0])
    np.testing.assert_allclose(tex[0, 0, 1, 0].numpy(), [0, 0, 1])
    np.testing.assert_allclose(tex[0, 0, 0, 1].numpy(), np.array([70, 80, 90]) / 255, rtol=1e-6)
    np.testing.assert_allclose(tex[1].reshape(-1, 3).numpy(), np.tile([0.2, 0.4, 0.6], (8, 1)), rtol=1e-6)
    # bilinear: texel (1,1,0) sits halfway between corners 0 and 1 → the middle of the bottom row
    _, _, tb = nr.load_obj(path, load_texture=True, texture_size=2)
    np.testing.assert_allclose(tb[0, 1, 1, 0].numpy(), [0, 1, 0], atol=1e-6)
    # coordinates beyond 1: REPEAT wraps with period 1, CLAMP_TO_EDGE clamps, CLAMP_TO_BORDER is black
    path = _textured_quad(tmp_path, img, wrap_uv=1.25)
    for mode, want in (("REPEAT", img[1, 0] / 255 * 0.5 + img[1, 1] / 255 * 0.5), ("CLAMP_TO_EDGE", [0, 0, 1]),
                       ("CLAMP_TO_BORDER", [0, 0, 0])):
        _, _, tw = nr.load_obj(path, load_texture=True, texture_size=2, texture_wrapping=mode)
        np.testing.assert_allclose(tw[0, 0, 1, 0].numpy(), want, atol=1e-6, err_msg=mode)


def test_obj_errors_are_one_line(tmp_path):
    cases = {"v 1 2\nf 1 2 3\n": "bad 'v'", "v 0 0 0\nf 1 2 3\n": "out of range", "v 0 0 0\n": "no faces",
             "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n": "mtllib"}
    for text, needle in cases.items():
        p = tmp_path / "bad.obj"
        p.write_text(text)
        with pytest.raises(nr.RendererInputError, match=needle) as e:
            nr.load_obj(str(p), load_texture=True)
        assert "\n" not in str(e.value) and "bad.obj" in str(e.value)
    with pytest.raises(nr.RendererInputError, match="missing.obj"):
        nr.load_obj(str(tmp_path / "missing.obj"))


def test_save_obj_round_trip(tmp_path):
    v, f = cube_mesh()
    v, f = torch.from_numpy(v), torch.from_numpy(f)
    nr.save_obj(str(tmp_path / "cube.obj"), v, f)
    v2, f2 = nr.load_obj(str(tmp_path / "cube.obj"), normalization=False)
    np.testing.assert_allclose(v2.numpy(), v.numpy(), atol=1e-7)
    np.testing.assert_array_equal(f2.numpy(), f.numpy())
    colours = torch.rand(12, 3)
    tex = colours[:, None, None, None, :].expand(12, 4, 4, 4, 3).contiguous()
    nr.save_obj(str(tmp_path / "tcube.obj"), v, f, tex)
    assert (tmp_path / "tcube.mtl").exists() and (tmp_path / "tcube.png").exists()
    _, _, t2 = nr.load_obj(str(tmp_path / "tcube.obj"), normalization=False, load_texture=True, texture_size=4)
    # face-corner texels sample inside the face's own tile: the colour survives (8-bit PNG)
    for idx in ((3, 0, 0), (0, 3, 0), (0, 0, 3), (1, 1, 1)):
        np.testing.assert_allclose(t2[(slice(None),) + idx].numpy(), colours.numpy(), atol=0.6 / 255)
    m = nr.Mesh.fromobj(str(tmp_path / "tcube.obj"), load_texture=True, texture_size=4)
    assert isinstance(m.vertices, torch.nn.Parameter) and m.textures.shape == (12, 4, 4, 4, 3) and m.num_faces == 12


# --------------------------------------------------------------------------------------------------
# outputs and options
# --------------------------------------------------------------------------------------------------


def _cube_batch(B=2):
    v, f = cube_mesh()
    return torch.from_numpy(v)[None].repeat(B, 1, 1), torch.from_numpy(f)[None].repeat(B, 1, 1)


def test_render_outputs_agree_with_the_single_purpose_rasterisers():
    v, f = _cube_batch()
    tex = torch.rand(2, 12, 2, 2, 2, 3)
    r = nr.Renderer(image_size=32, camera_mode="look_at", background_color=(0.1, 0.2, 0.3))
    r.eye = nr.get_points_from_angles(2.5, 25, 40)
    rgb, depth, alpha = r(v, f, tex)  # forward(mode=None) → render
    assert rgb.shape == (2, 3, 32, 32) and depth.shape == alpha.shape == (2, 32, 32)
    np.testing.assert_array_equal(alpha.numpy(), r.render_silhouettes(v, f).numpy())
    np.testing.assert_allclose(depth.numpy(), r.render_depth(v, f).numpy(), rtol=1e-6)
    np.testing.assert_array_equal(rgb.numpy(), r(v, f, tex, mode="rgb").numpy())
    bg = alpha == 0
    np.testing.assert_allclose(rgb.permute(0, 2, 3, 1)[bg].numpy(), np.tile([0.1, 0.2, 0.3], (int(bg.sum()), 1)),
                               rtol=1e-6)
    # the functional pipeline, as upstream's Renderer.render spells it out
    ff = torch.cat((f, f.flip(-1)), 1)
    tt = torch.cat((tex, tex.permute(0, 1, 4, 3, 2, 5)), 1)
    tt = nr.lighting(nr.vertices_to_faces(v, ff), tt)
    faces = nr.vertices_to_faces(nr.perspective(nr.look_at(v, r.eye)), ff)
    out = nr.rasterize_rgbad(faces, tt, 32, True, 0.1, 100, 1e-3, (0.1, 0.2, 0.3))
    np.testing.assert_allclose(out["rgb"].numpy(), rgb.numpy(), atol=1e-6)
    np.testing.assert_array_equal(out["alpha"].numpy(), alpha.numpy())
    np.testing.assert_array_equal(nr.rasterize(faces, tt, 32, True, 0.1, 100, 1e-3, (0.1, 0.2, 0.3)).numpy(),
                                  out["rgb"].numpy())
    raw_rgb, raw_alpha, raw_depth = nr.Rasterize(64, 0.1, 100, 1e-3, (0.1, 0.2, 0.3), True, True, False)(faces, tt)
    assert raw_rgb.shape == (2, 64, 64, 3) and raw_depth.numel() == 0
    np.testing.assert_allclose(torch.nn.functional.avg_pool2d(raw_rgb.flip(1).permute(0, 3, 1, 2), 2).numpy(),
                               rgb.numpy(), atol=1e-6)


def test_camera_modes_agree():
    """'look_at', 'look' and 'projection' describe the same camera here → the same pixels."""
    v, f = _cube_batch(1)
    tex = torch.rand(1, 12, 3, 3, 3, 3)
    eye = (0.6, 1.1, -2.4)
    a = nr.Renderer(image_size=48, camera_mode="look_at", anti_aliasing=False)
    a.eye = eye
    b = nr.Renderer(image_size=48, camera_mode="look", camera_direction=[-e for e in eye], anti_aliasing=False)
    b.eye = eye
    np.testing.assert_allclose(a.render_rgb(v, f, tex).numpy(), b.render_rgb(v, f, tex).numpy(), atol=1e-5)
    # projection: R = look_at's rotation, t = −R·eye, K = focal S/(2 tan 30°) at the centre, orig = S.
    # look_at's y is up (NDC y = y/z) where OpenCV's is down (NDC y = 1 − 2v/orig): K[1, 1] < 0.
    e = torch.tensor(eye)
    z = -e / e.norm()
    x = torch.nn.functional.normalize(torch.cross(torch.tensor([0.0, 1, 0]), z, dim=0), dim=0)
    y = torch.cross(z, x, dim=0)
    R = torch.stack([x, y, z])
    fpx = 48 / (2 * np.tan(np.radians(30)))
    K = torch.tensor([[fpx, 0, 24], [0, -fpx, 24], [0, 0, 1]])
    c = nr.Renderer(image_size=48, camera_mode="projection", K=K, R=R, t=(-R @ e)[None], orig_size=48,
                    anti_aliasing=False)
    ra, rc = a.render(v, f, tex), c.render(v, f, tex)
    assert float((ra[2] != rc[2]).float().mean()) < 0.01  # edge pixels may flip on rounding
    both = (ra[2] * rc[2]).bool()[:, None].expand(-1, 3, -1, -1)
    np.testing.assert_allclose(ra[0][both].numpy(), rc[0][both].numpy(), atol=2e-3)


def test_fill_back_draws_reversed_copies_with_their_own_light():
    """Upstream's fill_back doubles the face list with reversed winding (and permuted textures, each copy
    lit by its own normal). A closed cube: one winding shows its near side, the other its far side
    (from inside); two-sided rendering of either shows the near side = the one-sided render of the
    winding that faces the camera, colours and light included."""
    v, f = _cube_batch(1)
    torch.manual_seed(1)
    tex = torch.rand(1, 12, 3, 3, 3, 3)
    kw = dict(image_size=32, camera_mode="look_at", light_direction=(0.4, 0.7, -0.6))
    one, two = nr.Renderer(fill_back=False, **kw), nr.Renderer(fill_back=True, **kw)
    one.eye = two.eye = nr.get_points_from_angles(2.5, 20, 35)
    rev_tex = tex.permute(0, 1, 4, 3, 2, 5)  # texel (i, j, k) of the reversed face = (k, j, i) of the face
    a, b = one.render(v, f, tex), one.render(v, f.flip(-1), rev_tex)
    assert float(a[2].sum()) > 100 and float(b[2].sum()) > 100
    assert float((a[1] - b[1]).abs().max()) > 0.1  # different sides (depths) are seen
    near = a if float(a[1][a[2] > 0].mean()) < float(b[1][b[2] > 0].mean()) else b
    for both in (two.render(v, f, tex), two.render(v, f.flip(-1), rev_tex)):
        for x, y in zip(both, near):
            np.testing.assert_allclose(x.numpy(), y.numpy(), atol=1e-5)


def test_bad_rgb_input_is_one_line():
    v, f = _cube_batch(1)
    r = nr.Renderer(image_size=16, camera_mode="look_at")
    for tex, word in ((torch.ones(1, 11, 2, 2, 2, 3), "textures"), (torch.ones(1, 12, 2, 3, 2, 3), "textures"),
                      (np.ones((1, 12, 2, 2, 2, 3)), "textures")):
        with pytest.raises(ValueError, match=word) as e:
            r.render(v, f, tex)
        assert "\n" not in str(e.value)
    r.eye = (0, 1)
    with pytest.raises(ValueError, match="eye"):
        r.render_silhouettes(v, f)
    r.eye = (0, 0, -3)
    r.image_size = -2
    with pytest.raises(ValueError, match="image_size"):
        r.render_silhouettes(v, f)


# --------------------------------------------------------------------------------------------------
# gradients
# --------------------------------------------------------------------------------------------------


def test_texture_gradient_matches_finite_differences():
    v, f = _cube_batch(1)
    torch.manual_seed(0)
    tex = torch.rand(1, 12, 2, 2, 2, 3, dtype=torch.float32)
    r = nr.Renderer(image_size=24, camera_mode="look_at", light_direction=(0.3, 0.8, -0.5))
    r.eye = nr.get_points_from_angles(2.2, 30, 30)
    W = torch.randn(1, 3, 24, 24)
    t = tex.clone().requires_grad_(True)
    (r.render_rgb(v, f, t) * W).sum().backward()
    h = 1e-2
    rng = np.random.default_rng(0)
    visible = t.grad.reshape(12, -1).abs().sum(1).nonzero()[:, 0].numpy()
    assert len(visible) >= 4
    for _ in range(12):
        idx = (0, int(rng.choice(visible))) + tuple(int(x) for x in rng.integers(0, 2, 3)) + (int(rng.integers(0, 3)),)
        tp, tm = tex.clone(), tex.clone()
        tp[idx] += h
        tm[idx] -= h
        with torch.no_grad():
            fd = float(((r.render_rgb(v, f, tp) - r.render_rgb(v, f, tm)) * W).sum()) / (2 * h)
        assert abs(fd - float(t.grad[idx])) <= 2e-3 * max(1.0, abs(fd)), (idx, fd, float(t.grad[idx]))


def test_vertex_gradient_through_lighting_and_depth_matches_finite_differences():
    """A single big triangle seen in projection mode; loss on pixels well inside it, pulling colours
    up (so Kato's edge term has nothing to gain: d ≤ 0 everywhere) — the gradient is then exactly the
    lighting's (normals) and, for depth, the analytic one, both smooth: finite differences apply."""
    S = 32
    K = torch.tensor([[40.0, 0, 16], [0, 40.0, 16], [0, 0, 1]])
    r = nr.Renderer(image_size=S, anti_aliasing=False, camera_mode="projection", K=K, R=torch.eye(3),
                    t=torch.zeros(1, 3), orig_size=S, light_direction=(-0.3, 0.5, 0.8), fill_back=False)
    v0 = torch.tensor([[[-0.8, -0.7, 2.0], [0.9, -0.6, 2.4], [0.0, 0.9, 1.7]]], dtype=torch.float64).float()
    f = torch.tensor([[[0, 2, 1]]], dtype=torch.int32)
    tex = torch.full((1, 1, 2, 2, 2, 3), 0.7)
    with torch.no_grad():
        alpha = r.render_silhouettes(v0, f)[0]
    inner = torch.nn.functional.max_pool2d((alpha == 0).float()[None, None], 7, 1, 3)[0, 0] == 0
    assert int(inner.sum()) > 40
    Wd = torch.rand(S, S) * inner

    def losses(v):
        rgb = r.render_rgb(v, f, tex)[0]
        return -(rgb.sum(0) * inner).sum(), (r.render_depth(v, f)[0] * Wd).sum()

    v = v0.clone().requires_grad_(True)
    l_rgb, l_depth = losses(v)
    g_rgb, = torch.autograd.grad(l_rgb, v)
    g_depth, = torch.autograd.grad(l_depth, v)
    assert float(g_rgb.abs().sum()) > 0 and float(g_depth[..., 2].abs().sum()) > 0
    h = 1e-2
    for i in range(3):
        for k in range(3):
            vp, vm = v0.clone(), v0.clone()
            vp[0, i, k] += h
            vm[0, i, k] -= h
            with torch.no_grad():
                (rp, dp), (rm, dm) = losses(vp), losses(vm)
            for fd, g in (((rp - rm) / (2 * h), g_rgb[0, i, k]), ((dp - dm) / (2 * h), g_depth[0, i, k])):
                assert abs(float(fd) - float(g)) <= 2e-2 * max(1.0, abs(float(fd))), (i, k, float(fd), float(g))


def test_camera_position_gets_a_gradient():
    v, f = _cube_batch(1)
    eye = torch.tensor([1.0, 1.5, -2.5], requires_grad=True)
    r = nr.Renderer(image_size=32, camera_mode="look_at")
    r.eye = eye
    target = torch.zeros(1, 32, 32)
    target[:, 8:24, 8:24] = 1
    ((r(v, f, mode="silhouettes") - target) ** 2).sum().backward()
    assert eye.grad is not None and bool(torch.isfinite(eye.grad).all()) and float(eye.grad.abs().sum()) > 0


def _exact_outputs():
    """RGB, vertex and texture gradients of a batch, on 1 thread and on all of numba's threads."""
    import numba

    from lasor_trainer.neural_renderer import cpu_kernels
    from nr_testing import body_like_mesh

    v0, f = body_like_mesh(2)
    B = 4
    f = torch.from_numpy(f)[None]
    r = nr.Renderer(image_size=128, camera_mode="look_at")
    r.eye = nr.get_points_from_angles(3.0, 20, 30)
    out = {"n": numba.config.NUMBA_NUM_THREADS}
    keep = cpu_kernels.PARALLEL_MIN_WORK
    try:
        for name, min_work in (("one", 10**12), ("all", keep)):
            cpu_kernels.PARALLEL_MIN_WORK = min_work  # 1 / all threads (texture_kernels uses the same)
            torch.manual_seed(0)
            v = torch.from_numpy(v0)[None].repeat(B, 1, 1) + torch.linspace(-0.2, 0.2, B)[:, None, None]
            v.requires_grad_(True)
            tex = torch.rand(1, f.shape[1], 2, 2, 2, 3).repeat(B, 1, 1, 1, 1, 1).requires_grad_(True)
            rgb, depth, alpha = r(v, f, tex)
            ((rgb - torch.rand_like(rgb)) ** 2).sum().backward()
            out.update({name + "_rgb": rgb.detach().numpy(), name + "_gv": v.grad.numpy(),
                        name + "_gt": tex.grad.numpy()})
    finally:
        cpu_kernels.PARALLEL_MIN_WORK = keep
    return out


def test_rgb_kernels_exact_under_any_thread_count(tmp_path):
    """Forward and backward on 1 thread and on 3 or more (jobs split differently) give the same bits.
    In-process when numba may use several threads, else in a child process allowed 3."""
    import numba

    if numba.config.NUMBA_NUM_THREADS >= 2:
        z = _exact_outputs()
    else:
        here = os.path.dirname(os.path.abspath(__file__))
        out = tmp_path / "t.npz"
        code = ("import sys, numpy as np; sys.path.insert(0, sys.argv[2]); import test_nr_api as t; "
                "np.savez(sys.argv[1], **t._exact_outputs())")
        subprocess.run([sys.executable, "-c", code, str(out), here], check=True, timeout=900,
                       env=dict(os.environ, NUMBA_NUM_THREADS="3"))
        z = np.load(out)
    assert int(z["n"]) >= 2
    for k in ("rgb", "gv", "gt"):
        np.testing.assert_array_equal(z["one_" + k], z["all_" + k], err_msg=k)
    assert np.abs(z["one_gv"]).sum() > 0 and np.abs(z["one_gt"]).sum() > 0
