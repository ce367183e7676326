"""SSP-3D / 3DPW loaders on small files written here in those formats, and lasor-predict."""

import json
import os
import pickle

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from lasor_shared.errors import LasorError
from lasor_trainer.cli import eval_main, predict_main
from lasor_trainer.config import load_config

CONFIG = os.path.join(os.path.dirname(__file__), "..", "trainer", "configs", "test-tiny.yaml")


@pytest.fixture(scope="module")
def checkpoint(tiny_checkpoint):
    return tiny_checkpoint


def _render(bodies, pose, betas, transl, K, R, t, H, W):
    from lasor_trainer.neural_renderer import projection, rasterize_face_index_map, vertices_to_faces

    with torch.no_grad():
        out = bodies.pred.pose(torch.tensor(pose, dtype=torch.float32)[None], torch.tensor(betas, dtype=torch.float32)[None],
                               torch.tensor(transl, dtype=torch.float32)[None])
        coco = bodies.pred.keypoints(out)[0].numpy()
        side = max(H, W)
        v = projection(out.vertices, torch.tensor(K, dtype=torch.float32)[None], torch.tensor(R, dtype=torch.float32)[None],
                       torch.tensor(t, dtype=torch.float32)[None, None], orig_size=side)
        fim, _ = rasterize_face_index_map(vertices_to_faces(v, bodies.faces[None]), side)
    cam = coco @ R.T + t
    uv = cam[:, :2] / cam[:, 2:] @ K[:2, :2].T + K[:2, 2]
    return fim[0].numpy()[:H, :W] >= 0, uv


def test_ssp3d_loader_and_eval(tmp_path, bodies, checkpoint):
    root = tmp_path / "ssp3d"
    (root / "silhouettes").mkdir(parents=True)
    rng = np.random.default_rng(0)
    n, fnames, kps = 3, [], []
    poses = np.zeros((n, 72))
    poses[:, 0] = np.pi  # SSP-3D poses are camera-frame: upright, facing the camera
    poses[:, 3:] = rng.normal(0, 0.1, (n, 69))
    shapes, trans = rng.normal(0, 1, (n, 10)), np.tile([0.0, 0.2, 25.0], (n, 1))
    K = np.array([[5000.0, 0, 256], [0, 5000.0, 256], [0, 0, 1]])
    for i in range(n):
        sil, uv = _render(bodies, poses[i], shapes[i], trans[i], K, np.eye(3), np.zeros(3), 512, 512)
        fnames.append(f"img_{i}.png")
        Image.fromarray((sil * 255).astype(np.uint8)).save(root / "silhouettes" / fnames[-1])
        kps.append(np.concatenate([uv, np.ones((17, 1))], 1))
    np.savez(root / "labels.npz", fnames=np.array(fnames), shapes=shapes, poses=poses, cam_trans=trans,
             joints2D=np.array(kps), bbox_centres=np.zeros((n, 2)), bbox_whs=np.full(n, 512.0), genders=np.array(["m", "f", "m"]))
    from lasor_trainer.benchmarks import SSP3D

    ds = SSP3D(str(root), load_config(CONFIG), bodies)
    raw = ds.raw(0)
    assert raw["mask"].shape == (512, 512) and raw["gender"] == 1 and (raw["visibility_coco"] == 4).all()
    assert abs(raw["azimuth"]) < 1e-3  # facing the camera
    r = CliRunner().invoke(eval_main, ["--checkpoint", checkpoint, "--ssp3d", str(root), "--out", str(tmp_path / "rep")])
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "rep" / "metrics.json").read_text())["metrics"]["all"]["all"]
    assert m["model"]["n"] == 3
    # the oracle-orientation mean body has the right orientation: its PA-MPJPE equals the mean body's
    assert m["mean_body_oracle_orient"]["pa_mpjpe_mm"] == pytest.approx(m["mean_body"]["pa_mpjpe_mm"], rel=1e-4)
    assert m["mean_body_oracle_orient"]["mpjpe_mm"] == pytest.approx(m["mean_body"]["mpjpe_mm"], rel=1e-4)  # same here


