"""neural_renderer's four example behaviours, run through examples/neural_renderer_examples.py (the
drop-in script: only its import line differs from upstream code) at low resolution:
1. a ring of look_at cameras renders the mesh; 2. vertices converge to a reference silhouette;
3. textures converge to reference images; 4. the camera position converges to a reference image.
The pictures at full size: docs/neural_renderer_examples.png (made by the script).
"""

import os
import sys

import numpy as np
import pytest
import torch
from nr_testing import silhouette_iou

import lasor_trainer.neural_renderer as nr

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples"))
import neural_renderer_examples as ex  # noqa: E402

S = 48


@pytest.fixture(scope="module")
def objs(tmp_path_factory):
    nr.warmup()
    nr.warmup_rgb()
    d = tmp_path_factory.mktemp("objs")
    return {"body": ex.body_obj(str(d)), "sphere": ex.sphere_obj(str(d))}


def test_example1_ring_of_look_at_cameras(objs):
    images, eyes = ex.example1(objs["body"], S, 4)
    assert images.shape == (4, 3, S, S)
    alpha = (images.sum(1) > 0).float()
    assert all(a.sum() > 40 for a in alpha) and float(alpha[:, [0, -1]].sum() + alpha[:, :, [0, -1]].sum()) == 0
    assert min(float((images[i] - images[j]).abs().sum()) for i in range(4) for j in range(i)) > 10
    # the same ring as one batch, eyes given as a (B, 3) tensor
    v, f = nr.load_obj(objs["body"])
    r = nr.Renderer(image_size=S, camera_mode="look_at")
    r.eye = torch.tensor(eyes, dtype=torch.float32)
    batch = r(v[None].expand(4, -1, -1), f[None].expand(4, -1, -1), torch.ones(4, f.shape[0], 2, 2, 2, 3))[0]
    np.testing.assert_allclose(batch.numpy(), images.numpy(), atol=1e-5)


def test_example2_vertices_converge_to_a_silhouette(objs):
    losses, ref, first, final = ex.example2(objs["sphere"], objs["body"], S, 100, lr=0.02)
    iou0, iou1 = silhouette_iou(first, ref), silhouette_iou(final, ref)
    print(f"example 2: loss {losses[0]:.0f} → {losses[-1]:.0f}, IoU {iou0:.3f} → {iou1:.3f}")
    assert losses[-1] < 0.1 * losses[0]
    assert iou1 > iou0 + 0.4 and iou1 > 0.7


def test_example3_textures_converge_to_images(objs):
    losses, refs, first, final = ex.example3(objs["sphere"], S, 40)
    e0, e1 = float(((first - refs) ** 2).sum()), float(((final - refs) ** 2).sum())
    print(f"example 3: error on 4 fixed views {e0:.0f} → {e1:.0f}")
    assert e1 < 0.05 * e0


def test_example4_camera_converges_to_a_reference(objs):
    target = torch.tensor(nr.get_points_from_angles(2.732, 30, -15))
    start = nr.get_points_from_angles(3.5, 15, -35)  # farther, 15° lower, 20° to the side
    losses, eyes, ref, first, final = ex.example4(objs["body"], 64, 60, start=start)
    print(f"example 4: loss {losses[0]:.0f} → {losses[-1]:.0f}, eye error "
          f"{float((torch.tensor(start) - target).norm()):.3f} → {float((eyes[-1] - target).norm()):.3f}")
    assert min(losses[-10:]) < 0.2 * losses[0]
    assert float((eyes[-1] - target).norm()) < 0.3 * float((torch.tensor(start) - target).norm())
