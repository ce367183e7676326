"""BVH motion-capture import: the reader, its forward kinematics, retargeting onto SMPL, thinning, CLI."""

import os

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from scipy.spatial.transform import Rotation

from lasor_datagen.bvh import (CMU_JOINT_MAP, Retargeter, axis_change, forward_kinematics, pose_distance,
                               read_bvh, read_joint_map, retarget_error, select_frames)
from lasor_datagen.cli import main
from lasor_datagen.poses import PoseSampler, load_pose_file
from lasor_datagen.recipe import PosesCfg, PoseSourceCfg
from lasor_shared.body_model import load_body_model
from lasor_shared.errors import LasorError
from lasor_shared.keypoints import SMPL24_NAMES

CMU = os.path.join(os.path.dirname(__file__), "data", "mocap", "cmu_01_01.bvh")


@pytest.fixture(scope="module")
def model():
    return load_body_model()


@pytest.fixture(scope="module")
def rest(model):
    return (model.J_regressor @ model.v_template).numpy().astype(np.float64)


def smpl_joints(model, poses):
    with torch.no_grad():
        out = model.pose(torch.tensor(poses, dtype=torch.float32), torch.zeros(len(poses), model.num_betas))
    return out.joints[:, :24].numpy().astype(np.float64)


def test_reads_the_cmu_clip():
    b = read_bvh(CMU)
    assert b.motion.shape == (2752, 96) and b.frame_time == pytest.approx(1 / 120, rel=1e-3)
    real = [n for n, c in zip(b.names, b.channels) if c]
    assert len(real) == 31 and real[0] == "Hips" and b.channels[0][:3] == ["Xposition", "Yposition", "Zposition"]
    assert all(n in b.names for n in CMU_JOINT_MAP["joints"].values())
    G, P = forward_kinematics(b, [0, 100])
    assert np.allclose(P[:, 0], b.motion[[0, 100], :3])                      # root position = its channels
    assert np.allclose(np.linalg.det(G), 1.0)


_CHAIN = """HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Yrotation Xrotation
  JOINT Arm
  {
    OFFSET 1 0 0
    CHANNELS 3 Zrotation Yrotation Xrotation
    End Site
    {
      OFFSET 2 0 0
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.04
0 0 0 0 0 0 90 0 0
5 6 7 0 0 0 30 40 50
"""


def test_euler_channels_are_intrinsic_in_listed_order(tmp_path):
    path = tmp_path / "chain.bvh"
    path.write_text(_CHAIN)
    b = read_bvh(str(path))
    G, P = forward_kinematics(b)
    assert np.allclose(P[0, 2], [1, 2, 0])                                   # Z 90° turns +x into +y
    R = Rotation.from_euler("ZYX", [30, 40, 50], degrees=True).as_matrix()
    Rz, Ry, Rx = (Rotation.from_euler(a, d, degrees=True).as_matrix() for a, d in (("z", 30), ("y", 40), ("x", 50)))
    assert np.allclose(R, Rz @ Ry @ Rx)
    assert np.allclose(P[1, 2], [6, 6, 7] + R @ [2, 0, 0]) and np.allclose(G[1, 1], R)


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("HIERARCHY", "HIERARCY"), "line 1: expected 'HIERARCHY'"),
    (lambda t: t.replace("OFFSET 1 0 0", "OFFSET 1 zero 0"), "line 8: expected a number for Arm OFFSET"),
    (lambda t: t.replace("CHANNELS 3 Zrotation", "CHANNELS 4 Zrotation"), "CHANNELS count must be 0, 3 or 6"),
    (lambda t: t.replace("Yrotation Xrotation\n    End", "Yrotation Wrotation\n    End"), "bad or repeated channel"),
    (lambda t: t.replace("Frames: 2", "Frames: 3"), "Frames says 3 but the file has 2 motion lines"),
    (lambda t: t.replace("5 6 7 0 0 0 30 40 50", "5 6 7 0 0 0 30 40"), "motion frame 2: 8 values"),
    (lambda t: t.replace("5 6 7 0 0 0 30 40 50", "5 6 7 0 0 0 30 nan 50"), "motion frame 2: NaN"),
    (lambda t: t.replace("Frame Time: 0.04", "Frame Time: -1"), "Frame Time must be a positive number"),
    (lambda t: t.replace("MOTION", "MOTOIN"), "no MOTION section"),
    (lambda t: t.split("  JOINT Arm")[0] + "MOTION\nFrames: 1\nFrame Time: 0.1\n0 0 0 0 0 0\n", "unexpected end of file"),
    (lambda t: t.replace("JOINT Arm", "JOINT Hips"), "joint name 'Hips' used twice"),
])
def test_malformed_files_give_one_line_errors(tmp_path, edit, message):
    path = tmp_path / "bad.bvh"
    path.write_text(edit(_CHAIN))
    with pytest.raises(LasorError, match=message) as e:
        read_bvh(str(path))
    assert str(path) in str(e.value) and "\n" not in str(e.value)
    out = tmp_path / "set.npz"
    result = CliRunner().invoke(main, ["poses", "import", str(path), "--out", str(out)])
    assert result.exit_code == 2 and result.output.count("\n") == 1 and result.output.startswith("error: ")
    assert "Traceback" not in result.output and not out.exists()
    (tmp_path / "bin.bvh").write_bytes(b"\xff\xfe\x00HIERARCHY")
    with pytest.raises(LasorError, match="unreadable BVH file"):
        read_bvh(str(tmp_path / "bin.bvh"))


