"""Pose library, mirroring, joint limits and the external pose sources (AMASS, 3DPW, arrays)."""

import pickle

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from lasor_datagen.poses import (JOINT_LIMITS, LIBRARY_GROUPS, LIBRARY_NAMES, LIBRARY_POSES, PoseSampler,
                                 add_joint_noise, load_pose_file, mirror_pose, sample_library_pose,
                                 slerp_pose)
from lasor_datagen.recipe import PosesCfg, PoseSourceCfg
from lasor_shared.errors import LasorError


GROUND_GROUPS = {"sitting_ground", "lying_back", "lying_side", "lying_front"}


def test_library_counts_groups_and_activities():
    assert len(LIBRARY_POSES) >= 150 and len(set(LIBRARY_NAMES)) == len(LIBRARY_NAMES)
    groups = set(LIBRARY_GROUPS)
    assert len(groups) >= 12
    assert {"standing", "walking", "running", "sitting_chair", "sitting_ground", "crouching", "kneeling",
            "lying_back", "lying_side", "lying_front", "bending", "reaching_carrying", "sports", "dancing",
            "fighting", "phone_desk"} <= groups
    assert min(LIBRARY_GROUPS.count(g) for g in groups) >= 4          # blending needs partners
    for activity in ("throw", "kick", "bat", "ski", "cycle", "climb", "box", "phone", "desk", "carry", "pick_up"):
        assert any(activity in n for n in LIBRARY_NAMES), activity


def test_library_is_finite_and_inside_joint_limits():
    lo, hi = JOINT_LIMITS
    assert LIBRARY_POSES.shape == (len(LIBRARY_NAMES), 72) and np.all(np.isfinite(LIBRARY_POSES))
    for name, p in zip(LIBRARY_NAMES, LIBRARY_POSES):
        for q in (p, mirror_pose(p)):                     # the sampler mirrors: both sides must be inside
            assert np.all(q[3:] >= lo[3:] - 1e-9) and np.all(q[3:] <= hi[3:] + 1e-9), name
        assert np.all(np.abs(p) < np.pi)                  # a canonical axis-angle (no wrapped angles)


def test_symmetric_poses_equal_their_mirror_and_asymmetric_do_not():
    for name in ("stand", "squat_deep", "chair_upright", "kneel_upright", "lie_back_flat", "crawl_hands_knees"):
        p = LIBRARY_POSES[LIBRARY_NAMES.index(name)]
        assert np.allclose(mirror_pose(p), p, atol=1e-12), name
    for name in ("walk_phase_045", "throw_windup", "kneel_one_knee", "phone_call_standing"):
        p = LIBRARY_POSES[LIBRARY_NAMES.index(name)]
        assert not np.allclose(mirror_pose(p), p, atol=1e-3), name


def test_groups_look_like_their_activity():
    """Bodies put on the ground by their lowest vertex: who sits, lies, kneels or stands (relative to the
    standing pelvis height H, so it holds for any body model)."""
    import torch

    from lasor_shared.body_model import load_body_model

    model = load_body_model()
    with torch.no_grad():
        out = model.pose(torch.tensor(LIBRARY_POSES, dtype=torch.float32), torch.zeros(len(LIBRARY_POSES), model.num_betas))
    v, j = out.vertices.numpy(), out.joints[:, :24].numpy()
    y = j[..., 1] - v[..., 1].min(1, keepdims=True)           # joint heights above the ground
    H = y[LIBRARY_NAMES.index("stand"), 0]
    for k, (name, group) in enumerate(zip(LIBRARY_NAMES, LIBRARY_GROUPS)):
        pelvis, neck, knee = y[k, 0] / H, y[k, 12] / H, min(y[k, 4], y[k, 5]) / H
        if group in ("standing", "walking", "running"):
            assert pelvis > (0.75 if group == "running" else 0.85), name
        elif group == "sitting_chair":
            assert 0.4 < pelvis < 0.75 and knee > 0.35, name           # over a seat, thighs lifted
        elif group == "sitting_ground":
            assert pelvis < 0.35 and neck > 0.5, name                  # on the ground, torso up
        elif group.startswith("lying_"):
            assert pelvis < 0.4 and neck < 0.5, name                   # the whole trunk near the ground
        elif group == "kneeling":
            assert knee < 0.12, name                                   # a knee on the ground
        elif group == "crawling":                                      # hands and knees (or toes) down
            assert min(y[k, 20], y[k, 21]) / H < 0.25 and min(y[k, [4, 5, 7, 8]]) / H < 0.3, name
        elif group == "crouching":
            assert pelvis < 0.85, name


