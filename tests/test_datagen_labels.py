"""Visibility codes and masks: pure label logic on hand-made buffers, then real renders (GL) of
hand-built scenes with known answers."""

import numpy as np
import pytest

from lasor_datagen.labels import COCO17_OWN, SMPL24_MARGIN, SMPL24_OWN, masks, occluder_type, own_parts, visibility
from lasor_datagen.render import OBJECT0, PERSON0, TARGET
from lasor_shared.keypoints import (SMPL24_NAMES, VIS_OBJECT, VIS_OUTSIDE, VIS_PERSON, VIS_SELF,
                                    VIS_VISIBLE)

J = {n: i for i, n in enumerate(SMPL24_NAMES)}


def test_own_parts_follow_the_tree():
    assert own_parts(J["left_knee"]) == {J["left_knee"], J["left_hip"], J["left_ankle"]}
    assert own_parts(J["pelvis"]) == {J["pelvis"], J["left_hip"], J["right_hip"], J["spine1"]}


def test_codes_on_handmade_buffers():
    H = W = 8
    part = np.zeros((H, W), np.uint8)
    tdepth = np.zeros((H, W), np.float32)
    labels = np.zeros((H, W), np.uint8)
    depth = np.zeros((H, W), np.float32)
    # column 1: the joint's own part (left knee) at 2.9 m → visible
    part[:, 1], tdepth[:, 1], labels[:, 1], depth[:, 1] = 1 + J["left_knee"], 2.9, TARGET, 2.9
    # column 2: another limb (right knee) 0.2 m in front of the joint → self-occluded
    part[:, 2], tdepth[:, 2], labels[:, 2], depth[:, 2] = 1 + J["right_knee"], 2.8, TARGET, 2.8
    # column 3: own part, but a person in front of it → person
    part[:, 3], tdepth[:, 3], labels[:, 3], depth[:, 3] = 1 + J["left_knee"], 2.9, PERSON0, 2.0
    # column 4: no target surface, object in front of the joint → object
    labels[:, 4], depth[:, 4] = OBJECT0 + 1, 2.5
    # column 5: no target surface, object BEHIND the joint → visible
    labels[:, 5], depth[:, 5] = OBJECT0, 3.5
    # column 6: foreign part but only 1 cm in front → visible
    part[:, 6], tdepth[:, 6], labels[:, 6], depth[:, 6] = 1 + J["right_knee"], 2.99, TARGET, 2.99
    uv = np.array([[1.5, 3.5], [2.5, 3.5], [3.5, 3.5], [4.5, 3.5], [5.5, 3.5], [6.5, 3.5], [8.2, 3.5], [1.5, 3.5]])
    z = np.array([3.0] * 7 + [-1.0])
    own = SMPL24_OWN[[J["left_knee"]] * 8]
    codes = visibility(uv, z, part, tdepth, labels, depth, own)
    assert codes.tolist() == [VIS_VISIBLE, VIS_SELF, VIS_PERSON, VIS_OBJECT, VIS_VISIBLE, VIS_VISIBLE,
                              VIS_OUTSIDE, VIS_OUTSIDE]
    # a surface keypoint (nose) uses the depth test: the back of the head 0.2 m nearer → self
    tol = np.array([0.04])
    code = visibility(np.array([[1.5, 1.5]]), np.array([3.1]), part, tdepth, labels, depth, COCO17_OWN[[0]], tol)
    assert code.tolist() == [VIS_SELF]


def test_masks_and_occluder_type():
    part = np.array([[0, 1, 1, 1]], np.uint8)
    labels = np.array([[OBJECT0, TARGET, PERSON0, OBJECT0]], np.uint8)
    mask, n_am, n_mod, hp, ho = masks(part, labels)
    assert mask.tolist() == [[8, 3, 6, 10]]
    assert (n_am, n_mod, hp, ho) == (3, 1, 1, 1)
    assert occluder_type(n_am, hp, ho, 0.005) == 3 and occluder_type(n_am, 0, 0, 0.005) == 0


# ---------------------------------------------------------------- real renders (GL)

@pytest.fixture(scope="module")
def scene():
    pytest.importorskip("pyrender")
    import torch

    from lasor_datagen.gl import select_gl_platform
    from lasor_datagen.render import SceneRenderer
    from lasor_datagen.worker import _Context  # noqa: F401  (same imports as the workers)
    from lasor_shared.body_model import load_body_model

    select_gl_platform()
    model = load_body_model()
    with torch.no_grad():
        out = model.pose(torch.zeros(1, 72), torch.zeros(1, 10))
    v, j = out.vertices[0].numpy(), out.joints[0].numpy()
    part = model.lbs_weights.argmax(1).numpy()
    r = SceneRenderer(128, model.faces, part, 1, 1, v.shape[0])
    yield r, v, j
    r.close()


def _codes(r, v, j, cam, persons=(), objects=()):
    from lasor_shared.camera import project

    part, tdepth, labels, depth = r.render(cam[0], cam[1], cam[2], v, persons, objects)
    uv, z = project(j.astype(np.float64), *cam)
    return visibility(uv, z, part, tdepth, labels, depth, SMPL24_OWN, margin=SMPL24_MARGIN), labels


