"""End to end (GL + Dask): determinism across worker counts, resume after a kill, verify, statistics."""

import json
import os
import shutil
import signal
import subprocess
import sys

import h5py
import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from dask_hold import hold_env, wait_for_first_shard
from lasor_datagen.cli import main
from lasor_shared.shards import read_manifest, sha256_file, verify_dataset

pytestmark = pytest.mark.gl

RECIPE = {
    "seed": 11, "shards": 3, "samples_per_shard": 12, "image_size": 64,
    "camera": {"truncation_prob": 0.0},
    "occlusion": {"unoccluded_share": 0.25, "occluded_fraction": [0.2, 0.6],
                  "person": {"max_count": 1, "background_prob": 0.2}, "object": {"max_count": 1}},
}


def invoke(*args):
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result


def hashes(folder):
    return {f: sha256_file(os.path.join(folder, f)) for f in sorted(os.listdir(folder)) if f.endswith(".h5")}


@pytest.fixture(scope="module")
def recipe_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("recipe") / "tiny.yaml"
    path.write_text(yaml.safe_dump(RECIPE))
    return str(path)


@pytest.fixture(scope="module")
def reference(recipe_path, tmp_path_factory):
    """The tiny recipe generated with one worker."""
    out = str(tmp_path_factory.mktemp("ref") / "ds")
    r = invoke("generate", recipe_path, "--out", out, "--workers", "1", "--quiet")
    assert r.exit_code == 0, r.output
    return out


def test_two_workers_give_identical_bytes(recipe_path, reference, tmp_path):
    out = str(tmp_path / "ds2")
    r = invoke("generate", recipe_path, "--out", out, "--workers", "2", "--quiet")
    assert r.exit_code == 0, r.output
    assert hashes(out) == hashes(reference) and len(hashes(out)) == 3
    with open(os.path.join(out, "manifest.json")) as a, open(os.path.join(reference, "manifest.json")) as b:
        assert json.load(a) == json.load(b)


def test_schema_and_contents(reference):
    m = read_manifest(reference)
    assert verify_dataset(reference) == []
    with h5py.File(os.path.join(reference, "shard-00000.h5"), "r") as f:
        assert f.attrs["n_samples"] == 12 and f.attrs["image_size"] == 64
        assert f.attrs["recipe_hash"].decode() == m["recipe_hash"]
        mask = f["mask"][:]
        assert f["mask"].chunks == (1, 64, 64) and f["mask"].compression == "gzip"
        modal, amodal = (mask & 1) > 0, (mask & 2) > 0
        assert not np.any(modal & ~amodal)                       # visible ⊆ full
        vf = f["visible_fraction"][:]
        assert np.allclose(vf, modal.sum((1, 2)) / amodal.sum((1, 2)), atol=1e-6)
        K, R = f["cam_K"][:], f["cam_R"][:]
        j3 = f["joints3d"][:]
        uv = j3[..., :2] / j3[..., 2:] * K[:, None, [0, 1], [0, 1]] + K[:, None, :2, 2]
        assert np.allclose(uv, f["joints2d"][:], atol=1e-3)
        assert np.allclose(R @ R.transpose(0, 2, 1), np.eye(3), atol=1e-5)
        # stored occluders re-create the scene: object kinds/params are zero past the count
        n_obj = f["n_object_occluders"][:]
        kinds = f["object_kind"][:]
        assert np.all((kinds[:, 0] > 0) == (n_obj > 0))