def test_library_has_no_self_penetration():
    contact = pytest.importorskip("lasor_datagen.contact")
    from lasor_shared.body_model import load_body_model

    model = load_body_model()
    v = model.v_template.numpy().astype(np.float64)
    parents = model.parents.numpy().astype(np.int64)
    parents[0] = -1
    check = contact.SelfContact(model.J_regressor.numpy() @ v, parents, v, model.lbs_weights.numpy().argmax(1))
    bad = [n for n, p in zip(LIBRARY_NAMES, LIBRARY_POSES) if not check.ok(p)]
    assert not bad


def test_mirror_is_an_involution_and_swaps_sides():
    rng = np.random.default_rng(0)
    p = sample_library_pose(rng, True, 0.1)
    assert np.allclose(mirror_pose(mirror_pose(p)), p)
    walk = LIBRARY_POSES[LIBRARY_NAMES.index("walk_phase_045")]
    m = mirror_pose(walk).reshape(24, 3)
    w = walk.reshape(24, 3)
    assert np.allclose(m[2], w[1] * [1, -1, -1]) and np.allclose(m[1], w[2] * [1, -1, -1])


def test_blends_stay_in_their_group_family():
    """Every within-group blend keeps the group's root family (lying stays lying, upright stays upright)."""
    for group in set(LIBRARY_GROUPS):
        members = [p for p, g in zip(LIBRARY_POSES, LIBRARY_GROUPS) if g == group]
        for a in members:
            for b in members:
                up = Rotation.from_rotvec(slerp_pose(a, b, 0.5)[:3]).apply([0, 1, 0])
                if group.startswith("lying_"):
                    assert abs(up[1]) < 0.2, group
                elif group in ("standing", "walking", "running", "sitting_chair", "kneeling"):
                    assert up[1] > 0.95, group


def test_noise_stays_within_joint_limits():
    rng = np.random.default_rng(1)
    lo, hi = JOINT_LIMITS
    for base in LIBRARY_POSES:
        noisy = add_joint_noise(rng, base, 0.8)
        assert np.all(noisy[3:] >= np.minimum(lo, base)[3:] - 1e-12)
        assert np.all(noisy[3:] <= np.maximum(hi, base)[3:] + 1e-12)


def _up_and_heading(orient):
    R = Rotation.from_rotvec(orient)
    up = R.apply([0, 1, 0])
    fwd = R.apply([0, 0, 1])
    return up, np.arctan2(fwd[:, 0], fwd[:, 2])


def test_amass_z_up_is_canonicalised(tmp_path):
    rng = np.random.default_rng(2)
    upright = LIBRARY_POSES[[LIBRARY_NAMES.index(n) for n in ("stand", "walk_phase_045", "run_phase_090", "stand_wave")]]
    to_z_up = Rotation.from_rotvec([np.pi / 2, 0, 0])          # y-up → z-up
    poses = np.zeros((40, 156))
    for i in range(40):
        p = upright[i % 4].copy()
        yaw = Rotation.from_rotvec([0, 0, rng.uniform(-np.pi, np.pi)])  # heading about z (up)
        p[:3] = (yaw * to_z_up * Rotation.from_rotvec(p[:3])).as_rotvec()
        poses[i, :66] = p[:66]
    path = tmp_path / "clip.npz"
    np.savez(path, poses=poses, trans=np.zeros((40, 3)), mocap_framerate=120.0)
    out = load_pose_file("amass", str(path))
    assert out.shape == (40, 72) and np.allclose(out[:, 66:], 0)
    up, heading = _up_and_heading(out[:, :3])
    assert np.allclose(up, [0, 1, 0], atol=1e-6) and np.allclose(heading, 0, atol=1e-6)
    assert np.allclose(out[:, 3:66], poses[:, 3:66])


