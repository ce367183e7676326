"""Evaluation protocol: 3DPW's frame filter, the named PVE-T-SC protocols, silhouette IoU at a fixed
resolution with empty/empty images excluded; and the trainer/generator boundary."""

import ast
import json
import pathlib
import pickle
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from lasor_shared.errors import LasorError
from lasor_trainer import metrics as M
from lasor_trainer.cli import eval_main
from lasor_trainer.config import load_config

ROOT = pathlib.Path(__file__).resolve().parent.parent
CONFIG = str(ROOT / "trainer" / "configs" / "test-tiny.yaml")


def test_trainer_never_imports_the_generator():
    """No `lasor_datagen` import anywhere under trainer/ (parsed, not grepped), and importing every
    trainer module leaves it unloaded."""
    offenders = []
    for path in (ROOT / "trainer").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offenders += [f"{path.relative_to(ROOT)}:{node.lineno}" for n in names if n.split(".")[0] == "lasor_datagen"]
    assert offenders == []
    modules = sorted(p.stem for p in (ROOT / "trainer" / "lasor_trainer").glob("*.py") if p.stem != "__init__")
    code = ("import importlib, sys\n"
            f"for m in {modules!r}: importlib.import_module('lasor_trainer.' + m)\n"
            "print(sorted(m for m in sys.modules if m.startswith('lasor_datagen')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert not (ROOT / "trainer" / "lasor_trainer" / "synthetic.py").exists()


def test_iou_excludes_images_where_both_masks_are_empty():
    counts = np.array([[3, 1, 0], [0, 0, 0], [1, 0, 1]])
    per = M.per_image_iou(counts)
    assert per[0] == 0.75 and np.isnan(per[1]) and per[2] == 0.5
    iou = M.silhouette_iou(counts)
    assert iou["iou_mean"] == pytest.approx((0.75 + 0.5) / 2)  # not / 3: the empty image has no IoU
    assert iou["iou_pooled"] == pytest.approx(4 / 6)
    assert np.isnan(M.silhouette_iou(np.zeros((2, 3)))["iou_mean"])


def test_iou_resolution_does_not_depend_on_the_model(tiny_dataset):
    """The ground truth for IoU is the full-body mask in a 256² crop around that mask, whatever the
    network's input size or silhouette size."""
    from lasor_trainer.data import EVAL_IOU_SIZE, ShardDataset, open_dataset

    info = open_dataset(tiny_dataset)
    items = []
    for size in (32, 64):
        cfg = load_config(CONFIG, {"proxy.input_size": size, "loss.silhouette_size": size // 2})
        items.append(ShardDataset(info, [0], cfg, train=False)[3])
    a, b = items
    assert a["sil_eval"].shape == (EVAL_IOU_SIZE, EVAL_IOU_SIZE)
    assert np.array_equal(a["sil_eval"], b["sil_eval"]) and np.array_equal(a["K_eval"], b["K_eval"])
    assert a["sil_amodal"].shape != b["sil_amodal"].shape  # the training-size target does differ
    rows, cols = np.flatnonzero(a["sil_eval"].any(1)), np.flatnonzero(a["sil_eval"].any(0))
    assert rows[-1] - rows[0] > 150 or cols[-1] - cols[0] > 150  # the body fills the crop (1.2 × its bbox)


def _sequence(T=4):
    """A 3DPW-format sequence: frame 1 has no camera pose, frame 2 only 5 detected 2D joints."""
    poses2d = np.zeros((T, 3, 18))
    poses2d[:, :2] = 100.0 + np.arange(18)
    poses2d[:, 2] = 0.8
    poses2d[2, 2, 5:] = 0.0  # 5 joints detected
    poses2d[3, 2, 6:] = 0.0  # 6 joints detected: kept
    cam = np.tile(np.eye(4), (T, 1, 1))
    cam[:, :3, :3] = np.diag([1.0, -1.0, -1.0])
    cam[:, 2, 3] = 4.0
    return {"poses": [np.zeros((T, 72))], "betas": [np.zeros(10)], "trans": [np.zeros((T, 3))], "cam_poses": cam,
            "cam_intrinsics": np.array([[500.0, 0, 200], [0, 500.0, 300], [0, 0, 1]]), "poses2d": [poses2d],
            "campose_valid": [np.array([1, 0, 1, 1])], "genders": ["m"]}


def test_3dpw_drops_frames_with_fewer_than_6_detected_joints(tmp_path, tiny_checkpoint):
    from lasor_trainer.benchmarks import PW3D
    from lasor_trainer.bodies import Bodies

    path = tmp_path / "downtown_walking_00.pkl"
    with open(path, "wb") as f:
        pickle.dump(_sequence(), f, protocol=2)
    ds = PW3D(str(path), load_config(CONFIG), Bodies())
    assert [t for _, _, t in ds.items] == [0, 3]
    assert ">= 6 detected 2D joints" in ds.frame_filter and "3 of 4" in ds.frame_filter
    r = CliRunner().invoke(eval_main, ["--checkpoint", tiny_checkpoint, "--3dpw", str(path), "--out",
                                       str(tmp_path / "rep"), "--no-silhouette"])
    assert r.exit_code == 0, r.output
    info = json.loads((tmp_path / "rep" / "metrics.json").read_text())["info"]
    assert info["samples"] == 2 and ">= 6 detected 2D joints" in info["frame_filter"]
    assert "frame_filter" in (tmp_path / "rep" / "report.md").read_text()


def test_pve_t_sc_protocols(tmp_path, tiny_checkpoint, tiny_dataset):
    """gendered (SSP-3D's own code) vs neutral ground-truth T-pose: named in the report, and different
    numbers for gendered subjects."""
    from lasor_trainer.evaluate import tpose_protocol
    from lasor_trainer.bodies import Bodies

    bodies = Bodies()
    name, models = tpose_protocol(bodies)
    assert name == "gendered" and models[1].gender == "male" and models[2].gender == "female"
    name, models = tpose_protocol(bodies, "neutral")
    assert name == "neutral" and all(m is bodies.pred for m in models.values())
    real = Bodies.__new__(Bodies)  # as with a real SMPL --body-model: only the neutral file is known
    real.path, real.pred, real.device = "SMPL_NEUTRAL.pkl", bodies.pred, "cpu"
    assert tpose_protocol(real)[0] == "neutral"
    with pytest.raises(LasorError, match="--male-model and --female-model"):
        tpose_protocol(real, "gendered")
    # a dataset of gendered subjects: the two protocols give different numbers, each named
    from conftest import make_tiny_dataset

    data = make_tiny_dataset(tmp_path, {"seed": 3, "shards": 1, "samples_per_shard": 4, "image_size": 48,
                                        "body_model": {"genders": {"male": 1.0, "female": 1.0}}})
    values = {}
    for p in ("gendered", "neutral"):
        r = CliRunner().invoke(eval_main, ["--checkpoint", tiny_checkpoint, "--data", data, "--out", str(tmp_path / p),
                                           "--pve-t-sc", p, "--no-silhouette"])
        assert r.exit_code == 0, r.output
        m = json.loads((tmp_path / p / "metrics.json").read_text())
        assert m["info"]["pve_t_sc_protocol"].startswith(p)
        values[p] = m["metrics"]["all"]["all"]["model"]["pve_t_sc_mm"]
    assert values["gendered"] != pytest.approx(values["neutral"], rel=1e-3)