def test_azimuth_covers_the_circle_and_occlusion_in_range(reference):
    az, vf, occ = [], [], []
    for name in sorted(hashes(reference)):
        with h5py.File(os.path.join(reference, name), "r") as f:
            az.append(f["azimuth"][:])
            vf.append(f["visible_fraction"][:])
            occ.append(f["occluder_type"][:])
            # stratified: each shard has one sample per 30° bin (12 samples per shard)
            assert np.all(np.bincount((f["azimuth"][:] // (np.pi / 6)).astype(int), minlength=12) == 1)
    az, vf, occ = map(np.concatenate, (az, vf, occ))
    assert az.min() >= 0 and az.max() < 2 * np.pi
    assert 0.1 <= np.mean(occ == 0) <= 0.5                      # recipe: 25 % unoccluded
    hidden = 1 - vf[occ > 0]
    assert 0.1 <= np.median(hidden) <= 0.7                      # recipe: 20–60 % hidden
    assert np.all(vf[occ == 0] >= 0.99)


def test_verify_detects_damage(reference, tmp_path):
    out = str(tmp_path / "copy")
    shutil.copytree(reference, out)
    assert invoke("verify", out).exit_code == 0
    # altered bytes (same size)
    path = os.path.join(out, "shard-00001.h5")
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0xFF
    open(path, "wb").write(bytes(data))
    # truncated
    path2 = os.path.join(out, "shard-00002.h5")
    open(path2, "r+b").truncate(os.path.getsize(path2) // 2)
    problems = verify_dataset(out)
    assert any("shard-00001.h5: sha256" in p for p in problems)
    assert any("shard-00002.h5" in p and "truncated" in p for p in problems)
    os.unlink(os.path.join(out, "shard-00000.h5"))
    r = invoke("verify", out)
    assert r.exit_code == 1 and "shard-00000.h5: missing" in r.output
    # a manifest whose recipe was edited
    m = json.load(open(os.path.join(out, "manifest.json")))
    m["recipe"]["seed"] = 12
    json.dump(m, open(os.path.join(out, "manifest.json"), "w"))
    assert any("recipe_hash does not match" in p for p in verify_dataset(out))


def test_verify_against_a_different_recipe(reference, recipe_path, tmp_path):
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({**RECIPE, "seed": 12}))
    assert invoke("verify", reference, "--recipe", recipe_path).exit_code == 0
    r = invoke("verify", reference, "--recipe", str(other))
    assert r.exit_code == 1 and "different recipe" in r.output
    # generating another recipe into the folder is refused without --overwrite
    r = CliRunner().invoke(main, ["generate", str(other), "--out", reference, "--quiet"])
    assert r.exit_code == 2 and "--overwrite" in r.output


def test_resume_after_kill(recipe_path, reference, tmp_path):
    out = str(tmp_path / "killed")
    cmd = [sys.executable, "-m", "lasor_datagen.cli", "generate", recipe_path, "--out", out, "--workers", "1",
           "--quiet", "--shards", "3"]
    hold = tmp_path / "hold"  # the worker holds after its first shard: the kill lands mid-run at any speed
    hold.write_text("")
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(os.environ, **hold_env(hold)))
    try:
        wait_for_first_shard(out, proc)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)                      # the CLI and its Dask workers
        proc.wait()
    assert not os.path.exists(os.path.join(out, "manifest.json"))
    # a half-written leftover must not survive the resume
    open(os.path.join(out, "shard-00002.h5.tmp-1-deadbeef"), "wb").write(b"partial")
    open(os.path.join(out, ".tmp-k1ll3d.json"), "w").write('{"file": ')  # a sidecar cut short by a kill
    r = invoke("generate", recipe_path, "--out", out, "--workers", "1", "--quiet")
    assert r.exit_code == 0, r.output
    assert "resuming" in r.output
    assert hashes(out) == hashes(reference)
    assert not [f for f in os.listdir(out) if ".tmp-" in f]
    assert verify_dataset(out) == []
    # a finished shard corrupted on disk is regenerated, the others are kept
    path = os.path.join(out, "shard-00002.h5")
    data = bytearray(open(path, "rb").read())
    data[-100] ^= 0xFF
    open(path, "wb").write(bytes(data))
    r = invoke("generate", recipe_path, "--out", out, "--workers", "1", "--quiet")
    assert r.exit_code == 0 and "2 of 3 shards already done" in r.output, r.output
    assert hashes(out) == hashes(reference)


def test_preview_and_stats(reference, tmp_path):
    png = str(tmp_path / "p.png")
    assert invoke("preview", reference, "-n", "12", "--out", png).exit_code == 0
    r = invoke("stats", reference, "--out", str(tmp_path / "st"))
    assert r.exit_code == 0, r.output
    s = json.load(open(tmp_path / "st" / "stats.json"))
    assert s["n_samples"] == 36 and os.path.getsize(png) > 1000
    assert os.path.getsize(tmp_path / "st" / "stats.png") > 1000
