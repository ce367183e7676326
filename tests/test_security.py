"""No code from any user file: crafted checkpoints, SMPL pickles and 3DPW pickles are refused with
one line (and a crafted sparse matrix can no longer write out of bounds)."""

import os
import pickle
import sys
import types

import numpy as np
import pytest
import scipy.sparse
import torch
from click.testing import CliRunner

from lasor_shared.body_model import embedded_model_path, read_model_file
from lasor_shared.errors import LasorError
from lasor_trainer.cli import eval_main, predict_main, train_main

CONFIG = os.path.join(os.path.dirname(__file__), "..", "trainer", "configs", "test-tiny.yaml")


class _Payload:
    """Unpickling this runs `open(marker, 'w')` — what a crafted file would do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _crafted_checkpoint(path, marker, like=None):
    ck = torch.load(like, weights_only=True) if like else {"model": {}, "config": {}}
    ck["payload"] = _Payload(str(marker))
    torch.save(ck, path)


def test_checkpoints_with_code_are_refused_everywhere(tmp_path, refused, tiny_checkpoint, tiny_dataset):
    marker = tmp_path / "pwned"
    bad = tmp_path / "bad.pt"
    _crafted_checkpoint(bad, marker, like=tiny_checkpoint)
    r = CliRunner().invoke(eval_main, ["--checkpoint", str(bad), "--data", tiny_dataset, "--out", str(tmp_path / "e")])
    refused(r, "bad.pt", "refused")
    run = tmp_path / "run"
    run.mkdir()
    _crafted_checkpoint(run / "latest.pt", marker, like=tiny_checkpoint)
    r = CliRunner().invoke(train_main, ["--data", tiny_dataset, "--out", str(run), "--config", CONFIG, "--resume",
                                        "--no-progress"])
    refused(r, "latest.pt", "refused")
    assert not marker.exists()


def test_predict_reads_no_code_from_a_checkpoint(tmp_path, refused, tiny_checkpoint):
    from PIL import Image

    marker = tmp_path / "pwned"
    bad = tmp_path / "bad.pt"
    _crafted_checkpoint(bad, marker, like=tiny_checkpoint)
    mask = np.zeros((64, 64), np.uint8)
    mask[10:50, 20:40] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    (tmp_path / "k.json").write_text('{"keypoints": [' + ",".join(["30, 30, 2"] * 17) + "]}")
    r = CliRunner().invoke(predict_main, ["--checkpoint", str(bad), "--mask", str(tmp_path / "m.png"),
                                          "--keypoints", str(tmp_path / "k.json"), "--out", str(tmp_path / "p")])
    refused(r, "bad.pt", "refused")
    assert not marker.exists() and not (tmp_path / "p").exists()


def test_checkpoints_hold_tensors_and_plain_types_only(tmp_path, tiny_checkpoint):
    from lasor_trainer import checkpoint

    ck = checkpoint.load(tiny_checkpoint)
    assert isinstance(ck["rng"]["numpy"]["key"], torch.Tensor)  # not a numpy array
    with pytest.raises(TypeError, match="ndarray"):
        checkpoint.save({"model": {}, "config": {}, "x": np.zeros(3)}, str(tmp_path / "x.pt"))
    assert not os.listdir(tmp_path)
    # a checkpoint missing what --resume needs is refused by name
    torch.save({"model": {}, "config": {}}, tmp_path / "half.pt")
    with pytest.raises(LasorError, match="missing step"):
        checkpoint.load(str(tmp_path / "half.pt"), require=checkpoint.RESUME_KEYS)
    (tmp_path / "junk.pt").write_bytes(os.urandom(1000))
    with pytest.raises(LasorError, match="unreadable"):
        checkpoint.load(str(tmp_path / "junk.pt"))


def _smpl_dict():
    with np.load(embedded_model_path()) as z:
        return {k: z[k] for k in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights",
                                  "kintree_table", "f")}


def _pickle_with_sparse(path, damage):
    d = _smpl_dict()
    m = scipy.sparse.csr_matrix(d["J_regressor"])
    damage(m)
    d["J_regressor"] = m
    with open(path, "wb") as f:
        pickle.dump(d, f, protocol=2)
    return str(path)


@pytest.mark.parametrize("damage, message", [
    (lambda m: m.indices.__setitem__(0, 10**8), "indices outside"),
    (lambda m: m.indices.__setitem__(0, -5), "indices outside"),
    (lambda m: m.indptr.__setitem__(3, m.indptr[3] + 10**6), "indptr"),
    (lambda m: setattr(m, "data", m.data[:-1]), "lengths disagree"),
    (lambda m: setattr(m, "_shape", (24, 10**9)), "too large"),
    (lambda m: setattr(m, "indptr", m.indptr[:-1]), "indptr"),
])
def test_crafted_sparse_matrix_is_refused_before_expanding(tmp_path, refused, damage, message):
    """Out-of-range CSR structure made `toarray()` write out of bounds (a segfault); now one line."""
    from lasor_datagen.cli import main

    path = _pickle_with_sparse(tmp_path / "SMPL_NEUTRAL.pkl", damage)
    with pytest.raises(LasorError, match=message):
        read_model_file(path)
    r = CliRunner().invoke(main, ["body-model", "show", "--body-model", path])
    refused(r, "SMPL_NEUTRAL.pkl")
    # the same file named by a recipe
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"body_model: {{path: {path}}}\n")
    r = CliRunner().invoke(main, ["generate", str(recipe), "--out", str(tmp_path / "ds")])
    refused(r, "body_model")
    assert not (tmp_path / "ds").exists()


def test_an_intact_sparse_regressor_still_loads(tmp_path):
    path = _pickle_with_sparse(tmp_path / "ok.pkl", lambda m: None)
    d = read_model_file(path)
    assert np.array_equal(d["J_regressor"], _smpl_dict()["J_regressor"])


@pytest.mark.parametrize("payload", [
    b"\x80\x02c_codecs\nencode\n)R.",                                        # allowed global, no arguments
    b"\x80\x02cnumpy.core.multiarray\n_reconstruct\n)R.",                    # idem
    b"\x80\x02cnumpy\ndtype\nX\x03\x00\x00\x00zzz\x85R.",                    # allowed global, bad argument
    b"\x80\x02cnumpy\nndarray\n)R.",                                         # cannot be built that way
    b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00true\x85R.",                     # refused global
    b"\x80\x02}q\x00(X\x01\x00\x00\x00a",                                    # truncated stream
])
def test_malformed_pickles_give_one_line(tmp_path, payload):
    from lasor_shared.pw3d import read_sequence

    path = tmp_path / "x.pkl"
    path.write_bytes(payload)
    with pytest.raises(LasorError, match="not a readable SMPL model file"):
        read_model_file(str(path))
    with pytest.raises(LasorError, match="not a readable sequence pickle"):
        read_sequence(str(path))


@pytest.fixture
def fake_chumpy(monkeypatch):
    """A stand-in `chumpy.ch.Ch` to write pickles shaped like official ones (state dict with 'x')."""
    chumpy, ch = types.ModuleType("chumpy"), types.ModuleType("chumpy.ch")

    class Ch:
        def __init__(self, x):
            self.x = x

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    ch.Ch = Ch
    monkeypatch.setitem(sys.modules, "chumpy", chumpy)
    monkeypatch.setitem(sys.modules, "chumpy.ch", ch)
    return Ch


def _sequence(poses):
    T = 2
    return {"poses": [poses], "betas": [np.zeros(10)], "trans": [np.zeros((T, 3))], "cam_poses": np.tile(np.eye(4), (T, 1, 1)),
            "cam_intrinsics": np.array([[500.0, 0, 256], [0, 500, 256], [0, 0, 1]]), "poses2d": [np.ones((T, 3, 18))],
            "campose_valid": [np.ones(T)], "genders": ["m"]}


def test_chumpy_inside_a_3dpw_pickle(tmp_path, fake_chumpy):
    from lasor_shared.pw3d import read_sequence

    good, bad = tmp_path / "good.pkl", tmp_path / "bad.pkl"
    with open(good, "wb") as f:
        pickle.dump(_sequence(fake_chumpy(np.zeros((2, 72)))), f, protocol=2)
    empty = fake_chumpy(None)
    del empty.x
    with open(bad, "wb") as f:
        pickle.dump(_sequence(empty), f, protocol=2)
    assert read_sequence(str(good))["poses"][0].shape == (2, 72)  # chumpy read as its array
    with pytest.raises(LasorError, match="chumpy object without array data"):
        read_sequence(str(bad))


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.update(poses="abc"), "poses must be a list"),
    (lambda s: s.update(poses=[np.zeros((2, 71))]), r"poses\[0\] has shape"),
    (lambda s: s.update(poses2d=[np.ones((2, 3, 18)), np.ones((2, 3, 18))]), "same number"),
    (lambda s: s.update(cam_intrinsics=np.full((3, 3), np.nan)), "NaN"),
    (lambda s: s.update(cam_poses=[["a"]]), "not a numeric array"),
    (lambda s: s.update(betas=[np.zeros(3)]), "at least 10"),
])
def test_3dpw_fields_are_checked_up_front(tmp_path, edit, message):
    from lasor_shared.pw3d import read_sequence

    seq = _sequence(np.zeros((2, 72)))
    edit(seq)
    path = tmp_path / "s.pkl"
    with open(path, "wb") as f:
        pickle.dump(seq, f, protocol=2)
    with pytest.raises(LasorError, match=message):
        read_sequence(str(path))
