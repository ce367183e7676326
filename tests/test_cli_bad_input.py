"""Every command line fed empty, huge, NaN, binary and wrongly-typed input: one `error:` line on
stderr, exit 2, and nothing written (in-process through click, the way the console scripts run)."""

import json
import os
import pickle
import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from lasor_datagen.cli import main as datagen
from lasor_trainer.cli import eval_main, predict_main, train_main

CONFIG = os.path.join(os.path.dirname(__file__), "..", "trainer", "configs", "test-tiny.yaml")
BINARY = bytes(range(256)) * 8                 # NUL bytes and invalid UTF-8
RAW_FILES = {"empty": b"", "binary": BINARY}  # kinds of bad file written as these bytes
HUGE_YAML = b"# padding\n" * 500_000           # 5 MB: no recipe or config is that large

# (name, file content) for YAML inputs: recipes, trainer configs, verify --recipe
YAML_RECIPES = [
    ("empty", b""),
    ("binary", BINARY),
    ("latin1", "name: caf\xe9\n".encode("latin-1")),
    ("huge", HUGE_YAML),
    ("top-level list", b"[1, 2, 3]\n"),
    ("nan", b"camera: {distance: [.nan, 3.0]}\n"),
    ("inf", b"camera: {focal: [1.2, .inf]}\n"),
    ("string number", b"seed: abc\n"),
    ("huge seed", b"seed: 1208925819614629174706176\n"),
    ("huge float seed", b"seed: 1e400\n"),
    ("huge shards", b"shards: 1000000000000\n"),
    ("far camera", b"camera: {distance: [2.5, 1.0e9]}\n"),
    ("long focal", b"camera: {focal: [1.2, 1.0e12]}\n"),
    ("python tag", b"seed: !!python/object/apply:os.system ['true']\n"),
    ("deep nesting", b"[" * 5000 + b"]" * 5000),
]
YAML_CONFIGS = [
    ("empty", b""),
    ("binary", BINARY),
    ("huge", HUGE_YAML),
    ("top-level list", b"- 1\n"),
    ("nan", b"optim: {lr: .nan}\n"),
    ("string", b"optim: {steps: many}\n"),
    ("huge width", b"model: {width: 1000000000}\n"),
    ("huge lr", b"optim: {lr: 1.0e300}\n"),
    ("negative seed", b"train: {seed: -1}\n"),
    ("huge layers", b"model: {layers: [2, 2, 2, 100000]}\n"),
]


def snapshot(folder):
    return sorted(os.path.relpath(os.path.join(d, f), folder) for d, _, fs in os.walk(folder) for f in fs)


