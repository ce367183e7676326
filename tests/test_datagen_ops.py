"""Operating `lasor-datagen generate`: one run per folder (lock), no temporaries left behind, Ctrl-C is
one line and resumable, verify reports stray files and datasets without targets."""

import json
import os
import shutil
import signal
import subprocess
import sys

import h5py
import pytest
import yaml
from click.testing import CliRunner

from dask_hold import hold_env, wait_for_first_shard
from lasor_datagen.cli import main
from lasor_shared.hashing import sha256_file
from lasor_shared.shards import LOCK_FILE, verify_dataset

pytestmark = pytest.mark.gl

RECIPE = {"seed": 5, "shards": 6, "samples_per_shard": 6, "image_size": 48}


def _start(recipe_path, out, hold):
    """`lasor-datagen generate` in its own process group; its worker holds after the first shard while the
    file `hold` exists (tests/dask_hold.py), so the run cannot finish before the test acts, at any speed."""
    hold.write_text("")
    env = dict(os.environ, PYOPENGL_PLATFORM=os.environ.get("PYOPENGL_PLATFORM", "egl"), **hold_env(hold))
    return subprocess.Popen([sys.executable, "-m", "lasor_datagen.cli", "generate", str(recipe_path), "--out", str(out),
                             "--workers", "1", "--quiet"], start_new_session=True, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_sigint_default)


def _sigint_default():
    """Ctrl-C as in a terminal: a test runner started in the background (`make test &`, nohup, some CI)
    ignores SIGINT, and a child would inherit that and never see the interrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def recipe_path(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(RECIPE))
    return path


def test_second_run_into_the_same_folder_is_refused_and_temporaries_go(tmp_path, recipe_path, refused):
    out, hold = tmp_path / "ds", tmp_path / "hold"
    proc = _start(recipe_path, out, hold)
    try:
        wait_for_first_shard(out, proc)
        # what a worker killed mid-shard leaves behind (its task is retried elsewhere)
        (out / "shard-00004.h5.tmp-99999-deadbeef").write_bytes(b"partial")
        other = tmp_path / "other.yaml"
        other.write_text(yaml.safe_dump({**RECIPE, "seed": 6}))
        r = CliRunner().invoke(main, ["generate", str(other), "--out", str(out), "--overwrite", "--quiet"])
        refused(r, "another lasor-datagen generate", str(proc.pid))
        hold.unlink()  # let the first run finish
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, err
    assert not [f for f in os.listdir(out) if ".tmp" in f]
    assert verify_dataset(str(out)) == []
    # the lock is free again: a second run finds everything done
    r = CliRunner().invoke(main, ["generate", str(recipe_path), "--out", str(out), "--quiet"])
    assert r.exit_code == 0 and "6 of 6 shards already done" in r.output, r.output


def test_ctrl_c_is_one_line_prompt_and_resumable(tmp_path, recipe_path):
    out, hold = tmp_path / "ds", tmp_path / "hold"
    proc = _start(recipe_path, out, hold)
    try:
        wait_for_first_shard(out, proc)
        os.killpg(proc.pid, signal.SIGINT)  # what the terminal does: the CLI and its workers
        # closing the cluster takes 1-20 s depending on the machine's load: only a hang fails
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130
    assert err.strip().splitlines()[-1] == "error: interrupted"
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert not (out / "manifest.json").exists()
    r = CliRunner().invoke(main, ["generate", str(recipe_path), "--out", str(out), "--workers", "1", "--quiet"])
    assert r.exit_code == 0 and "resuming" in r.output, r.output
    assert verify_dataset(str(out)) == []


def test_verify_reports_stray_files(tiny_dataset, tmp_path):
    out = tmp_path / "ds"
    shutil.copytree(tiny_dataset, out)
    assert verify_dataset(str(out)) == []
    shutil.copy(out / "shard-00000.h5", out / "shard-00003.h5")       # an extra shard
    (out / "shard-00001.h5.tmp-1-abc").write_bytes(b"x")             # a leftover temporary
    (out / "notes.txt").write_text("mine")                           # a user's file: not lasor's business
    (out / LOCK_FILE).write_text("")                                  # the generate lock: expected
    r = CliRunner().invoke(main, ["verify", str(out)])
    assert r.exit_code == 1
    assert "shard-00003.h5: stray file" in r.output and "shard-00001.h5.tmp-1-abc: stray file" in r.output
    assert "notes.txt" not in r.output and LOCK_FILE not in r.output


def test_verify_refuses_a_dataset_whose_targets_are_empty(tiny_dataset, tmp_path):
    """Samples without a single target pixel (visible fraction 0, no occluder) make a dataset unusable."""
    out = tmp_path / "ds"
    shutil.copytree(tiny_dataset, out)
    m = json.loads((out / "manifest.json").read_text())
    for rec in m["shards"]:
        path = out / rec["file"]
        with h5py.File(path, "r+") as f:
            f["mask"][...] = 0
            f["visible_fraction"][...] = 0
            f["occluder_type"][...] = 0
        rec["sha256"], rec["bytes"] = sha256_file(str(path)), os.path.getsize(path)
    (out / "manifest.json").write_text(json.dumps(m))
    problems = verify_dataset(str(out))
    assert len(problems) == 1 and "empty target silhouette" in problems[0], problems
    from lasor_trainer.data import open_dataset

    with pytest.raises(Exception, match="empty target silhouette"):
        open_dataset(str(out))
