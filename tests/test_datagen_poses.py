"""Pose library, mirroring, joint limits and the external pose sources (AMASS, 3DPW, arrays)."""

import pickle

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from lasor_datagen.poses import (JOINT_LIMITS, LIBRARY_GROUPS, LIBRARY_NAMES, LIBRARY_POSES, PoseSampler,
                                 add_joint_noise, load_pose_file, mirror_pose, sample_library_pose)
from lasor_datagen.recipe import PosesCfg, PoseSourceCfg
from lasor_shared.errors import LasorError


def test_library_covers_the_activities():
    for needed in ("stand", "walk", "run", "sit", "crouch", "reach", "bend", "lie"):
        assert any(needed in n for n in LIBRARY_NAMES), needed
    assert set(LIBRARY_GROUPS) == {"upright", "seated", "ground"}


def test_mirror_is_an_involution_and_swaps_sides():
    rng = np.random.default_rng(0)
    p = sample_library_pose(rng, True, 0.1)
    assert np.allclose(mirror_pose(mirror_pose(p)), p)
    walk = LIBRARY_POSES[LIBRARY_NAMES.index("walk_a")]
    m = mirror_pose(walk).reshape(24, 3)
    w = walk.reshape(24, 3)
    assert np.allclose(m[2], w[1] * [1, -1, -1]) and np.allclose(m[1], w[2] * [1, -1, -1])


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
    upright = LIBRARY_POSES[[LIBRARY_NAMES.index(n) for n in ("stand", "walk_a", "run_a", "wave")]]
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
    with pytest.raises(LasorError, match="unreadable 3DPW pickle"):
        load_pose_file("3dpw", str(evil))
    np.save(tmp_path / "p.npy", np.tile(LIBRARY_POSES[0], (3, 1)))
    assert load_pose_file("array", str(tmp_path / "p.npy")).shape == (3, 72)
    np.savez(tmp_path / "wide.npz", poses=np.zeros((3, 75)))
    with pytest.raises(LasorError, match="pose width 75, expected 72"):
        load_pose_file("array", str(tmp_path / "wide.npz"))


def test_sampler_mixes_sources(tmp_path):
    np.save(tmp_path / "one.npy", np.tile(LIBRARY_POSES[LIBRARY_NAMES.index("kick")], (2, 1)))
    cfg = PosesCfg(sources=[PoseSourceCfg(), PoseSourceCfg(kind="array", path=str(tmp_path / "one.npy"), weight=3)],
                   mirror_prob=0.0, noise_deg=0.0)
    s = PoseSampler(cfg)
    rng = np.random.default_rng(0)
    kick = load_pose_file("array", str(tmp_path / "one.npy"))[0]
    hits = sum(np.allclose(s.sample(rng), kick) for _ in range(200))
    assert 110 < hits < 190