def _pw3d_sequence(bodies, T=3):
    rng = np.random.default_rng(1)
    poses = np.zeros((T, 72))
    poses[:, 3:] = rng.normal(0, 0.1, (T, 69))
    cam_poses = np.tile(np.eye(4), (T, 1, 1))
    cam_poses[:, :3, :3] = np.diag([1.0, -1.0, -1.0])  # camera in front of the body, looking at it
    cam_poses[:, 2, 3] = 4.0
    K = np.array([[1960.0, 0, 540], [0, 1960.0, 960], [0, 0, 1]])
    poses2d = []
    for t in range(T):
        _, uv = _render(bodies, poses[t], np.zeros(10), np.zeros(3), K, cam_poses[t, :3, :3], cam_poses[t, :3, 3], 1920, 1080)
        k18 = np.zeros((18, 3))
        from lasor_trainer.benchmarks import COCO18_TO_COCO17

        k18[list(COCO18_TO_COCO17), :2] = uv
        k18[list(COCO18_TO_COCO17), 2] = 0.9
        poses2d.append(k18.T)
    return {"sequence": "courtyard_hug_00", "poses": [poses], "betas": [np.zeros(10)], "trans": [np.zeros((T, 3))],
            "cam_poses": cam_poses, "cam_intrinsics": K, "poses2d": [np.array(poses2d)],
            "campose_valid": [np.array([1, 0, 1])], "genders": ["f"]}


def test_3dpw_loader_restricted_pickle_and_eval(tmp_path, bodies, checkpoint):
    seq = _pw3d_sequence(bodies)
    path = tmp_path / "courtyard_hug_00.pkl"
    with open(path, "wb") as f:
        pickle.dump(seq, f, protocol=2)
    from lasor_trainer.benchmarks import PW3D
    from lasor_shared.pw3d import read_sequence

    ds = PW3D(str(path), load_config(CONFIG), bodies)
    assert len(ds) == 2  # the frame with campose_valid = 0 is skipped
    raw = ds.raw(0)
    H, W = raw["mask"].shape
    assert (H, W) == (512, 288)  # 1920×1080 scaled to at most 512 px
    assert raw["mask"].any() and raw["gender"] == 2
    kp = raw["keypoints_coco"]
    rows, cols = np.nonzero(raw["mask"] & 1)
    inside = [(raw["mask"][int(y), int(x)] & 1) for x, y in kp if 0 <= x < W and 0 <= y < H]
    assert np.mean(inside) > 0.7  # keypoints fall on the rendered silhouette (same camera)
    r = CliRunner().invoke(eval_main, ["--checkpoint", checkpoint, "--3dpw", str(tmp_path), "--out", str(tmp_path / "rep")])
    assert r.exit_code == 0, r.output

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    bad = tmp_path / "evil.pkl"
    with open(bad, "wb") as f:
        pickle.dump({"poses": Evil()}, f)
    with pytest.raises(LasorError, match="refusing"):
        read_sequence(str(bad))


def test_predict_from_mask_and_coco_or_openpose_json(tmp_path, bodies, checkpoint):
    pose = np.zeros(72)
    R = np.diag([1.0, -1.0, -1.0])
    t = np.array([0.0, 0.0, 4.0])
    K = np.array([[240.0, 0, 100], [0, 240.0, 100], [0, 0, 1]])
    sil, uv = _render(bodies, pose, np.zeros(10), np.zeros(3), K, R, t, 200, 200)
    Image.fromarray((sil * 255).astype(np.uint8)).save(tmp_path / "mask.png")
    coco = {"annotations": [{"keypoints": np.concatenate([uv, np.full((17, 1), 2)], 1).reshape(-1).tolist()}]}
    (tmp_path / "coco.json").write_text(json.dumps(coco))
    body25 = np.zeros((25, 3))
    from lasor_trainer.predict import BODY25_TO_COCO17

    body25[list(BODY25_TO_COCO17), :2] = uv
    body25[list(BODY25_TO_COCO17), 2] = 0.8
    (tmp_path / "op.json").write_text(json.dumps({"people": [{"pose_keypoints_2d": body25.reshape(-1).tolist()}]}))
    for name in ("coco.json", "op.json"):
        out = tmp_path / ("out_" + name)
        r = CliRunner().invoke(predict_main, ["--checkpoint", checkpoint, "--mask", str(tmp_path / "mask.png"),
                                              "--keypoints", str(tmp_path / name), "--out", str(out), "--focal", "240"])
        assert r.exit_code == 0, r.output
        params = json.loads((out / "smpl_params.json").read_text())
        assert len(params["body_pose"]) == 69 and len(params["betas"]) == 10 and len(params["global_orient"]) == 3
        assert sum(params["keypoints_used"]) == 17
        assert params["transl"][2] > 0  # in front of the camera
        obj = (out / "mesh.obj").read_text().splitlines()
        assert sum(1 for ln in obj if ln.startswith("v ")) == bodies.pred.v_template.shape[0]
        assert Image.open(out / "overlay.png").size == (200, 200)
    (tmp_path / "bad.json").write_text(json.dumps({"people": [{"pose_keypoints_2d": [1, 2, 3]}]}))
    r = CliRunner().invoke(predict_main, ["--checkpoint", checkpoint, "--mask", str(tmp_path / "mask.png"),
                                          "--keypoints", str(tmp_path / "bad.json"), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "pose_keypoints_2d" in r.output
