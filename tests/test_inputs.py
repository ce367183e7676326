"""The regressor's keypoint input convention (lasor_trainer.inputs): detector-like keypoints in training
and in the test protocol, the same convention in `lasor-predict`, and the keypoint path of the model."""

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from lasor_trainer import inputs
from lasor_trainer.config import KeypointConfig, config_from_dict, load_config
from lasor_trainer.data import ShardDataset, collate, make_input, open_dataset
from photo_testing import ANNOTATION

HERE = os.path.dirname(__file__)
CONFIG = os.path.join(HERE, "..", "trainer", "configs", "standard.yaml")
NOISE_JSON = os.path.join(HERE, "..", "bench", "results", "detector_noise.json")


def _codes(code):
    return np.full(17, code), np.stack([np.linspace(100, 300, 17), np.linspace(50, 450, 17)], 1)


def test_hidden_keypoints_are_no_kinder_than_mediapipe():
    """The test protocol's hidden keypoints are at least as wrong as mediapipe's on covered joints of the
    shared real photo (grey boxes: bench/measure_detector_noise.py; pasted people and boards:
    bench/bench_photo.py), pooled: a model is never scored on hidden keypoints' true positions."""
    boxes = json.load(open(NOISE_JSON))["hidden"]
    pasted = json.load(open(os.path.join(HERE, "..", "bench", "results", "photo_keypoint_error.json")))["occluded_v1"]
    ann = json.load(open(ANNOTATION))
    ann = ann["annotations"][0] if "annotations" in ann else ann
    h_photo = inputs.person_height(np.asarray(ann["keypoints"], float).reshape(17, 3)[:, :2])
    measured = (boxes["err_frac_mean"] * boxes["n"] + pasted["mean_px"] / h_photo * pasted["n"]) / (boxes["n"] + pasted["n"])
    cfg = inputs.test_protocol()
    cfg.drop_hidden = cfg.drop_any = cfg.outlier_p = 0.0
    vis, kp = _codes(3)
    h = inputs.person_height(kp)
    rng = np.random.default_rng(0)
    errs = np.concatenate([np.linalg.norm(inputs.simulate_detector(kp, vis, cfg, rng)[0] - kp, axis=1) / h
                           for _ in range(400)])
    assert errs.mean() >= measured > 0.2


def test_detector_simulation_by_code():
    """Visible keypoints: small noise, high confidence; off-image: missing; hidden: noisy, lower confidence,
    sometimes missing; the draw is reproducible from its rng."""
    cfg = KeypointConfig()
    kp = np.stack([np.linspace(100, 300, 17), np.linspace(50, 450, 17)], 1)
    vis = np.array([4] * 5 + [1] * 3 + [2] * 3 + [3] * 3 + [0] * 3)
    draws = [inputs.simulate_detector(kp, vis, cfg, np.random.default_rng(i)) for i in range(300)]
    conf = np.stack([c for _, c in draws])
    err = np.stack([np.linalg.norm(p - kp, axis=1) for p, _ in draws]) / inputs.person_height(kp)
    assert (conf[:, vis == 0] == 0).all()
    missing_hidden = (conf[:, (vis == 2) | (vis == 3)] == 0).mean()
    assert 0.1 < missing_hidden < 0.35
    ok = conf > 0
    assert np.median(err[:, vis == 4][ok[:, vis == 4]]) < np.median(err[:, vis == 3][ok[:, vis == 3]]) / 3
    assert conf[:, vis == 4][ok[:, vis == 4]].mean() > conf[:, vis == 3][ok[:, vis == 3]].mean() + 0.2
    a = inputs.simulate_detector(kp, vis, cfg, np.random.default_rng(5))
    b = inputs.simulate_detector(kp, vis, cfg, np.random.default_rng(5))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_sanitize_and_vector():
    kp = np.array([[10.0, 20.0], [np.nan, 5.0]] + [[1.0, 1.0]] * 15)
    conf = np.array([0.9, 0.9, 0.01] + [0.5] * 14)
    k, c, present = inputs.sanitize(kp, conf, 0.05)
    assert present.tolist()[:3] == [True, False, False] and c[1] == 0 and c[2] == 0 and np.isfinite(k).all()
    v = inputs.keypoint_vector(k.astype(np.float32), c, present, 64)
    assert v.shape == (17, 3) and (v[1] == 0).all() and v[0, 2] == pytest.approx(0.9)
    assert v[0, 0] == pytest.approx(10 / 32 - 1)
    info = inputs.crop_info(0, 0, 100, np.array([[200.0, 0, 50], [0, 200.0, 50], [0, 0, 1]]))
    assert np.allclose(info, [0.0, 0.0, 0.5])


@pytest.fixture(scope="module")
def ds(tiny_dataset):
    cfg = load_config(CONFIG, {"data.val_shards": 1})
    from lasor_trainer.bodies import Bodies

    info = open_dataset(tiny_dataset, expected_sha=Bodies(None).expected_sha)
    return ShardDataset(info, [0], cfg, train=False), cfg


