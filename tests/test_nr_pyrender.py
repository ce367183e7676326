"""Textured, lit RGB from lasor's neural_renderer API against pyrender (an independent OpenGL rasteriser).

Same camera (projection mode ↔ IntrinsicsCamera), same mesh, fill_back on both sides. Textures are
chosen so that OpenGL can draw exactly the same picture: texel (i, j, k) of a face holds
(i·C₀ + j·C₁ + k·C₂)/(T − 1), whose trilinear interpolation at the perspective-correct barycentrics
(b₀, b₁, b₂) is Σ bₖ·Cₖ — OpenGL's perspective-correct interpolation of corner colours Cₖ. The light
(ambient + directional, neural_renderer's per-face formula) is computed here in numpy for each winding
and baked into pyrender's corner colours; pyrender draws them unlit (RenderFlags.FLAT) with back-face
culling, so each pixel shows the winding that faces the camera, as fill_back does.

pyrender multisamples its colour pass; the test switches that off (GL_MULTISAMPLE stays disabled), so
OpenGL, like the neural renderer, shades each pixel once at its centre. Checked: silhouettes
(pyrender's SEG pass) IoU ≥ 0.999; at every pixel both cover, the colour within pyrender's 8-bit
quantisation (½ level), except pixels where the two pick different faces on a shared edge (< 1 %).
"""

import os

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

import numpy as np
import pytest
import torch
from nr_testing import body_mesh, cube_mesh, offscreen_gl, random_view, silhouette_iou

import lasor_trainer.neural_renderer as nr

pytestmark = pytest.mark.gl

S = 128
ORIG = 256
LIGHT_DIR = np.array([0.3, -0.6, 0.75])


@pytest.fixture(scope="module")
def gl():
    nr.warmup_rgb()
    yield from offscreen_gl(S)


def _light(v, f):
    """neural_renderer's per-face light for faces f: 0.5 + 0.5·max(0, n·d), n = (v0 − v1) × (v2 − v1)."""
    p = v[f].astype(np.float64)
    n = np.cross(p[:, 0] - p[:, 1], p[:, 2] - p[:, 1])
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-5)
    return 0.5 + 0.5 * np.maximum(n @ LIGHT_DIR, 0.0)


def _pyrender(gl, v, f, corner_colours, K, R, t):
    """(rgb (S,S,3) float in [0,1], silhouette (S,S) bool) from pyrender, both windings, culled, unlit."""
    pyrender, trimesh, r = gl
    from lasor_shared.camera import opengl_camera_pose

    s = S / ORIG
    cam = pyrender.IntrinsicsCamera(K[0, 0] * s, K[1, 1] * s, K[0, 2] * s, K[1, 2] * s, znear=0.05, zfar=100.0)
    pose = opengl_camera_pose(R, t)
    fr = f[:, ::-1]
    pos = np.concatenate([v[f], v[fr]]).reshape(-1, 3).astype(np.float32)
    lit = np.concatenate([_light(v, f)[:, None, None] * corner_colours,
                          _light(v, fr)[:, None, None] * corner_colours[:, ::-1]]).reshape(-1, 3)
    rgba = np.concatenate([lit, np.ones((len(lit), 1))], 1).astype(np.float32)
    prim = pyrender.Primitive(positions=pos, color_0=rgba,
                              indices=np.arange(len(pos)).reshape(-1, 3), mode=4,
                              material=pyrender.MetallicRoughnessMaterial(baseColorFactor=[1.0, 1.0, 1.0, 1.0]))
    scene = pyrender.Scene(bg_color=[0.0, 0.0, 0.0, 1.0])
    scene.add(pyrender.Mesh([prim]))
    scene.add(cam, pose=pose)
    import pyrender.renderer as prr

    enable = prr.glEnable
    prr.glEnable = lambda cap: prr.glDisable(cap) if cap == prr.GL_MULTISAMPLE else enable(cap)  # 1 sample/pixel
    try:
        rgb, _ = r.render(scene, flags=pyrender.RenderFlags.FLAT)
    finally:
        prr.glEnable = enable
    # silhouette from the single-sample SEG pass (the colour pass is multisampled)
    seg = pyrender.Scene()
    node = seg.add(pyrender.Mesh.from_trimesh(trimesh.Trimesh(v, np.concatenate([f, fr]), process=False), smooth=False))
    seg.add(cam, pose=pose)
    _, depth = r.render(seg, flags=pyrender.RenderFlags.SEG | pyrender.RenderFlags.SKIP_CULL_FACES,
                        seg_node_map={node: (255, 255, 255)})
    return rgb.astype(np.float64) / 255.0, depth > 0


def _compare(gl, v, f, T, rng, n_views):
    F = len(f)
    C = rng.uniform(0.1, 0.95, size=(F, 3, 3))  # corner colours
    idx = np.indices((T, T, T)).reshape(3, -1).T / (T - 1)  # (T³, 3) texel coordinates / (T − 1)
    tex = np.einsum("tk,fkc->ftc", idx, C).reshape(1, F, T, T, T, 3)
    tex_t, f_t = torch.tensor(tex, dtype=torch.float32), torch.from_numpy(f)[None]
    stats = []
    for _ in range(n_views):
        vv, K, R, t = random_view(rng, v, ORIG)
        rend = nr.Renderer(image_size=S, anti_aliasing=False, fill_back=True, K=K, R=R, t=t, orig_size=ORIG,
                           light_direction=LIGHT_DIR.tolist(), backend="cpu")
        vt = torch.from_numpy(vv)[None]
        rgb, _, alpha = rend.render(vt, f_t, tex_t)
        rgb = rgb[0].permute(1, 2, 0).numpy()
        ref_rgb, ref_sil = _pyrender(gl, vv, f, C, K, R, t)
        iou = silhouette_iou(alpha[0].numpy()[None], ref_sil[None].astype(np.float32))
        both = (alpha[0].numpy() > 0) & ref_sil
        inner = both
        err = np.abs(rgb[inner] - ref_rgb[inner])
        off = (err.max(1) > 1.5 / 255).mean()  # pixels whose centre is on an edge shared by two faces
        stats.append((iou, int(inner.sum()), float(off), float(np.median(err))))
        lit = rgb[inner].max()
        assert lit > 0.5, "the mesh should be lit"
    return stats


@pytest.mark.parametrize("mesh", ["embedded_body", "cube"])
def test_textured_rgb_matches_pyrender(gl, mesh):
    rng = np.random.default_rng(3)
    if mesh == "cube":
        v, f = cube_mesh()
        stats = _compare(gl, v, f, 4, rng, 3)
        min_inner = 1500
    else:
        v, f, _ = body_mesh()
        stats = _compare(gl, v, f, 2, rng, 2)
        min_inner = 1500
    print(mesh, [(round(i, 5), n, round(o, 5), round(md * 255, 3)) for i, n, o, md in stats])
    for iou, n_inner, off, med_err in stats:
        assert iou >= 0.999
        assert n_inner >= min_inner
        assert off < 0.01  # all but edge-tie pixels within 1.5/255 (8-bit output of pyrender)
        assert med_err <= 0.6 / 255
