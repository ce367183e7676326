"""Exactness: the CPU renderer and body-model kernels give the same bits whatever the thread count,
render calls leave torch's thread settings alone, and `lasor-train --resume` after kill -9 is
bit-exact with the silhouette loss on."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch


ROOT = os.path.join(os.path.dirname(__file__), "..")
CONFIG = os.path.join(ROOT, "trainer", "configs", "test-tiny.yaml")

# Renders a batch of posed bodies (forward and Kato backward, with and without fill_back; depth too)
# and runs the body model's forward/backward; saves everything to argv[1].
_RENDER_SCRIPT = r"""
import sys
import numpy as np
import torch
from lasor_trainer.rotations import axis_angle_to_matrix
from lasor_trainer.bodies import Bodies, render_silhouettes
from lasor_trainer.model import FACING_CAMERA
from lasor_trainer.neural_renderer import Renderer

torch.manual_seed(0)
bodies = Bodies()
B = 8
rot = axis_angle_to_matrix(0.3 * torch.randn(B, 24, 3))
rot[:, 0] = FACING_CAMERA @ rot[:, 0]
rot.requires_grad_()
betas = torch.randn(B, 10, requires_grad=True)
joints, verts, coco, _ = bodies.predict(rot, betas)
T = torch.tensor([[0.05 * i, -0.03 * i, 3.0 + 0.2 * i] for i in range(B)])
K = torch.tensor([[90.0, 0, 32], [0, 90.0, 32], [0, 0, 1]]).expand(B, 3, 3)
out = {}
for fill_back in (False, True):
    r = Renderer(image_size=48, anti_aliasing=False, fill_back=fill_back, camera_mode="projection", orig_size=64)
    v = verts.detach().clone().requires_grad_()
    sil = render_silhouettes(r, v, T, K, bodies.faces, 3.0)
    target = (torch.arange(48 * 48).reshape(48, 48) % 7 < 3).float()
    ((sil - target) ** 2).sum().backward()
    out[f"sil{int(fill_back)}"], out[f"gsil{int(fill_back)}"] = sil.detach().numpy(), v.grad.numpy()
