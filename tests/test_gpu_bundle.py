"""Static checks of the GPU run (scripts/gpu_run.sh + scripts/gpu/): the wheel list agrees with
pyproject.toml, the script's paths and console-script shims exist, and the renderer says when it
falls back. The run itself needs a CUDA host (scripts/gpu/dry_run.sh proves its path on a CPU)."""

import os
import re
import subprocess
import sys
import tomllib

import pytest
import torch
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GPU_RUN = os.path.join(ROOT, "scripts", "gpu_run.sh")


def _wheels():
    pins, provided = {}, set()
    with open(os.path.join(ROOT, "scripts", "gpu", "wheels.txt")) as f:
        for raw in f:
            if raw.startswith("# host-provides:"):
                provided |= {canonicalize_name(n) for n in raw.split(":", 1)[1].split()}
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            m = re.fullmatch(r"([A-Za-z0-9._-]+)==([0-9][A-Za-z0-9.]*)", line)
            assert m, f"wheels.txt: {line!r} is not NAME==VERSION"
            name = canonicalize_name(m.group(1))
            assert name not in pins, f"wheels.txt pins {name} twice"
            pins[name] = m.group(2)
    return pins, provided


def _project_requirements():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        proj = tomllib.load(f)["project"]
    opt = proj["optional-dependencies"]
    return [Requirement(r) for r in proj["dependencies"] + opt["datagen"] + opt["train"]], proj["scripts"]


def test_wheels_pin_versions_pyproject_accepts_and_cover_every_dependency():
    pins, provided = _wheels()
    reqs, _ = _project_requirements()
    assert pins and provided
    for req in reqs:
        name = canonicalize_name(req.name)
        if name in pins:
            assert req.specifier.contains(pins[name], prereleases=True), \
                f"wheels.txt pins {name}=={pins[name]}, pyproject.toml wants {req}"
        else:
            assert name in provided, f"pyproject.toml needs {req}: neither pinned in wheels.txt nor host-provided"
    assert not set(pins) & provided, "a package is both carried and host-provided"


def test_gpu_run_references_existing_files():
    with open(GPU_RUN) as f:
        text = f.read()
    paths = set(re.findall(r"\b((?:scripts|trainer/configs|manifests|tests)/[A-Za-z0-9_./-]+\.(?:sh|py|yaml|txt))", text))
    assert {"scripts/train_standard.sh", "scripts/gpu/wheels.txt", "trainer/configs/standard.yaml",
            "scripts/gpu/build_neural_renderer.sh", "scripts/gpu/check_env.py"} <= paths
    for p in paths:
        assert os.path.isfile(os.path.join(ROOT, p)), f"gpu_run.sh names {p}, which does not exist"
    with open(os.path.join(ROOT, "scripts", "gpu", "build_neural_renderer.sh")) as f:
        assert "check_neural_renderer.py" in f.read()
    assert os.path.isfile(os.path.join(ROOT, "scripts", "gpu", "check_neural_renderer.py"))


def test_shims_run_the_console_scripts_of_pyproject():
    """Each `shim NAME "MODULE [SUBCOMMAND]"` in gpu_run.sh runs what [project.scripts] installs."""
    import importlib

    _, scripts = _project_requirements()
    with open(GPU_RUN) as f:
        shims = dict(re.findall(r'^shim (\S+) "?([^"\n]+)"?$', f.read(), re.M))
    assert set(shims) == set(scripts)
    for name, target in scripts.items():
        module, func = target.split(":")
        parts = shims[name].split()
        assert parts[0] == module, f"shim {name} runs {parts[0]}, pyproject says {module}"
        mod = importlib.import_module(module)
        with open(mod.__file__) as f:
            assert re.search(r'^if __name__ == "__main__":\n    main\(\)', f.read(), re.M), f"{module} has no __main__ entry"
        entry = getattr(mod, func)
        if len(parts) == 1:
            assert entry is mod.main
        else:
            assert mod.main.commands[parts[1]] is entry, f"{module} main {parts[1]} is not {func}"


def test_train_standard_refuses_an_unknown_stage(tmp_path):
    r = subprocess.run(["bash", os.path.join(ROOT, "scripts", "train_standard.sh")], capture_output=True, text=True,
                       env={**os.environ, "STAGES": "generate trian", "OUT": str(tmp_path / "o")}, timeout=60)
    assert r.returncode == 2 and "unknown stage 'trian'" in r.stderr
    assert not (tmp_path / "o").exists()


def test_check_env_reports_unmet_requirements_of_carried_packages(tmp_path):
    sys.path.insert(0, os.path.join(ROOT, "scripts", "gpu"))
    try:
        import check_env
    finally:
        sys.path.pop(0)
    info = tmp_path / "carried-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: carried\nVersion: 1.0\n"
                                   "Requires-Dist: numpy>=999\nRequires-Dist: no-such-package-xyz\n"
                                   "Requires-Dist: torch\nRequires-Dist: numpy; python_version < '3.0'\n"
                                   "Requires-Dist: pytest; extra == 'test'\n")
    out = check_env.unmet(str(tmp_path))
    assert len(out) == 2
    assert any("numpy>=999: found" in line for line in out)
    assert any("no-such-package-xyz: not installed" in line for line in out)


def test_renderer_backend_line_says_which_and_why():
    from lasor_trainer.neural_renderer import describe_backend
    from lasor_trainer.neural_renderer.cuda_backend import load, unavailable_reason

    assert "lasor's own" in describe_backend("cpu", torch.device("cpu"))
    forced = describe_backend("cpu", torch.device("cuda"))
    assert forced.startswith("silhouette renderer: FALLBACK") and "'cpu'" in forced
    if load() is None:
        line = describe_backend("auto", torch.device("cuda"))
        assert "FALLBACK" in line and unavailable_reason() in line and "neural_renderer" in unavailable_reason()
    elif torch.cuda.is_available():
        assert describe_backend("auto", torch.device("cuda")).startswith("silhouette renderer: neural_renderer")
    else:
        pytest.skip("neural_renderer imports but there is no CUDA device")
