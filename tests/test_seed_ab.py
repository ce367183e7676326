"""scripts/seed_ab.py: an A/B comparison over seeds from lasor-eval outputs."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "scripts", "seed_ab.py")


def _eval(tmp_path, name, mpjpe, iou):
    d = tmp_path / name
    d.mkdir()
    model = {"n": 8, "mpjpe_mm": mpjpe, "pa_mpjpe_mm": 100.0, "pve_mm": 1.3 * mpjpe, "pve_t_sc_mm": 33.0,
             "sil_iou_pooled": iou}
    bins = {"none": {"model": dict(model, mpjpe_mm=mpjpe - 20)}, "object": {"model": dict(model)}}
    (d / "metrics.json").write_text(json.dumps({"metrics": {"all": {"all": {"model": model}},
                                                            "occluder_type": bins}}))
    return str(d)


def test_means_spread_and_paired_differences(tmp_path):
    a = [_eval(tmp_path, f"a{i}", m, 0.5) for i, m in enumerate((160.0, 161.0, 162.0))]
    b = [_eval(tmp_path, f"b{i}", m, 0.5) for i, m in enumerate((159.0, 160.5, 162.5))]
    out = tmp_path / "ab.md"
    subprocess.run([sys.executable, SCRIPT, "--arm", "off=" + ",".join(a), "--arm", "on=" + ",".join(b),
                    "--by", "occluder_type", "--out", str(out)], check=True, capture_output=True)
    md = out.read_text()
    assert "| all | MPJPE | 161.0 ± 1.0 | 160.7 ± 1.8 | -1.0 / -0.5 / +0.5 | 2 / 3 |" in md
    assert "| none | MPJPE | 141.0 ± 1.0 |" in md and "| object | PA-MPJPE | 100.0 ± 0.0 |" in md
    assert "| all | IoU pooled | 0.500 ± 0.000 | 0.500 ± 0.000 | +0.000 / +0.000 / +0.000 | 0 / 3 |" in md


def test_unequal_seed_counts_and_bad_folders_are_one_line_errors(tmp_path):
    a = _eval(tmp_path, "a", 160.0, 0.5)
    p = subprocess.run([sys.executable, SCRIPT, "--arm", f"off={a},{a}", "--arm", f"on={a}"],
                       capture_output=True, text=True)
    assert p.returncode != 0 and "same number of seeds" in p.stderr
    p = subprocess.run([sys.executable, SCRIPT, "--arm", f"off={tmp_path}", "--arm", f"on={a}"],
                       capture_output=True, text=True)
    assert p.returncode != 0 and "metrics.json" in p.stderr and "Traceback" not in p.stderr