def test_retargeted_cmu_clip_matches_the_bvh_joints(model, rest):
    """FK of the retargeted SMPL body vs the BVH's own joints after one scale + rotation alignment."""
    b = read_bvh(CMU)
    poses = Retargeter(b, CMU_JOINT_MAP, rest).poses()
    keep = select_frames(poses, np.deg2rad(5.0))
    J = smpl_joints(model, poses[keep])
    err = retarget_error(b, CMU_JOINT_MAP, keep, J)
    # Measured 75.8 mm mean: the two skeletons' proportions differ (CMU's hips are 17 cm apart, the
    # embedded body's 22 cm; arm segments differ by 2–5 cm), which a similarity cannot remove.
    assert err["mean_mm"] < 95 and err["p95_mm"] < 150
    assert np.allclose(err["rotation"], np.eye(3), atol=0.05)               # no axis or facing error
    # controls: bodies left in the rest pose, or without the root orientation, are far off
    still = poses[keep].copy()
    still[:, 3:] = 0
    assert retarget_error(b, CMU_JOINT_MAP, keep, smpl_joints(model, still))["mean_mm"] > 2 * err["mean_mm"]
    no_root = poses[keep].copy()
    no_root[:, :3] = 0
    assert retarget_error(b, CMU_JOINT_MAP, keep, smpl_joints(model, no_root))["mean_mm"] > 2 * err["mean_mm"]
    # every mapped limb bone of the SMPL body points where the BVH bone points
    _, P = forward_kinematics(b, keep)
    for s, c, x, y in [("left_hip", "left_knee", "LeftUpLeg", "LeftLeg"), ("right_knee", "right_ankle", "RightLeg", "RightFoot"),
                       ("left_shoulder", "left_elbow", "LeftArm", "LeftForeArm"),
                       ("right_elbow", "right_wrist", "RightForeArm", "RightHand")]:
        ds = J[:, SMPL24_NAMES.index(c)] - J[:, SMPL24_NAMES.index(s)]
        db = P[:, b.index(y)] - P[:, b.index(x)]
        cos = (ds * db).sum(1) / np.linalg.norm(ds, axis=1) / np.linalg.norm(db, axis=1)
        assert np.degrees(np.arccos(np.clip(cos, -1, 1))).max() < 0.5, s


def _z_up_renamed(tmp_path):
    """The CMU clip re-expressed in a Z-up, facing −Y world (M = Rx(90°)), with renamed arm joints."""
    b = read_bvh(CMU)
    b.offsets = b.offsets[:, [0, 2, 1]] * [1, -1, 1]                      # M·(x, y, z) = (x, −z, y)
    col = 0
    for j, chans in enumerate(b.channels):
        if chans:
            assert chans[-3:] == ["Zrotation", "Yrotation", "Xrotation"]
            if len(chans) == 6:                                             # root position
                b.motion[:, col:col + 3] = b.motion[:, col:col + 3][:, [0, 2, 1]] * [1, -1, 1]
            r = col + len(chans) - 3                                        # M·Rz(a)Ry(b)Rx(c)·Mᵀ
            b.motion[:, r] *= -1                                            # = R−y(a)·Rz(b)·Rx(c)
            b.channels[j] = chans[:-3] + ["Yrotation", "Zrotation", "Xrotation"]
        col += len(chans)
    b.names = [{"LeftArm": "L_UpperArm", "RightArm": "R_UpperArm"}.get(n, n) for n in b.names]
    joints = dict(CMU_JOINT_MAP["joints"], left_shoulder="L_UpperArm", right_shoulder="R_UpperArm")
    jm = tmp_path / "map.yaml"
    jm.write_text("up: z\nforward: -y\njoints:\n" + "".join(f"  {k}: {v}\n" for k, v in joints.items()))
    return b, str(jm)