def test_test_protocol_is_fixed_per_sample(ds):
    """Evaluation draws its detector keypoints from a fixed per-sample seed: the same every time."""
    d, _ = ds
    a, b = d[0], d[0]
    assert np.array_equal(a["kp_feat"], b["kp_feat"]) and not np.array_equal(d[0]["kp_feat"], d[1]["kp_feat"])


def test_predict_feeds_the_model_by_the_convention(ds, tmp_path):
    """`lasor-predict`'s reading of a mask PNG + keypoints JSON (scores = the test protocol's confidences)
    gives exactly the model input of the evaluation path for that sample."""
    from lasor_trainer.data import source_keypoints
    from lasor_trainer.predict import read_keypoints, read_mask

    d, cfg = ds
    raw = d.raw(3)
    kp, conf = source_keypoints(raw, cfg, None, 3)
    visible = (raw["mask"] & 1) > 0
    Image.fromarray((visible * 255).astype(np.uint8)).save(tmp_path / "m.png")
    # OpenPose BODY_25 layout: put COCO keypoints where BODY25_TO_COCO17 reads them
    from lasor_trainer.predict import BODY25_TO_COCO17

    body25 = np.zeros((25, 3))
    body25[list(BODY25_TO_COCO17)] = np.concatenate([kp, conf[:, None]], 1)
    (tmp_path / "k.json").write_text(json.dumps({"people": [{"pose_keypoints_2d": body25.reshape(-1).tolist()}]}))
    kp2, conf2 = read_keypoints(str(tmp_path / "k.json"), 0, 0.0)
    batch, _, _ = make_input(read_mask(str(tmp_path / "m.png")), kp2, conf2, cfg, raw["cam_K"])
    item = collate([d[3]])
    assert torch.allclose(batch["kp_feat"], item["kp_feat"], atol=1e-4)
    assert torch.allclose(batch["crop_info"], item["crop_info"], atol=1e-6)
    assert torch.allclose(batch["input"], item["input"], atol=1e-6)


def test_coco_flags_become_confidences(tmp_path):
    from lasor_trainer.predict import read_keypoints

    flat = []
    for i in range(17):
        flat += [10.0 + i, 20.0, [2, 1, 0][i % 3]]
    (tmp_path / "c.json").write_text(json.dumps({"keypoints": flat}))
    _, conf = read_keypoints(str(tmp_path / "c.json"))
    assert conf[:3].tolist() == pytest.approx([1.0, 0.3, 0.0])


def test_keypoint_path_model_and_old_configs():
    """Which paths a model has is in its config; a config without the new fields is the image-only model."""
    from lasor_trainer.model import Regressor

    old = config_from_dict({"model": {"width": 16, "hidden": 32}})
    assert old.model.image_path and not old.model.keypoint_path
    m_old = Regressor(old.model)
    assert not any(k.startswith("keypoints.") for k in m_old.state_dict())
    cfg = config_from_dict({"model": {"image_path": False, "keypoint_path": True, "kp_hidden": 32, "hidden": 32},
                            "keypoints": {"mode": "detector"}})
    m = Regressor(cfg.model)
    out = m({"kp_feat": torch.rand(4, 17, 3), "crop_info": torch.rand(4, 3)})
    assert out["rotmats"].shape == (4, 24, 3, 3) and out["betas"].shape == (4, 10)
    with pytest.raises(Exception, match="keypoints.mode"):
        config_from_dict({"model": {"keypoint_path": True}})
    with pytest.raises(Exception, match="keypoints.conf_hidden"):
        config_from_dict({"keypoints": {"conf_hidden": [0.9, 0.1]}})


def test_eval_protocol_gives_older_models_the_same_detector_keypoints():
    """`lasor-eval --keypoints detector` (default): a model of the older 'visible' convention is scored on
    the same detector-like keypoints as a new one (those with confidence ≥ 0.5 present), not on exact ones."""
    from lasor_trainer.evaluate import set_test_keypoints

    old = config_from_dict({})
    note = set_test_keypoints(old, "detector")
    assert old.keypoints.mode == "detector" and old.keypoints.min_confidence == 0.5 and "≥ 0.5" in note
    native = config_from_dict({})
    set_test_keypoints(native, "native")
    assert native.keypoints.mode == "visible"
    new = load_config(CONFIG)
    set_test_keypoints(new, "detector")
    assert new.keypoints == inputs.test_protocol()  # one protocol, whatever the model was trained with
    exact = load_config(CONFIG)
    assert "diagnostic" in set_test_keypoints(exact, "exact")
    kp = np.stack([np.linspace(100, 300, 17), np.linspace(50, 450, 17)], 1)
    out, conf = inputs.simulate_detector(kp, np.array([4, 1, 2, 3] * 4 + [0]), exact.keypoints, np.random.default_rng(0))
    assert np.allclose(out[:16], kp[:16]) and (conf[:16] == 1).all() and conf[16] == 0