r = Renderer(image_size=32, anti_aliasing=True, camera_mode="projection", orig_size=64)
v = verts.detach().clone().requires_grad_()
eye = torch.eye(3).expand(B, 3, 3)
depth = r.render_depth(v + T[:, None], bodies.faces[None], K=K, R=eye, t=torch.zeros(B, 1, 3))
depth.sum().backward()
out["depth"], out["gdepth"] = depth.detach().numpy(), v.grad.numpy()
(verts.sum() + 2 * joints.sum() + coco.sum()).backward()
out["verts"], out["grot"], out["gbetas"] = verts.detach().numpy(), rot.grad.numpy(), betas.grad.numpy()
np.savez(sys.argv[1], **out)
"""


def _env(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([os.path.join(ROOT, p) for p in ("shared", "trainer", "datagen")]
                                        + [env.get("PYTHONPATH", "")])
    env.update(extra)
    return env


def test_renderer_and_body_model_bits_do_not_depend_on_the_thread_count(tmp_path):
    results = {}
    for n in (1, 2, 3):
        path = str(tmp_path / f"t{n}.npz")
        r = subprocess.run([sys.executable, "-c", _RENDER_SCRIPT, path], capture_output=True, text=True,
                           env=_env(NUMBA_NUM_THREADS=str(n), OMP_NUM_THREADS=str(n)))
        assert r.returncode == 0, r.stderr[-2000:]
        with np.load(path) as z:
            results[n] = {k: z[k] for k in z.files}
    ref = results[1]
    assert ref["sil0"].sum() > 0 and np.abs(ref["gsil0"]).sum() > 0 and np.abs(ref["gdepth"]).sum() > 0
    for n in (2, 3):
        for k in ref:
            assert np.array_equal(ref[k], results[n][k]), f"{k} differs between 1 and {n} threads"


@pytest.mark.parametrize("torch_threads", [1, 2])
def test_render_calls_leave_torch_threads_alone(torch_threads):
    import numba

    from lasor_trainer.config import LossConfig
    from lasor_trainer.bodies import Bodies, make_renderer, render_silhouettes

    prev = torch.get_num_threads()
    numba_prev = numba.get_num_threads()
    try:
        torch.set_num_threads(torch_threads)
        bodies = Bodies()
        B = 8  # enough work for the parallel kernels
        rot = torch.eye(3).expand(B, 24, 3, 3).clone()
        rot[:, 0] = torch.diag(torch.tensor([1.0, -1.0, -1.0]))
        j, v, _, _ = bodies.predict(rot, torch.zeros(B, 10, requires_grad=True))
        r = make_renderer(LossConfig(), 64)
        K = torch.tensor([[90.0, 0, 32], [0, 90.0, 32], [0, 0, 1]]).expand(B, 3, 3)
        sil = render_silhouettes(r, v, torch.tensor([0.0, 0.0, 3.0]).expand(B, 3), K, bodies.faces)
        (sil.sum() + v.sum()).backward()
        assert torch.get_num_threads() == torch_threads
        assert numba.get_num_threads() == numba_prev
    finally:
        torch.set_num_threads(prev)


@pytest.fixture(scope="module")
def dataset(tiny_dataset):
    return tiny_dataset


def _train_cmd(dataset, out, steps, resume=False):
    cmd = [sys.executable, "-c", "from lasor_trainer.cli import train_main; train_main()",
           "--data", dataset, "--out", out, "--config", CONFIG, "--steps", str(steps), "--no-progress",
           "--set", "train.ckpt_every=20", "--set", "train.val_every=1000", "--set", "loss.silhouette=0.05"]
    return cmd + (["--resume"] if resume else [])


def _steps_logged(out):
    try:
        with open(os.path.join(out, "log.jsonl")) as f:
            return sum(1 for line in f if line.strip())
    except FileNotFoundError:
        return 0


def test_resume_after_kill_9_is_bit_exact_with_the_silhouette_loss(dataset, tmp_path):
    steps = 64
    a, b = str(tmp_path / "straight"), str(tmp_path / "killed")
    r = subprocess.run(_train_cmd(dataset, a, steps), capture_output=True, text=True, env=_env())
    assert r.returncode == 0, r.stderr[-2000:]
    # the same run, killed with SIGKILL once it is past the step-20 checkpoint, then resumed
    p = subprocess.Popen(_train_cmd(dataset, b, steps), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         env=_env())
    deadline = time.time() + 600
    while _steps_logged(b) < 26 and p.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert p.poll() is None, "the run ended before it could be killed"
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert p.returncode == -signal.SIGKILL
    ck = torch.load(os.path.join(b, "latest.pt"), map_location="cpu", weights_only=True)
    assert 20 <= ck["step"] < steps
    r = subprocess.run(_train_cmd(dataset, b, steps, resume=True), capture_output=True, text=True, env=_env())
    assert r.returncode == 0, r.stderr[-2000:]

    fa = torch.load(os.path.join(a, "latest.pt"), map_location="cpu", weights_only=True)
    fb = torch.load(os.path.join(b, "latest.pt"), map_location="cpu", weights_only=True)
    assert fa["step"] == fb["step"] == steps
    for k, va in fa["model"].items():
        assert torch.equal(va, fb["model"][k]), f"parameter {k} differs after resume"
    with open(os.path.join(a, "log.jsonl")) as f:
        la = [json.loads(x) for x in f]
    with open(os.path.join(b, "log.jsonl")) as f:
        lb = [json.loads(x) for x in f]
    assert la == lb  # every step's losses, silhouette included, to the last bit
    assert all(row["silhouette"] > 0 for row in la)
