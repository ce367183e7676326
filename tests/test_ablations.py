"""scripts/ablations.py end to end on a tiny recipe: variant datasets differ in one field, every run is
trained (two at a time) and scored on the same test set, and the table has all three claims."""

import json
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest
import yaml

from conftest import ROOT, TINY_RECIPE

SCRIPT = str(ROOT / "scripts" / "ablations.py")
ENV = dict(os.environ, PYOPENGL_PLATFORM="egl")


@pytest.fixture(scope="module")
def variant_data(tiny_dataset, tmp_path_factory):
    """An ablations folder holding only the three variant datasets of a tiny recipe (--data-only)."""
    root = tmp_path_factory.mktemp("ablations")
    recipe = root / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(dict(TINY_RECIPE, shards=2)))
    r = subprocess.run([sys.executable, SCRIPT, "--out", str(root / "abl"), "--test", tiny_dataset, "--recipe",
                        str(recipe), "--workers", "1", "--data-only"], capture_output=True, text=True, env=ENV)
    assert r.returncode == 0, r.stderr[-2000:]
    return recipe, root / "abl"


def run_ablations(variant_data, tiny_dataset, tmp_path, *extra):
    recipe, data = variant_data
    out = tmp_path / "abl"
    shutil.copytree(data, out)
    cmd = [sys.executable, SCRIPT, "--out", str(out), "--test", tiny_dataset, "--recipe", str(recipe),
           "--config", str(ROOT / "trainer" / "configs" / "test-tiny.yaml"), "--steps", "2", "--workers", "1",
           "--jobs", "2", *extra]
    return out, subprocess.run(cmd, capture_output=True, text=True, env=ENV)


def test_three_claims_two_runs_at_a_time(variant_data, tiny_dataset, tmp_path):
    out, r = run_ablations(variant_data, tiny_dataset, tmp_path, "--set", "train.val_every=2")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]

    recipes = {v: yaml.safe_load((out / f"recipe-{v}.yaml").read_text()) for v in ("full", "frontal", "no_occluders")}
    assert recipes["frontal"]["camera"] == {"azimuth_deg": [-45.0, 45.0]}
    assert recipes["no_occluders"]["occlusion"] == {"unoccluded_share": 1.0}
    for v in ("frontal", "no_occluders"):  # one field changed, nothing else
        rest = {k: x for k, x in recipes[v].items() if k not in ("camera", "occlusion")}
        assert rest == recipes["full"]

    def labels(name, key):
        return np.concatenate([h5py.File(p, "r")[key][...] for p in sorted((out / f"data-{name}").glob("*.h5"))])

    def from_front(az):  # angle to the frontal direction, degrees
        d = np.degrees(np.mod(az, 2 * np.pi))
        return np.minimum(d, 360 - d)

    assert from_front(labels("frontal", "azimuth")).max() <= 45.01
    assert from_front(labels("full", "azimuth")).max() > 45.0
    assert (labels("no_occluders", "occluder_type") == 0).all()
    assert (labels("no_occluders", "n_object_occluders") == 0).all()
    assert (labels("full", "occluder_type") > 0).any()

    for run in ("full", "no_silhouette", "frontal", "no_occluders"):  # each trained, with its own log
        assert json.loads((out / f"run-{run}" / "summary.json").read_text())["step"] == 2
        assert (out / f"train-{run}.log").stat().st_size > 0
    res = json.loads((out / "ablations.json").read_text())
    claims = {(row["claim"], row["variant"]) for row in res["rows"]}
    assert claims == {("(a) silhouette loss", "on"), ("(a) silhouette loss", "off"), ("(b) viewpoints", "360°"),
                      ("(b) viewpoints", "±45°"), ("(c) occluders", "with"), ("(c) occluders", "without")}
    assert all(row["n"] > 0 and np.isfinite(row["mpjpe_mm"]) for row in res["rows"])
    assert "--jobs 2" in res["note"] and "'full': 2" in res["note"]

    card = out / "CARD.md"  # the model card puts each claim's variants side by side
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "model_card.py"), "--run", str(out / "run-full"),
                        "--eval", str(out / "eval-full"), "--ablations", str(out / "ablations.json"), "--out",
                        str(card)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    md = card.read_text()
    for title in ("(a) silhouette loss: on vs off", "(b) viewpoints: 360° vs ±45°", "(c) occluders: with vs without"):
        assert f"### {title}" in md
    full, off = (json.loads((out / f"eval-{v}" / "metrics.json").read_text())["metrics"]["all"]["all"]["model"]
                 for v in ("full", "no_silhouette"))
    assert f"| all | {full['n']} | {full['mpjpe_mm']:.1f} / {off['mpjpe_mm']:.1f} |" in md
    tables = md[md.index("### (a) silhouette loss"):].strip()  # ablations.md: the same tables, one renderer
    assert tables in (out / "ablations.md").read_text()


def test_a_failed_run_is_named(variant_data, tiny_dataset, tmp_path):
    out, r = run_ablations(variant_data, tiny_dataset, tmp_path, "--set", "model.width=-3")
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]  # every failed run named, in the table's order, with its log
    assert last.startswith("error: training failed: full (exit 2, see "), last
    assert [last.index(f"{run} (exit") for run in ("full", "no_silhouette", "frontal", "no_occluders")] == sorted(
        last.index(f"{run} (exit") for run in ("full", "no_silhouette", "frontal", "no_occluders"))
    assert not (out / "ablations.json").exists()
