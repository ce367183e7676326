"""The body-model layer: loading through smplx, the embedded model's anatomy, errors."""

import os
import pickle
import sys
import types

import numpy as np
import pytest
import torch

from lasor_shared.body_model import embedded_model_path, load_body_model, read_model_file
from lasor_shared.errors import LasorError
from lasor_shared.keypoints import COCO17_NAMES, SMPL24_NAMES

J = {n: i for i, n in enumerate(SMPL24_NAMES)}


@pytest.fixture(scope="module")
def model():
    return load_body_model(batch_size=4)


def test_embedded_model_loads_through_smplx(model):
    import smplx

    assert isinstance(model, smplx.SMPL)
    out = model.pose(torch.zeros(3, 72), torch.randn(3, 10))
    assert out.vertices.shape == (3, 13718, 3)
    assert out.joints.shape == (3, 24, 3)
    assert model.keypoints(out).shape == (3, 17, 3)
    assert model.faces.shape == (27420, 3)
    assert len(model.sha256) == 64 and model.model_id == "lasor-anny-neutral"


def test_plain_smplx_loads_the_file_unchanged():
    import smplx

    data = dict(np.load(embedded_model_path()))
    m = smplx.SMPL(model_path="", data_struct=smplx.utils.Struct(**data))
    assert m().vertices.shape == (1, 13718, 3)


@pytest.mark.parametrize("gender", ["male", "female"])
def test_gendered_models(gender):
    m = load_body_model(gender=gender)
    assert m.v_template.shape == (13718, 3) and m.gender == gender


def test_t_pose_frame_and_scale(model):
    out = model.pose(torch.zeros(1, 72), torch.zeros(1, 10))
    j = out.joints[0].numpy()
    v = out.vertices[0].numpy()
    height = v[:, 1].max() - v[:, 1].min()
    assert 1.5 < height < 1.9, height
    assert j[J["head"], 1] > j[J["pelvis"], 1] > j[J["left_ankle"], 1]  # y up
    assert j[J["left_shoulder"], 0] > 0 > j[J["right_shoulder"], 0]  # body's left on +x
    toes = j[J["left_foot"]] - j[J["left_ankle"]]
    assert toes[2] > abs(toes[0])  # feet point forward: the body faces +z
    for side, sign in (("left", 1), ("right", -1)):
        arm = j[J[f"{side}_wrist"]] - j[J[f"{side}_shoulder"]]
        angle = np.degrees(np.arctan2(abs(arm[1]), sign * arm[0]))
        assert angle < 10, f"{side} arm {angle:.1f} degrees from horizontal"
    kp = model.keypoints(out)[0].numpy()
    names = {n: i for i, n in enumerate(COCO17_NAMES)}
    assert kp[names["left_eye"], 0] > 0 > kp[names["right_eye"], 0]
    assert kp[names["nose"], 2] > kp[names["left_ear"], 2]  # the nose is in front of the ears


def test_pose_bends_the_expected_limb(model):
    pose = torch.zeros(1, 72)
    pose[0, 3 * J["left_elbow"] + 1] = -1.5  # flex the left elbow about y
    rest = model.pose(torch.zeros(1, 72), torch.zeros(1, 10)).joints[0]
    bent = model.pose(pose, torch.zeros(1, 10)).joints[0]
    moved = (bent - rest).norm(dim=-1)
    assert moved[J["left_wrist"]] > 0.15
    assert moved[J["right_wrist"]] < 1e-5 and moved[J["left_elbow"]] < 1e-5


def test_betas_change_body_size(model):
    def height(b0):
        betas = torch.zeros(1, 10)
        betas[0, 0] = b0
        v = model.pose(torch.zeros(1, 72), betas).vertices[0]
        return float(v[:, 1].max() - v[:, 1].min())

    assert abs(height(2.0) - height(-2.0)) > 0.1


