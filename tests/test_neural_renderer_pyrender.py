"""Forward agreement of the CPU neural renderer with pyrender (an independent OpenGL rasteriser).

Body mesh: the embedded SMPL-format body when shared/lasor_shared/data/*.npz exists, else a
body-like mesh of ellipsoids (~26k faces). Many random rigid poses and cameras, 256×256.
"""

import os

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

import numpy as np
import pytest
import torch

from lasor_shared.camera import opengl_camera_pose
from lasor_trainer.neural_renderer import Renderer
from nr_testing import body_like_mesh, body_mesh, embedded_body_path, offscreen_gl, random_view

pytestmark = pytest.mark.gl

S = 256
ORIG = 512
N_VIEWS = 10


@pytest.fixture(scope="module")
def gl():
    yield from offscreen_gl(S)


def _pyrender_depth(gl, v, f, K, R, t):
    pyrender, trimesh, r = gl
    s = S / ORIG
    scene = pyrender.Scene()
    # pyrender's DEPTH_ONLY pass culls back faces whatever SKIP_CULL_FACES says: give it both windings
    f2 = np.concatenate([f, f[:, ::-1]])
    node = scene.add(pyrender.Mesh.from_trimesh(trimesh.Trimesh(v, f2, process=False), smooth=False))
    cam = pyrender.IntrinsicsCamera(K[0, 0] * s, K[1, 1] * s, K[0, 2] * s, K[1, 2] * s, znear=0.05, zfar=100.0)
    scene.add(cam, pose=opengl_camera_pose(R, t))
    # SEG disables GL_MULTISAMPLE: coverage and depth are then sampled at pixel centres. (The
    # multisampled DEPTH_ONLY pass returns sample 0's depth, ≈(+0.375, +0.875) px off-centre on EGL.)
    flags = pyrender.RenderFlags.SEG | pyrender.RenderFlags.SKIP_CULL_FACES
    _, depth = r.render(scene, flags=flags, seg_node_map={node: (255, 255, 255)})
    return depth


@pytest.mark.parametrize("mesh", ["embedded_body", "body_like"])
def test_forward_matches_pyrender(gl, mesh):
    if mesh == "embedded_body":
        if embedded_body_path() is None:
            pytest.skip("no embedded body model in shared/lasor_shared/data yet")
        v0, f, name = body_mesh()
    else:
        (v0, f), name = body_like_mesh(4), "body_like_mesh(4)"
    rng = np.random.default_rng(0)
    ious, med_err, p99_err = [], [], []
    for _ in range(N_VIEWS):
        v, K, R, t = random_view(rng, v0, ORIG)
        ref = _pyrender_depth(gl, v, f, K, R, t)
        rend = Renderer(image_size=S, anti_aliasing=False, fill_back=True, K=K, R=R, t=t, orig_size=ORIG,
                        backend="cpu")
        vt = torch.from_numpy(v)[None]
        ft = torch.from_numpy(f)[None]
        sil = rend.render_silhouettes(vt, ft)[0].numpy()
        depth = rend.render_depth(vt, ft)[0].numpy()
        a, b = sil > 0.5, ref > 0
        iou = (a & b).sum() / (a | b).sum()
        ious.append(iou)
        both = a & b
        err = np.abs(depth[both] - ref[both])
        med_err.append(np.median(err))
        p99_err.append(np.percentile(err, 99))
        assert iou >= 0.99, f"IoU {iou:.4f} with pyrender ({name})"
        assert a.sum() > 2000, "the mesh should cover a good part of the image"
    print(f"[{name}] IoU min {min(ious):.5f} mean {np.mean(ious):.5f}; depth |err| median max "
          f"{max(med_err):.2e}, p99 max {max(p99_err):.2e}")
    assert min(ious) >= 0.999
    assert max(med_err) < 1e-4  # metres; camera depth is ~1.5–3 m
    assert max(p99_err) < 1e-3
