"""The embedded model against anny itself (an independent implementation). Needs the `anny` extra."""

import json

import numpy as np
import pytest
import torch

anny = pytest.importorskip("anny")

from lasor_datagen import anny_builder as ab  # noqa: E402
from lasor_shared.body_model import embedded_model_path, load_body_model  # noqa: E402
from lasor_shared.keypoints import SMPL24_PARENTS  # noqa: E402
from lasor_trainer.rotations import axis_angle_to_matrix  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def anny_model():
    return ab.load_anny()


@pytest.fixture(autouse=True)
def _no_grad():
    with torch.no_grad():
        yield


@pytest.fixture(scope="module")
def smpl():
    return load_body_model()


def _to_smpl_frame(smpl, x):
    meta = smpl.meta["anny_to_smpl"]
    return x @ np.array(meta["rotation"]).T + np.array(meta["offset"])


def test_shapes_from_betas_match_anny(anny_model, smpl, record_property):
    phen = ab.sample_phenotypes(anny_model, 64, "neutral", seed=1234)  # not the build's seed
    verts, _ = ab.tposed_bodies(anny_model, phen)
    verts = verts + np.array(smpl.meta["anny_to_smpl"]["offset"])
    dirs = smpl.shapedirs.numpy().reshape(-1, 10)
    betas, *_ = np.linalg.lstsq(dirs, (verts - smpl.v_template.numpy()).reshape(64, -1).T, rcond=None)
    out = smpl.pose(torch.zeros(64, 72), torch.tensor(betas.T, dtype=torch.float32))
    err = np.linalg.norm(out.vertices.numpy() - verts, axis=-1) * 1000
    p99 = np.percentile(err, 99)
    print(f"shape reconstruction vs anny: mean {err.mean():.2f} mm, 99% {p99:.2f} mm, max {err.max():.2f} mm")
    record_property("shape_error_mm", [float(err.mean()), float(p99), float(err.max())])
    # 10 components of a population varied in many ways (99.85% of its variance): fresh bodies of the
    # same population come back to a few mm; the worst vertices are fingertips and the crown.
    assert err.mean() < 5.0 and p99 < 25.0 and err.max() < 80.0
    assert np.abs(betas).max() < 5  # betas of real adults stay in a N(0,1)-like range


def _world_rotations(pose):
    local = axis_angle_to_matrix(torch.as_tensor(pose, dtype=torch.float64).reshape(-1, 24, 3)).numpy()
    world = np.zeros_like(local)
    for j, p in enumerate(SMPL24_PARENTS):
        world[:, j] = local[:, j] if p < 0 else world[:, p] @ local[:, j]
    return world


def test_posing_matches_anny(anny_model, smpl):
    rng = np.random.default_rng(7)
    B = 8
    pose = rng.normal(0, 0.35, (B, 72))
    pose[:, :3] = rng.normal(0, 0.5, (B, 3))
    phen = ab.sample_phenotypes(anny_model, B, "neutral", seed=99)
    labels = list(anny_model.bone_labels)
    coeffs = ab.blendshape_coefficients(anny_model, phen)
    rest = anny_model.get_rest_model(coeffs)
    tpose = ab.tpose_world_rotations(rest["rest_bone_heads"].numpy(), labels, anny_model.bone_parents)
    C = ab.ANNY_TO_SMPL
    G = _world_rotations(pose)[:, ab.bone_joint_index(labels)]  # (B,53,3,3) in SMPL's frame
    world = np.einsum("ij,bnjk,kl->bnil", C.T, G, C) @ tpose
    v_anny, _, _ = ab.pose_anny_world(anny_model, coeffs, world)
    v_anny = _to_smpl_frame(smpl, v_anny)

    t_verts, _ = ab.tposed_bodies(anny_model, phen)
    t_verts = t_verts + np.array(smpl.meta["anny_to_smpl"]["offset"])
    dirs = smpl.shapedirs.numpy().reshape(-1, 10)
    betas, *_ = np.linalg.lstsq(dirs, (t_verts - smpl.v_template.numpy()).reshape(B, -1).T, rcond=None)
    out = smpl.pose(torch.tensor(pose, dtype=torch.float32), torch.tensor(betas.T, dtype=torch.float32))
    v_smpl = out.vertices.numpy()
    v_smpl = v_smpl - v_smpl.mean(1, keepdims=True) + v_anny.mean(1, keepdims=True)  # global offset only
    err = np.linalg.norm(v_smpl - v_anny, axis=-1) * 1000
    print(f"posed SMPL-format model vs posed anny: mean {err.mean():.2f} mm, max {err.max():.2f} mm")
    assert err.mean() < 10.0 and np.percentile(err, 99) < 40.0


def test_builder_cli_writes_a_loadable_model(tmp_path):
    from click.testing import CliRunner

    from lasor_datagen.cli import main

    out = tmp_path / "m.npz"
    result = CliRunner().invoke(main, ["body-model", "build", "--from-anny", str(out), "--shapes", "80"])
    assert result.exit_code == 0, result.output
    assert "explained variance" in result.output
    m = load_body_model(str(out))
    meta = json.loads(str(np.load(out)["lasor_meta"]))
    assert meta["n_shape_samples"] == 80 and sum(meta["explained_variance_ratio_10"]) > 0.99
    shipped = load_body_model()
    # a different sample of the same population gives nearly the same mean body
    assert np.abs(m.v_template.numpy() - shipped.v_template.numpy()).mean() < 0.01
    assert embedded_model_path().endswith("anny_neutral_smpl.npz")