def test_other_skeletons_and_axes_through_a_joint_map(tmp_path, rest):
    zup, jm = _z_up_renamed(tmp_path)
    jmap = read_joint_map(str(jm))
    C = axis_change(jmap).as_matrix()
    assert np.allclose(C @ [0, 0, 1], [0, 1, 0]) and np.allclose(C @ [0, -1, 0], [0, 0, 1])
    frames = np.arange(0, 2752, 97)
    ref = Retargeter(read_bvh(CMU), CMU_JOINT_MAP, rest).poses(frames)
    got = Retargeter(zup, jmap, rest).poses(frames)
    assert np.allclose(forward_kinematics(zup, frames)[1][..., 2], forward_kinematics(read_bvh(CMU), frames)[1][..., 1])
    assert np.max(pose_distance(ref, got)) < 1e-6
    bad = tmp_path / "bad.yaml"
    for text, message in [("joints: {pelvis: Hips, left_hipp: X}", "joints.left_hipp: not an SMPL joint"),
                          ("joints: {left_hip: LeftUpLeg}", "joints.pelvis: required"),
                          ("up: y\nforward: -y\njoints: {pelvis: Hips}", "up and forward must be different"),
                          ("joints: !!python/object/apply:os.system [echo hi]", "unreadable joint map"),
                          ("joints: {pelvis: Hips}\nscale: 2", "unknown key")]:
        bad.write_text(text)
        with pytest.raises(LasorError, match=message):
            read_joint_map(str(bad))
    with pytest.raises(LasorError, match="missing from the file: Nope"):
        Retargeter(read_bvh(CMU), {"up": "y", "forward": "z", "joints": {"pelvis": "Nope"}}, rest)


def test_frame_thinning_is_greedy_by_pose_distance(rest):
    poses = Retargeter(read_bvh(CMU), CMU_JOINT_MAP, rest).poses(np.arange(0, 1200))
    thr = np.deg2rad(4.0)
    keep = select_frames(poses, thr)
    assert keep[0] == 0 and np.all(np.diff(keep) > 0)
    assert np.all(pose_distance(poses[keep[:-1]], poses[keep[1:]]) >= thr)
    for a, b in zip(keep[:-1], keep[1:]):                      # every dropped frame was too close
        assert all(pose_distance(poses[a], poses[k]) < thr for k in range(a + 1, b))
    assert len(select_frames(poses, 2 * thr)) < len(keep) < len(select_frames(poses, thr / 2))


def test_import_cli_writes_a_pose_source_recipes_mix_with_the_library(tmp_path):
    out = tmp_path / "cmu.npz"
    sheet = tmp_path / "cmu.png"
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    result = CliRunner().invoke(main, ["poses", "import", CMU, "--out", str(out), "--min-change-deg", "8",
                                       "--sheet", str(sheet)])
    assert result.exit_code == 0, result.output
    assert "joint error" in result.output and sheet.stat().st_size > 10_000
    with np.load(out) as z:
        assert z["poses"].shape[1] == 72 and len(z["source"]) == len(z["poses"]) == len(z["frame"])
        n = len(z["poses"])
    poses = load_pose_file("array", str(out))
    assert poses.shape == (n, 72) and 30 < n < 400
    up = Rotation.from_rotvec(poses[:, :3]).apply([0, 1, 0])
    assert np.mean(up[:, 1]) > 0.95                                         # upright in lasor's frame
    cfg = PosesCfg(sources=[PoseSourceCfg(), PoseSourceCfg(kind="array", path=str(out), weight=1.0)],
                   mirror_prob=0.0, noise_deg=0.0)
    sampler, rng = PoseSampler(cfg), np.random.default_rng(0)
    from_mocap = sum(any(np.allclose(sampler.sample(rng), p) for p in poses) for _ in range(60))
    assert 15 < from_mocap < 45
    missing = CliRunner().invoke(main, ["poses", "import", str(tmp_path / "none"), "--out", str(out)])
    assert missing.exit_code == 2 and "no such file or folder" in missing.output


def test_import_of_a_folder_skips_bad_clips_only_when_asked(tmp_path):
    clips = tmp_path / "clips" / "subject01"
    clips.mkdir(parents=True)
    (clips / "good.bvh").write_text(_CHAIN.replace("Hips", "Hip"))      # a 2-joint skeleton with a joint map
    (clips / "broken.bvh").write_text(_CHAIN.replace("Frames: 2", "Frames: 5"))
    jm = tmp_path / "map.yaml"
    jm.write_text("joints: {pelvis: Hip, left_shoulder: Arm}\n")
    out = tmp_path / "set.npz"
    stop = CliRunner().invoke(main, ["poses", "import", str(tmp_path / "clips"), "--out", str(out), "--joint-map", str(jm)])
    assert stop.exit_code == 2 and "broken.bvh" in stop.output and not out.exists()
    go = CliRunner().invoke(main, ["poses", "import", str(tmp_path / "clips"), "--out", str(out), "--joint-map",
                                   str(jm), "--skip-bad", "--min-change-deg", "0"])
    assert go.exit_code == 0, go.output
    assert "warning: skipped" in go.output and "broken.bvh" in go.output and "not measured" in go.output
    with np.load(out) as z:
        assert z["poses"].shape == (2, 72) and list(z["source"]) == ["good.bvh"] * 2
        assert np.allclose(z["mocap_framerate"], 25.0)
