"""scripts/silhouette_attribution.py: the true body at the true root is the ceiling; rows are complete."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_attribution_rows_and_their_ceiling(tiny_dataset, tiny_checkpoint, tmp_path):
    out = tmp_path / "attr.json"
    r = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "silhouette_attribution.py"), "--checkpoint",
                        tiny_checkpoint, "--data", tiny_dataset, "--out", str(out), "--max-samples", "16"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    rows = ("model", "model_at_depth", "model_at_root", "truth_at_model", "truth")
    assert res["samples"] == 16 and all(0 <= res[k]["iou_pooled"] <= 1 for k in rows)
    # the labels' own body at its own root reproduces the stored amodal masks (up to pixel sampling)
    assert res["truth"]["iou_pooled"] > 0.85
    # a 2-step model is far from it, and the true body placed where the model puts it is not better
    assert res["model"]["iou_pooled"] < res["truth"]["iou_pooled"] - 0.2
    assert res["truth_at_model"]["iou_pooled"] < res["truth"]["iou_pooled"]
