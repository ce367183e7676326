"""The generator's measuring tools: exclusive per-stage timers, and the before/after dataset comparison
(bench/compare_datasets.py) with the audit's tolerances."""

import importlib.util
import pathlib
import shutil

import h5py
import numpy as np
import pytest

from lasor_datagen import timers

ROOT = pathlib.Path(__file__).resolve().parent.parent


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_stage_timers_are_exclusive_and_off_outside_a_timer():
    clock = FakeClock()
    assert timers.stage("render") is timers.stage("labels")        # the shared no-op when none is active
    with timers.StageTimer(clock) as t:
        with timers.stage("occluders"):
            clock.t += 2.0
            with timers.stage("inside_tests"):
                clock.t += 0.5
            clock.t += 1.0
        with timers.stage("render"):
            clock.t += 0.25
            with timers.stage("render"):                          # nested in itself: counted once
                clock.t += 0.25
    assert t.totals["occluders"] == 3.0 and t.totals["inside_tests"] == 0.5 and t.totals["render"] == 0.5
    assert sum(t.totals.values()) == clock.t
    assert timers._active is None


@pytest.fixture(scope="module")
def compare_datasets():
    spec = importlib.util.spec_from_file_location("compare_datasets", ROOT / "bench" / "compare_datasets.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _copy(src, dst):
    shutil.copytree(src, dst)
    for p in pathlib.Path(dst).glob("shard-*.h5"):
        p.chmod(0o644)
    return dst


def _edit(dataset, field, change):
    with h5py.File(pathlib.Path(dataset) / "shard-00000.h5", "r+") as f:
        f[field][...] = change(f[field][()])


def test_compare_datasets_tolerances(tiny_dataset, tmp_path, compare_datasets):
    a = _copy(tiny_dataset, tmp_path / "a")
    same = compare_datasets.compare(a, tiny_dataset)
    assert same["pass"] and same["shards_byte_identical"] == same["shards"] and not same["fields_within_tolerance"]

    b = _copy(tiny_dataset, tmp_path / "b")
    _edit(b, "keypoints_coco", lambda x: x + np.float32(2e-4))      # rounding-sized: within 1e-3 px
    r = compare_datasets.compare(a, b)
    assert r["pass"] and "keypoints_coco" in r["fields_within_tolerance"]
    _edit(b, "keypoints_coco", lambda x: x + np.float32(5e-3))      # now 5.2e-3 px off
    r = compare_datasets.compare(a, b)
    assert not r["pass"] and "keypoints_coco" in r["fields_failing"]

    c = _copy(tiny_dataset, tmp_path / "c")
    _edit(c, "mask", lambda m: m & ~np.uint8(2))                      # amodal silhouettes gone
    _edit(c, "visibility_coco", lambda v: np.where(v == 4, 1, v).astype(np.uint8))
    r = compare_datasets.compare(a, c)
    assert set(r["fields_failing"]) == {"mask", "visibility_coco"}
    assert r["fields_failing"]["mask"]["min_amodal_iou"] == 0.0

    d = _copy(tiny_dataset, tmp_path / "d")
    _edit(d, "n_person_occluders", lambda n: n + 1)                   # integer fields: identical or failing
    assert "n_person_occluders" in compare_datasets.compare(a, d)["fields_failing"]
    assert compare_datasets.main([str(a), str(d)]) == 1
    assert compare_datasets.main([str(a), str(tmp_path / "missing")]) == 2
