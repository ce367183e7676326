"""Recipe validation and bad inputs of `lasor-datagen generate`: one-line error, exit 2, nothing written."""

import os

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from lasor_datagen.cli import main
from lasor_datagen.recipe import parse_recipe
from lasor_shared.errors import LasorError

TINY = {"seed": 3, "shards": 2, "samples_per_shard": 4, "image_size": 64}


def write_recipe(tmp_path, data, name="r.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return str(path)


def run_generate(tmp_path, data, out=None, env=None):
    recipe = write_recipe(tmp_path, data)
    out = out or str(tmp_path / "out")
    result = CliRunner().invoke(main, ["generate", recipe, "--out", out, "--quiet"], env=env)
    return result, out


@pytest.mark.parametrize("data, field", [
    ({**TINY, "colour": 3}, "colour: unknown field"),
    ({**TINY, "shards": "many"}, "shards: expected an integer"),
    ({**TINY, "camera": {"elevation_deg": [30, 10]}}, "camera.elevation_deg: min (30.0) > max (10.0)"),
    ({**TINY, "camera": {"distance": [1, 2, 3]}}, "camera.distance: expected [min, max]"),
    ({**TINY, "occlusion": {"person": {"max_count": -1}}}, "occlusion.person.max_count: must be >= 0"),
    ({**TINY, "occlusion": {"object": {"kinds": ["box", "torus"]}}}, "occlusion.object.kinds[1]: expected one of"),
    ({**TINY, "poses": {"sources": [{"kind": "amass"}]}}, "poses.sources[0].path: required"),
    ({**TINY, "body_model": {"genders": {"robot": 1.0}}}, "body_model.genders: unknown gender"),
])
def test_bad_recipe_names_the_field(tmp_path, data, field):
    result, out = run_generate(tmp_path, data)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and field in lines[0], result.output
    assert not os.path.exists(out)


def test_bad_pose_files(tmp_path):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"this is not a zip file")
    narrow = tmp_path / "narrow.npy"
    np.save(narrow, np.zeros((5, 70)))
    missing = tmp_path / "missing.npz"
    for path, expect in ((garbage, "unreadable pose file"), (narrow, "pose width 70, expected 72"),
                         (missing, "not found")):
        data = {**TINY, "poses": {"sources": [{"kind": "array", "path": str(path)}]}}
        result, out = run_generate(tmp_path, data)
        assert result.exit_code == 2, result.output
        assert expect in result.output and str(path.name) in result.output
        assert len(result.output.strip().splitlines()) == 1
        assert not os.path.exists(out)


def test_unwritable_out_dir(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    result, out = run_generate(tmp_path, TINY, out=str(blocker / "data"))
    assert result.exit_code == 2 and "--out" in result.output, result.output
    assert not os.path.exists(out)


def test_no_gl_backend(tmp_path):
    result, out = run_generate(tmp_path, TINY, env={"PYOPENGL_PLATFORM": "no-such-platform"})
    assert result.exit_code == 2, result.output
    assert "no offscreen OpenGL backend" in result.output
    assert not os.path.exists(out)


def test_recipe_yaml_files_validate():
    root = os.path.join(os.path.dirname(__file__), "..", "manifests")
    from lasor_datagen.recipe import load_recipe

    demo = load_recipe(os.path.join(root, "demo.yaml"))
    paper = load_recipe(os.path.join(root, "lasor-paper.yaml"))
    assert demo.shards * demo.samples_per_shard <= 2048  # about a minute on 2 cores
    assert paper.image_size == 256 and paper.shards * paper.samples_per_shard >= 100_000


def test_overrides_and_defaults():
    r = parse_recipe({}, overrides={"shards": 5, "image_size": None})
    assert r.shards == 5 and r.image_size == 256
    with pytest.raises(LasorError, match="samples_per_shard: must be >= 1"):
        parse_recipe({"samples_per_shard": 0})
