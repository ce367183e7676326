"""The compose topology for real, without Docker: an external Dask scheduler and two workers on
127.0.0.1, one worker killed mid-run; the dataset must complete byte-identical to a LocalCluster
run of the same recipe, and the trainer must run on it."""

import glob
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
RECIPE = os.path.join(ROOT, "manifests", "demo.yaml")
SMALL = ["--shards", "10", "--samples-per-shard", "12", "--image-size", "64", "--quiet"]

pytestmark = pytest.mark.gl


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env():
    env = dict(os.environ)
    env.setdefault("PYOPENGL_PLATFORM", "egl")
    env["DASK_DISTRIBUTED__WORKER__DAEMON"] = "False"
    return env


def _start(args, log):
    return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=_env(), start_new_session=True)


def _kill(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def _wait_port(port, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def _hashes(folder):
    manifest = json.load(open(os.path.join(folder, "manifest.json")))
    return {s["file"]: s["sha256"] for s in manifest["shards"]}


def test_external_scheduler_survives_a_killed_worker(tmp_path):
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = open(tmp_path / "cluster.log", "w")
    procs = [_start([os.path.join(BIN, "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                     "--dashboard-address", "127.0.0.1:0", "--no-show"], logs)]
    try:
        _wait_port(port)
        for _ in range(2):
            procs.append(_start([os.path.join(BIN, "dask"), "worker", address, "--nworkers", "1",
                                 "--nthreads", "1", "--host", "127.0.0.1", "--dashboard-address", "127.0.0.1:0",
                                 "--no-nanny"], logs))
        external = tmp_path / "external"
        gen = _start([os.path.join(BIN, "lasor-datagen"), "generate", RECIPE, "--out", str(external),
                      "--scheduler", address, *SMALL], open(tmp_path / "generate.log", "w"))
        end = time.time() + 240
        while not glob.glob(str(external / "shard-*.h5")) and time.time() < end and gen.poll() is None:
            time.sleep(0.2)
        assert gen.poll() is None, "generation finished before a worker could be killed: make the run longer"
        _kill(procs[1])  # one worker dies mid-run; its shards must be redone by the other
        assert gen.wait(timeout=300) == 0, open(tmp_path / "generate.log").read()[-2000:]
    finally:
        for p in procs:
            _kill(p)
        logs.close()

    local = tmp_path / "local"
    run = subprocess.run([os.path.join(BIN, "lasor-datagen"), "generate", RECIPE, "--out", str(local),
                          "--workers", "1", *SMALL], env=_env(), capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert _hashes(external) == _hashes(local)
    assert len(_hashes(local)) == 10
    check = subprocess.run([os.path.join(BIN, "lasor-datagen"), "verify", str(external)], env=_env(),
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr

    # the compose `trainer` service's next step, briefly, on the dataset the cluster made
    run_dir = tmp_path / "run"
    train = subprocess.run([os.path.join(BIN, "lasor-train"), "--data", str(external), "--out", str(run_dir),
                            "--config", os.path.join(ROOT, "trainer", "configs", "test-tiny.yaml"),
                            "--steps", "4", "--no-progress"], env=_env(), capture_output=True, text=True, timeout=300)
    assert train.returncode == 0, train.stdout[-2000:] + train.stderr[-2000:]
    assert (run_dir / "latest.pt").is_file()
