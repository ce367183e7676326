"""scripts/learning_curves.py: the power-law fit and the budget it implies."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(tmp_path, name, points):
    d = tmp_path / name
    d.mkdir()
    with open(d / "val.jsonl", "w") as f:
        for s, e in points:
            f.write(json.dumps({"step": s, "val": {"mpjpe_mm": e, "pve_mm": 1.3 * e}}) + "\n")
    return d


def test_fit_recovers_a_power_law_and_its_budget(tmp_path):
    A, c = 800.0, 0.2
    run = _run(tmp_path, "r", [(s, A * s ** -c) for s in (1000, 2000, 4000, 8000, 16000)])
    size4 = _run(tmp_path, "s4", [(2000, 230.0)])
    size8 = _run(tmp_path, "s8", [(2000, 221.0)])
    out = tmp_path / "lc"
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "learning_curves.py"), "--steps", f"a={run}",
                    "--size", f"8192={size8}", "--size", f"4096={size4}", "--target", "100", "--out", str(out)],
                   check=True, capture_output=True)
    res = json.loads((out / "learning_curves.json").read_text())
    fit = res["steps"]["a"]["fit"]
    assert fit["A"] == pytest.approx(A, rel=1e-6) and fit["c"] == pytest.approx(c, rel=1e-6)
    assert fit["points"] == 4  # from step 2000 on
    assert res["steps"]["a"]["steps_to_target"] == pytest.approx((A / 100) ** (1 / c), rel=1e-6)
    assert [r["n_samples"] for r in res["size"]] == [4096, 8192]
    md = (out / "learning_curves.md").read_text()
    assert "32,768 steps" in md and "| 8192 | 2000 | 221.0 |" in md
    assert (out / "learning_curves.png").stat().st_size > 10_000


def test_bad_argument_is_one_line(tmp_path):
    p = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "learning_curves.py"), "--steps", "nopath",
                        "--out", str(tmp_path)], capture_output=True, text=True)
    assert p.returncode != 0 and "NAME=RUN_DIR" in p.stderr


def _eval(tmp_path, name, step, mpjpe, pve_t_sc):
    d = tmp_path / name
    d.mkdir()
    model = {"n": 64, "mpjpe_mm": mpjpe, "pa_mpjpe_mm": 0.7 * mpjpe, "pve_mm": 1.3 * mpjpe, "pve_t_sc_mm": pve_t_sc}
    (d / "metrics.json").write_text(json.dumps({"info": {"step": step, "samples": 64},
                                                "metrics": {"all": {"all": {"model": model}}}}))
    return d


def test_size_table_from_test_and_training_shard_evaluations(tmp_path):
    run = _run(tmp_path, "r", [(s, 300.0 - s / 100) for s in (1000, 2000, 3000)])
    out = tmp_path / "lc"
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "learning_curves.py"), "--steps", f"a={run}",
                    "--size-test", f"65536={_eval(tmp_path, 't64', 17000, 150.0, 31.0)}",
                    "--size-test", f"8192={_eval(tmp_path, 't8', 17000, 175.0, 34.2)}",
                    "--size-train", f"8192={_eval(tmp_path, 'tr8', 17000, 126.1, 30.3)}", "--out", str(out)],
                   check=True, capture_output=True)
    res = json.loads((out / "learning_curves.json").read_text())
    assert [r["n_samples"] for r in res["size_eval"]] == [8192, 65536]
    assert res["size_eval"][1]["train"] is None
    md = (out / "learning_curves.md").read_text()
    assert "| 8192 | 17000 | 175.0 | 122.5 | 227.5 | 34.2 | 126.1 | 30.3 | +48.9 |" in md
    assert "| 65536 | 17000 | 150.0 |" in md and "– | – | –" in md


def test_size_eval_rejects_a_folder_without_metrics(tmp_path):
    run = _run(tmp_path, "r", [(1000, 300.0)])
    p = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "learning_curves.py"), "--steps", f"a={run}",
                        "--size-test", f"8192={tmp_path}", "--out", str(tmp_path / "lc")],
                       capture_output=True, text=True)
    assert p.returncode != 0 and "metrics.json" in p.stderr and "Traceback" not in p.stderr


def test_size_train_without_its_test_evaluation_is_refused(tmp_path):
    run = _run(tmp_path, "r", [(1000, 300.0)])
    p = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "learning_curves.py"), "--steps", f"a={run}",
                        "--size-train", f"8192={_eval(tmp_path, 'tr8', 17000, 126.1, 30.3)}",
                        "--out", str(tmp_path / "lc")], capture_output=True, text=True)
    assert p.returncode != 0 and "--size-train 8192" in p.stderr and "Traceback" not in p.stderr