def _write_npz(path, **overrides):
    data = dict(np.load(embedded_model_path()))
    data.update(overrides)
    for k, v in list(data.items()):
        if v is None:
            del data[k]
    np.savez(path, **data)
    return str(path)


@pytest.mark.parametrize("overrides, message", [
    ({"J_regressor": None}, "missing SMPL key(s) J_regressor"),
    ({"weights": np.zeros((13718, 23), np.float32)}, "weights has shape (13718, 23)"),
    ({"v_template": np.full((13718, 3), np.nan, np.float32)}, "v_template contains NaN"),
    ({"f": np.array([[0, 1, 99999]])}, "f must be (F, 3) vertex indices"),
])
def test_bad_model_files(tmp_path, overrides, message):
    path = _write_npz(tmp_path / "bad.npz", **overrides)
    with pytest.raises(LasorError) as e:
        load_body_model(path)
    assert message in str(e.value) and "bad.npz" in str(e.value)


def test_missing_and_unknown_files(tmp_path):
    with pytest.raises(LasorError, match="not found"):
        load_body_model(str(tmp_path / "nope.npz"))
    (tmp_path / "m.obj").write_text("v 0 0 0\n")
    with pytest.raises(LasorError, match=".npz or .pkl"):
        load_body_model(str(tmp_path / "m.obj"))
    with pytest.raises(LasorError, match="gender"):
        load_body_model(gender="other")


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/lasor_pwned",))


def test_pickle_never_executes_code(tmp_path):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"v_template": _Evil()}))
    with pytest.raises(LasorError, match="refusing to load"):
        read_model_file(str(path))
    assert not os.path.exists("/tmp/lasor_pwned")


def test_official_style_pickle_with_chumpy_and_sparse(tmp_path, monkeypatch):
    """An SMPL-style pickle: chumpy arrays and a scipy sparse J_regressor, 6890 vertices."""
    import scipy.sparse

    src = dict(np.load(embedded_model_path()))
    keep = 6890
    faces = src["f"][(src["f"] < keep).all(1)]
    weights = src["weights"][:keep] + 1e-3
    weights /= weights.sum(1, keepdims=True)

    chumpy = types.ModuleType("chumpy")
    ch = types.ModuleType("chumpy.ch")

    class Ch:  # pickles like chumpy.ch.Ch: state dict holding the array under 'x'
        def __init__(self, x):
            self.x = x

        def __reduce__(self):
            return (Ch, (), {"x": self.x})

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    ch.Ch = Ch
    monkeypatch.setitem(sys.modules, "chumpy", chumpy)
    monkeypatch.setitem(sys.modules, "chumpy.ch", ch)
    jreg = src["J_regressor"][:, :keep] + 1e-4
    raw = {
        "v_template": Ch(src["v_template"][:keep].astype(np.float64)),
        "shapedirs": Ch(src["shapedirs"][:keep].astype(np.float64)),
        "posedirs": src["posedirs"][:keep].astype(np.float64),
        "J_regressor": scipy.sparse.csc_matrix(jreg / jreg.sum(1, keepdims=True)),
        "weights": Ch(weights), "kintree_table": src["kintree_table"], "f": faces.astype(np.uint32),
    }
    path = tmp_path / "SMPL_NEUTRAL.pkl"
    path.write_bytes(pickle.dumps(raw, protocol=2))
    monkeypatch.delitem(sys.modules, "chumpy")
    monkeypatch.delitem(sys.modules, "chumpy.ch")

    m = load_body_model(str(path))
    out = m.pose(torch.zeros(1, 72), torch.zeros(1, 10))
    assert out.vertices.shape == (1, keep, 3)
    kp = m.keypoints(out)[0]
    # real SMPL: COCO nose is SMPL vertex 332; COCO left shoulder is SMPL joint 16
    assert torch.allclose(kp[0], out.vertices[0, 332])
    assert torch.allclose(kp[COCO17_NAMES.index("left_shoulder")], out.joints[0, 16])


# ---------------------------------------------------------------- the embedded shape space (issue 10, item 0)