def _front_camera(v, azimuth=0.0):
    from lasor_shared.camera import intrinsics, orbit_camera

    centre = (v.min(0) + v.max(0)) / 2
    R, t = orbit_camera(azimuth, 0.0, 0.0, 4.0, target=centre)
    return intrinsics(100.0, 128, 128), R, t


@pytest.mark.gl
def test_box_exactly_covering_one_joint(scene):
    from lasor_datagen.scene import object_vertices, pack_object_params

    r, v, j = scene
    cam = _front_camera(v)
    codes, _ = _codes(r, v, j, cam)
    assert codes[J["left_wrist"]] == VIS_VISIBLE and codes[J["pelvis"]] == VIS_VISIBLE
    wrist = j[J["left_wrist"]].astype(np.float64)
    cam_pos = -cam[1].T @ cam[2]
    ray = (wrist - cam_pos) / np.linalg.norm(wrist - cam_pos)
    box = pack_object_params(wrist - 0.3 * ray, [0.08, 0.08, 0.02], [0, 0, 0])   # on the line of sight
    codes, labels = _codes(r, v, j, cam, objects=[("box", object_vertices("box", box))])
    assert codes[J["left_wrist"]] == VIS_OBJECT
    others = np.delete(codes, J["left_wrist"])
    assert not np.any(others == VIS_OBJECT) and np.all(others > VIS_OUTSIDE)


@pytest.mark.gl
def test_body_behind_another(scene):
    r, v, j = scene
    cam = _front_camera(v)
    front = v + np.array([0.0, 0.0, 1.0], np.float32)            # same body 1 m nearer the camera
    codes, labels = _codes(r, v, j, cam, persons=[front])
    assert (labels == TARGET).sum() < 0.15 * (labels > 0).sum()
    assert np.all(codes[[J[n] for n in ("pelvis", "spine2", "neck", "left_knee", "left_hip")]] == VIS_PERSON)
    # moved 1.2 m to the side the same person hides nothing
    beside = v + np.array([1.9, 0.0, 1.0], np.float32)
    codes, _ = _codes(r, v, j, cam, persons=[beside])
    assert not np.any(codes == VIS_PERSON)


@pytest.mark.gl
def test_self_occlusion_from_the_side(scene):
    r, v, j = scene
    codes, _ = _codes(r, v, j, _front_camera(v, azimuth=np.pi / 2))    # camera on the body's left
    assert codes[J["left_hip"]] == VIS_VISIBLE and codes[J["left_shoulder"]] == VIS_VISIBLE
    assert codes[J["right_hip"]] == VIS_SELF and codes[J["right_knee"]] == VIS_SELF
    codes, _ = _codes(r, v, j, _front_camera(v, azimuth=np.pi))         # from behind: nothing hides joints
    assert codes[J["pelvis"]] == VIS_VISIBLE and codes[J["head"]] == VIS_VISIBLE
    assert codes[J["left_shoulder"]] == VIS_VISIBLE and codes[J["right_shoulder"]] == VIS_VISIBLE


def test_object_meshes_are_closed_and_outward():
    from lasor_datagen.scene import object_faces, object_vertices, pack_object_params

    for kind in ("box", "cylinder", "sphere", "slab", "prism"):
        v = object_vertices(kind, pack_object_params([0, 0, 0], [1, 1, 1], [0, 0, 0], np.linspace(0.5, 1, 8)))
        t = v[object_faces(kind)].astype(np.float64)
        volume = np.einsum("ij,ij->i", t[:, 0], np.cross(t[:, 1], t[:, 2])).sum() / 6
        assert volume > 0.3, kind                               # counter-clockwise from outside


@pytest.mark.gl
def test_fast_pass_matches_pyrender(scene):

    from lasor_datagen.scene import object_vertices, pack_object_params

    r, v, j = scene
    cam = _front_camera(v, azimuth=0.7)
    obj = object_vertices("prism", pack_object_params(j[0] + [0.1, 0.2, 0.6], [0.3, 0.5, 0.2], [0.3, 0.2, 0.1],
                                                       np.linspace(0.5, 1, 8)))
    person = v + np.array([0.4, 0.0, 1.2], np.float32)
    fast = r.render(*cam, v, [person], [("prism", obj)])
    r.fast = False
    try:
        slow = r.render(*cam, v, [person], [("prism", obj)])
    finally:
        r.fast = True
    part, tdepth, labels, depth = fast
    assert np.array_equal(part, slow[0]) and np.array_equal(labels, slow[2])
    # depths: the fast path reads a single-sample depth buffer, pyrender its resolved 4× one; they may
    # differ by a 24-bit depth step (≈ 2e-5 m at 4 m with znear 0.05), never in which pixels are hit
    for a, b in ((tdepth, slow[1]), (depth, slow[3])):
        assert np.array_equal(a > 0, b > 0) and np.abs(a - b).max() < 1e-4
    assert set(np.unique(fast[2])) == {0, TARGET, PERSON0, OBJECT0}