def test_3dpw_pickle_and_arrays(tmp_path):
    flip = Rotation.from_rotvec([np.pi, 0, 0])                  # y-down world, as in camera frames
    people = []
    for k in range(2):
        seq = np.tile(LIBRARY_POSES[0], (5, 1))
        seq[:, :3] = (flip * Rotation.from_rotvec(seq[:, :3])).as_rotvec()
        people.append(seq)
    path = tmp_path / "courtyard.pkl"
    with open(path, "wb") as f:
        pickle.dump({"poses": people, "betas": [np.zeros(10)] * 2, "genders": ["m", "f"],
                     "campose_valid": [np.ones(5, bool), np.array([1, 1, 0, 0, 1], bool)]}, f)
    out = load_pose_file("3dpw", str(path))
    assert out.shape == (8, 72)
    up, _ = _up_and_heading(out[:, :3])
    assert np.allclose(up, [0, 1, 0], atol=1e-6)
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"poses": [np.zeros((2, 72))], "x": Rotation}))
    with pytest.raises(LasorError, match="not a readable sequence pickle"):
        load_pose_file("3dpw", str(evil))
    np.save(tmp_path / "p.npy", np.tile(LIBRARY_POSES[0], (3, 1)))
    assert load_pose_file("array", str(tmp_path / "p.npy")).shape == (3, 72)
    np.savez(tmp_path / "wide.npz", poses=np.zeros((3, 75)))
    with pytest.raises(LasorError, match="pose width 75, expected 72"):
        load_pose_file("array", str(tmp_path / "wide.npz"))


def test_sampler_mixes_sources(tmp_path):
    np.save(tmp_path / "one.npy", np.tile(LIBRARY_POSES[LIBRARY_NAMES.index("kick_front")], (2, 1)))
    cfg = PosesCfg(sources=[PoseSourceCfg(), PoseSourceCfg(kind="array", path=str(tmp_path / "one.npy"), weight=3)],
                   mirror_prob=0.0, noise_deg=0.0)
    s = PoseSampler(cfg)
    rng = np.random.default_rng(0)
    kick = load_pose_file("array", str(tmp_path / "one.npy"))[0]
    hits = sum(np.allclose(s.sample(rng), kick) for _ in range(200))
    assert 110 < hits < 190


def test_poses_cli_lists_and_renders_group_sheets(tmp_path):
    import os

    from click.testing import CliRunner
    from PIL import Image

    from lasor_datagen.cli import main

    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    listed = CliRunner().invoke(main, ["poses", "list"])
    assert listed.exit_code == 0 and f"{len(LIBRARY_NAMES)} poses in {len(set(LIBRARY_GROUPS))} groups" in listed.output
    result = CliRunner().invoke(main, ["poses", "sheet", "--out", str(tmp_path), "--group", "crawling", "--size", "64"])
    assert result.exit_code == 0, result.output
    n = LIBRARY_GROUPS.count("crawling")
    with Image.open(tmp_path / "poses-crawling.png") as im:
        assert im.size == (5 * 2 * 64, ((n + 4) // 5) * 64 + 20)
        assert len(set(im.convert("L").getdata())) > 20               # bodies were drawn, not a blank page
    bad = CliRunner().invoke(main, ["poses", "sheet", "--out", str(tmp_path), "--group", "yoga"])
    assert bad.exit_code == 2 and "unknown pose group(s) yoga" in bad.output