def _demo_betas_std():
    import yaml

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "manifests", "demo.yaml")) as f:
        return float(yaml.safe_load(f)["shapes"]["betas_std"])


@pytest.mark.parametrize("gender", ["neutral", "male", "female"])
def test_shape_components_vary_more_than_size(gender, record_property):
    """Components beyond the first move the vertices well beyond a uniform scaling (per SD, RMS over
    vertices, after the least-squares translation + isotropic scale about the centroid).

    The models built from the old WHO-calibrated population had none ≥ 10 mm (5.3, 7.2, 6.1, 3.6 mm).
    Issue 10 asks for 4 components ≥ 10 mm; the rebuilt population reaches 2 (≈ 15–20 mm) and 3 more
    ≥ 5 mm (see the README), which is what this guards."""
    from lasor_datagen.anny_builder import shape_component_rms_mm

    data = np.load(embedded_model_path(gender))
    rms = shape_component_rms_mm(data["v_template"].astype(np.float64), data["shapedirs"].astype(np.float64))
    print(f"{gender}: component RMS beyond scale (mm/SD): " + " ".join(f"{r:.1f}" for r in rms))
    record_property("component_rms_mm", rms.round(2).tolist())
    assert (rms[1:] >= 10.0).sum() >= 2 and (rms[1:] >= 5.0).sum() >= 4, rms
    assert np.all(np.diff(data["explained_variance_ratio"]) <= 0)


@pytest.mark.parametrize("gender", ["neutral", "male", "female"])
def test_shape_space_spectrum_is_rotation_invariant(gender, record_property):
    """The per-component RMS above depends on how the components are rotated among themselves (a
    rotation of N(0, I) betas leaves the bodies' distribution unchanged); the beyond-scale spectrum
    does not, and both carry the same total."""
    from lasor_datagen.anny_builder import shape_component_rms_mm, shape_space_spectrum_mm

    data = np.load(embedded_model_path(gender))
    vt, dirs = data["v_template"].astype(np.float64), data["shapedirs"].astype(np.float64)
    spectrum, rms = shape_space_spectrum_mm(vt, dirs), shape_component_rms_mm(vt, dirs)
    print(f"{gender}: beyond-scale spectrum (mm/SD): " + " ".join(f"{r:.1f}" for r in spectrum))
    record_property("shape_space_spectrum_mm", spectrum.round(2).tolist())
    assert np.all(np.diff(spectrum) <= 1e-9) and spectrum[-1] > 0
    np.testing.assert_allclose((spectrum ** 2).sum(), (rms ** 2).sum(), rtol=1e-9)
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(10, 10)))
    rotated = dirs @ q
    np.testing.assert_allclose(shape_space_spectrum_mm(vt, rotated), spectrum, rtol=1e-9)
    assert np.abs(shape_component_rms_mm(vt, rotated) - rms).max() > 1.0


@pytest.mark.parametrize("gender", ["neutral", "male", "female"])
def test_mean_body_is_far_from_bodies_of_the_demo_prior(gender, record_property):
    """PVE-T-SC (trainer metric) of the mean body against T-posed bodies with betas ~ N(0, std²), std
    from the demo recipe: ≥ 20 mm, so that predicting the mean shape cannot score like real shape."""
    from lasor_trainer.metrics import pve_t_sc, tpose_vertices

    m = load_body_model(gender=gender, batch_size=256)
    betas = np.random.default_rng(0).normal(0.0, _demo_betas_std(), (256, 10))
    bodies = tpose_vertices(m, betas)
    mean = np.broadcast_to(tpose_vertices(m, np.zeros((1, 10))), bodies.shape)
    err = 1000 * pve_t_sc(mean, bodies).mean()
    print(f"{gender}: PVE-T-SC of the mean body vs the demo prior: {err:.1f} mm")
    record_property("pve_t_sc_mean_body_mm", float(err))
    assert err >= 20.0