@pytest.fixture
def scratch(tmp_path):
    """(folder with the bad inputs, folder outputs are asked to go to); after the test, the outputs
    folder must not exist and the inputs folder must hold only what the test put there."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    yield inputs, tmp_path / "out"
    assert not (tmp_path / "out").exists(), snapshot(tmp_path / "out")


def write(folder, name, content):
    path = folder / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return str(path)


# ------------------------------------------------------------------ lasor-datagen


@pytest.mark.parametrize("name, content", YAML_RECIPES, ids=[n for n, _ in YAML_RECIPES])
def test_generate_bad_recipe(scratch, refused, name, content):
    inputs, out = scratch
    recipe = write(inputs, "recipe.yaml", content)
    refused(CliRunner().invoke(datagen, ["generate", recipe, "--out", str(out)]), "recipe.yaml")
    assert snapshot(inputs) == ["recipe.yaml"]


@pytest.mark.parametrize("args, needle", [
    (["--seed", "-1"], "--seed"), (["--seed", str(2**80)], "--seed"), (["--shards", "0"], "--shards"),
    (["--shards", "nan"], "--shards"), (["--image-size", "1e9"], "--image-size"), (["--workers", "abc"], "--workers"),
    (["--samples-per-shard", "1000000"], "samples_per_shard"),
])
def test_generate_bad_flags(scratch, refused, args, needle):
    inputs, out = scratch
    recipe = write(inputs, "recipe.yaml", "seed: 1\n")
    refused(CliRunner().invoke(datagen, ["generate", recipe, "--out", str(out), *args]), needle)


@pytest.mark.parametrize("name, content", YAML_RECIPES, ids=[n for n, _ in YAML_RECIPES])
def test_verify_bad_recipe(tiny_dataset, scratch, refused, name, content):
    inputs, _ = scratch
    before = snapshot(tiny_dataset)
    recipe = write(inputs, "recipe.yaml", content)
    refused(CliRunner().invoke(datagen, ["verify", tiny_dataset, "--recipe", recipe]), "recipe.yaml")
    assert snapshot(tiny_dataset) == before


MANIFESTS = [("empty", b""), ("binary", BINARY), ("list", b"[1]"), ("string", b'"x"'), ("nan", b"NaN"),
             ("huge number", b'{"schema_version": 1e400}'),
             ("bad shards", b'{"schema_version": 1, "recipe": {}, "recipe_hash": "", "inputs": {}, "fields": {}, '
                            b'"image_size": 64, "shards": [{"file": 3}]}')]


@pytest.mark.parametrize("name, content", MANIFESTS, ids=[n for n, _ in MANIFESTS])
@pytest.mark.parametrize("command", ["verify", "preview", "stats"])
def test_dataset_commands_bad_manifest(scratch, refused, command, name, content):
    inputs, out = scratch
    write(inputs, "manifest.json", content)
    extra = ["--out", str(out / "p.png")] if command == "preview" else ["--out", str(out)] if command == "stats" else []
    refused(CliRunner().invoke(datagen, [command, str(inputs), *extra]), "manifest")


@pytest.mark.parametrize("args, needle", [
    (["preview", "-n", "-5"], "-n"), (["preview", "--cols", "0"], "--cols"), (["preview", "--seed", "-1"], "--seed"),
    (["body-model", "show", "--size", "0"], "--size"), (["body-model", "build", "--from-anny", "x.npz", "--shapes", "1"],
                                                        "--shapes"),
])
def test_datagen_bad_numbers(tiny_dataset, scratch, refused, args, needle):
    _, out = scratch
    if args[0] == "preview":
        args = [args[0], tiny_dataset, "--out", str(out / "p.png"), *args[1:]]
    refused(CliRunner().invoke(datagen, args), needle)


def _npz(folder, **arrays):
    path = folder / "model.npz"
    np.savez(path, **arrays)
    return str(path)


@pytest.mark.parametrize("kind", ["empty pkl", "binary pkl", "list pkl", "empty npz", "binary npz", "nan npz",
                                  "string npz", "huge shape npz", "object npz"])
def test_body_model_show_bad_file(scratch, refused, kind):
    inputs, out = scratch
    from lasor_shared.body_model import embedded_model_path

    with np.load(embedded_model_path()) as z:
        good = {k: z[k] for k in z.files}
    if kind == "empty pkl":
        path = write(inputs, "m.pkl", b"")
    elif kind == "binary pkl":
        path = write(inputs, "m.pkl", BINARY)
    elif kind == "list pkl":
        path = write(inputs, "m.pkl", pickle.dumps([1, 2, 3]))
    elif kind == "empty npz":
        path = write(inputs, "m.npz", b"")
    elif kind == "binary npz":
        path = write(inputs, "m.npz", BINARY)
    elif kind == "nan npz":
        good["v_template"] = good["v_template"].copy()
        good["v_template"][0, 0] = np.nan
        path = _npz(inputs, **good)
    elif kind == "string npz":
        good["weights"] = np.array(["a", "b"])
        path = _npz(inputs, **good)
    elif kind == "huge shape npz":
        good["J_regressor"] = np.zeros((24, 1))
        path = _npz(inputs, **good)
    else:
        path = str(inputs / "m.npz")
        np.savez(path, **{**good, "f": np.array([object()], dtype=object)})
    refused(CliRunner().invoke(datagen, ["body-model", "show", "--body-model", path, "--out", str(out / "s.png")]),
            os.path.basename(path))


# ------------------------------------------------------------------ lasor-train


@pytest.mark.parametrize("name, content", YAML_CONFIGS, ids=[n for n, _ in YAML_CONFIGS])
def test_train_bad_config(tiny_dataset, scratch, refused, name, content):
    inputs, out = scratch
    config = write(inputs, "cfg.yaml", content)
    refused(CliRunner().invoke(train_main, ["--data", tiny_dataset, "--out", str(out), "--config", config]), "cfg.yaml")


@pytest.mark.parametrize("args, needle", [
    (["--set", "optim.lr=.nan"], "optim.lr"), (["--set", "optim.lr=1e400"], "optim.lr"),
    (["--set", "model.width=abc"], "model.width"), (["--set", "optim.steps=1e400"], "optim.steps"),
    (["--set", "optim.batch_size=1000000000"], "optim.batch_size"), (["--set", "nonsense"], "--set"),
    (["--steps", "-5"], "optim.steps"), (["--steps", "1e9"], "--steps"), (["--time-limit", "nan"], "time_limit"),
    (["--device", "tpu"], "--device"),
])
def test_train_bad_overrides(tiny_dataset, scratch, refused, args, needle):
    _, out = scratch
    refused(CliRunner().invoke(train_main, ["--data", tiny_dataset, "--out", str(out), "--config", CONFIG, *args]),
            needle)


@pytest.mark.parametrize("name, content", MANIFESTS, ids=[n for n, _ in MANIFESTS])
def test_train_bad_dataset(scratch, refused, name, content):
    inputs, out = scratch
    write(inputs, "manifest.json", content)
    refused(CliRunner().invoke(train_main, ["--data", str(inputs), "--out", str(out), "--config", CONFIG]), "manifest")


def test_train_no_verify_with_a_damaged_shard(tiny_dataset, tmp_path, refused):
    """--no-verify skips hashing; a damaged shard is then still one line, not an h5py traceback."""
    data = tmp_path / "ds"
    shutil.copytree(tiny_dataset, data)
    path = data / "shard-00000.h5"
    raw = bytearray(path.read_bytes())
    for i in range(2048, len(raw), 97):  # damage the data chunks, keep the superblock
        raw[i] ^= 0xFF
    path.write_bytes(bytes(raw))
    r = CliRunner().invoke(train_main, ["--data", str(data), "--out", str(tmp_path / "run"), "--config", CONFIG,
                                        "--no-verify", "--no-progress", "--steps", "2"])
    refused(r, "shard-00000.h5")
    (data / "shard-00001.h5").write_bytes(b"")
    r = CliRunner().invoke(train_main, ["--data", str(data), "--out", str(tmp_path / "run2"), "--config", CONFIG,
                                        "--no-verify"])
    refused(r, "shard-0000")
    assert not (tmp_path / "run2").exists()


# ------------------------------------------------------------------ lasor-eval


def _checkpoint_file(folder, kind, like):
    path = folder / "ck.pt"
    if kind in RAW_FILES:
        path.write_bytes(RAW_FILES[kind])
    elif kind == "huge":
        path.write_bytes(os.urandom(6 * 2**20))
    elif kind == "list":
        torch.save([1, 2, 3], path)
    elif kind == "no model":
        torch.save({"config": {}}, path)
    elif kind == "bad config":
        ck = torch.load(like, weights_only=True)
        ck["config"]["model"]["width"] = "wide"
        torch.save(ck, path)
    elif kind == "nan weights":
        ck = torch.load(like, weights_only=True)
        next(v for v in ck["model"].values() if v.is_floating_point()).fill_(float("nan"))
        torch.save(ck, path)
    elif kind == "wrong shapes":
        ck = torch.load(like, weights_only=True)
        ck["model"] = {k: v[..., :1] if v.ndim else v for k, v in ck["model"].items()}
        torch.save(ck, path)
    return str(path)


CHECKPOINTS = ["empty", "binary", "huge", "list", "no model", "bad config", "nan weights", "wrong shapes"]


@pytest.mark.parametrize("kind", CHECKPOINTS)
def test_eval_bad_checkpoint(tiny_dataset, tiny_checkpoint, scratch, refused, kind):
    inputs, out = scratch
    ck = _checkpoint_file(inputs, kind, tiny_checkpoint)
    refused(CliRunner().invoke(eval_main, ["--checkpoint", ck, "--data", tiny_dataset, "--out", str(out)]), "ck.pt")


@pytest.mark.parametrize("args, needle", [
    (["--batch-size", "0"], "--batch-size"), (["--batch-size", "abc"], "--batch-size"),
    (["--max-samples", "-1"], "--max-samples"), (["--device", "gpu0"], "--device"), (["--shards", "a,b"], "--shards"),
    (["--shards", "999"], "--shards"), (["--pve-t-sc", "both"], "--pve-t-sc"),
])
def test_eval_bad_flags(tiny_dataset, tiny_checkpoint, scratch, refused, args, needle):
    _, out = scratch
    refused(CliRunner().invoke(eval_main, ["--checkpoint", tiny_checkpoint, "--data", tiny_dataset, "--out", str(out),
                                           *args]), needle)


@pytest.mark.parametrize("content", [b"", BINARY, pickle.dumps([1]), pickle.dumps({"poses": "x"})],
                         ids=["empty", "binary", "list", "wrong type"])
def test_eval_bad_benchmark_files(tiny_checkpoint, scratch, refused, content):
    inputs, out = scratch
    seq = write(inputs, "seq.pkl", content)
    refused(CliRunner().invoke(eval_main, ["--checkpoint", tiny_checkpoint, "--3dpw", seq, "--out", str(out)]), "seq.pkl")
    (inputs / "ssp").mkdir()
    write(inputs / "ssp", "labels.npz", content)
    refused(CliRunner().invoke(eval_main, ["--checkpoint", tiny_checkpoint, "--ssp3d", str(inputs / "ssp"),
                                           "--out", str(out)]), "labels.npz")


# ------------------------------------------------------------------ lasor-predict


@pytest.fixture
def predict_inputs(tmp_path):
    """A valid mask PNG and COCO keypoints JSON (a standing figure) to spoil one at a time."""
    folder = tmp_path / "pin"
    folder.mkdir()
    mask = np.zeros((96, 64), np.uint8)
    mask[10:90, 22:42] = 255
    Image.fromarray(mask).save(folder / "mask.png")
    kp = [[32, 15 + 4 * i, 2] for i in range(17)]
    (folder / "kp.json").write_text(json.dumps({"keypoints": sum(kp, [])}))
    return folder


def _predict(checkpoint, folder, out, *extra, mask="mask.png", kp="kp.json"):
    return CliRunner().invoke(predict_main, ["--checkpoint", checkpoint, "--mask", str(folder / mask),
                                             "--keypoints", str(folder / kp), "--out", str(out), *extra])


def test_predict_valid_inputs_work(tiny_checkpoint, predict_inputs, tmp_path):
    """The baseline the refusals below spoil: these inputs predict, and every number written is finite."""
    r = _predict(tiny_checkpoint, predict_inputs, tmp_path / "ok", "--focal", "100")
    assert r.exit_code == 0, r.output
    params = json.loads((tmp_path / "ok" / "smpl_params.json").read_text())
    assert np.all(np.isfinite(np.asarray(params["joints3d_camera"])))


KEYPOINTS = [
    ("empty", b"", "unreadable JSON"),
    ("binary", BINARY, "unreadable JSON"),
    ("NaN literal", '{"keypoints": [' + ",".join(["NaN, 1, 2"] + ["1, 1, 2"] * 16) + "]}", "unreadable JSON"),
    ("Infinity", '{"keypoints": [' + ",".join(["Infinity, 1, 2"] + ["1, 1, 2"] * 16) + "]}", "unreadable JSON"),
    ("1e300", '{"keypoints": [' + ",".join(["1e300, 1, 2"] + ["1, 1, 2"] * 16) + "]}", "finite coordinates"),
    ("1e400", '{"keypoints": [' + ",".join(["1e400, 1, 2"] + ["1, 1, 2"] * 16) + "]}", "finite coordinates"),
    ("strings", '{"keypoints": [' + ",".join(['"a", 1, 2'] + ["1, 1, 2"] * 16) + "]}", "numbers only"),
    ("booleans", '{"keypoints": [' + ",".join(["true, 1, 2"] + ["1, 1, 2"] * 16) + "]}", "numbers only"),
    ("ragged", '{"keypoints": [[1, 2, 2], [1, 2]]}', "flat list of 51"),
    ("nested", '{"keypoints": [' + ",".join(["[1, 1, 2]"] * 17) + "]}", "flat list of 51"),
    ("top-level list of numbers", "[1, 2, 3]", "expected COCO"),
    ("top-level string", '"hello"', "expected COCO"),
    ("people not a list", '{"people": {"pose_keypoints_2d": []}}', "'people' must be a list"),
    ("people of strings", '{"people": ["x"]}', "people[0]"),
    ("no people", '{"people": []}', "no person 0"),
    ("keypoints a string", '{"keypoints": "1,2,3"}', "flat list of 51"),
    ("negative score", '{"keypoints": [' + ",".join(["1, 1, -2"] * 17) + "]}", "negative"),
    ("deep nesting", "[" * 100000 + "]" * 100000, "unreadable JSON"),
]


@pytest.mark.parametrize("name, content, needle", KEYPOINTS, ids=[k[0] for k in KEYPOINTS])
def test_predict_bad_keypoints(tiny_checkpoint, predict_inputs, tmp_path, refused, name, content, needle):
    write(predict_inputs, "bad.json", content)
    refused(_predict(tiny_checkpoint, predict_inputs, tmp_path / "out", kp="bad.json"), "--keypoints", needle)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, needle", [
    (["--focal", "nan"], "--focal"), (["--focal", "-5"], "--focal"), (["--focal", "0"], "--focal"),
    (["--focal", "inf"], "--focal"), (["--focal", "1e300"], "--focal"), (["--focal", "abc"], "--focal"),
    (["--person", "-1"], "--person"), (["--person", "1"], "person 1"), (["--person", "1e3"], "--person"),
    (["--min-confidence", "nan"], "--min-confidence"), (["--min-confidence", "2"], "--min-confidence"),
])
def test_predict_bad_flags(tiny_checkpoint, predict_inputs, tmp_path, refused, args, needle):
    refused(_predict(tiny_checkpoint, predict_inputs, tmp_path / "out", *args), needle)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind", ["empty", "binary", "all black", "huge", "text"])
def test_predict_bad_mask(tiny_checkpoint, predict_inputs, tmp_path, refused, kind):
    path = predict_inputs / "bad.png"
    if kind in RAW_FILES:
        path.write_bytes(RAW_FILES[kind])
    elif kind == "all black":
        Image.fromarray(np.zeros((40, 40), np.uint8)).save(path)
    elif kind == "huge":
        Image.new("1", (20000, 4)).save(path)
    else:
        path.write_text("not an image")
    refused(_predict(tiny_checkpoint, predict_inputs, tmp_path / "out", mask="bad.png"), "--mask")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind", CHECKPOINTS)
def test_predict_bad_checkpoint(tiny_checkpoint, predict_inputs, tmp_path, refused, kind):
    ck = _checkpoint_file(predict_inputs, kind, tiny_checkpoint)
    refused(_predict(ck, predict_inputs, tmp_path / "out"), "ck.pt")
    assert not (tmp_path / "out").exists()
