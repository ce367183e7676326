"""The shipped pretrained model: present, small, safe to load, matching the embedded body, used by default."""

import json
import os

import numpy as np
from click.testing import CliRunner

from lasor_trainer.cli import predict_main
from lasor_trainer.pretrained import shipped_checkpoint, shipped_dir

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_shipped_model_is_small_plain_and_matches_the_embedded_body():
    from lasor_shared.body_model import load_body_model
    from lasor_trainer import checkpoint

    path = shipped_checkpoint()
    assert os.path.getsize(path) <= 25e6
    ck = checkpoint.load(path)  # weights_only=True: tensors and plain types only
    assert "optimizer" not in ck and ck["data"]["root"] is None
    assert ck["body_model"]["sha256"] == load_body_model().sha256
    assert os.path.isfile(os.path.join(shipped_dir(), "MODEL_CARD.md"))


def test_predict_uses_the_shipped_model_without_checkpoint(tmp_path):
    out = tmp_path / "pred"
    r = CliRunner().invoke(predict_main, ["--mask", os.path.join(ROOT, "examples", "skier_mask.png"),
                                          "--keypoints", os.path.join(ROOT, "examples", "skier_coco.json"),
                                          "--out", str(out)])
    assert r.exit_code == 0, r.output
    params = json.loads((out / "smpl_params.json").read_text())
    assert params["checkpoint"] == os.path.abspath(shipped_checkpoint())
    flat = np.concatenate([np.ravel(np.asarray(v, float)) for v in params.values()
                           if isinstance(v, list) and v and not isinstance(v[0], str)])
    assert np.isfinite(flat).all()
    assert (out / "mesh.obj").stat().st_size > 0 and (out / "overlay.png").stat().st_size > 0
