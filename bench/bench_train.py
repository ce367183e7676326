"""Training throughput: samples/s and ms per step split by phase (JSON).

    python bench/bench_train.py --data DATASET [--config trainer/configs/demo.yaml] [--steps 30]
        [--device cpu|cuda] [--out bench/results/train.json] [--baseline-src OLD_CHECKOUT [--rounds 2]]

Phases (whatever the trainer's timer reports; today): data, forward (network), body_gt (ground-truth
body model), body_pred (the prediction's body model forward), renderer (silhouette forward), losses,
backward (all backward passes: network, body model, renderer), optimizer (clipping, Adam, schedule).
Besides wall time it records the main process's CPU seconds per step, which is less sensitive to
other jobs on a shared machine.

--baseline-src runs the same measurement with the trainer of another checkout (e.g. `git worktree add
/tmp/old <commit>`), alternating baseline and this tree `--rounds` times in one invocation, and
writes {"baseline": ..., "current": ..., "speedup": ...}: a before/after under the same conditions.

Also measures the data path alone (read + crop + augment + batched proxy (collate), samples/s in one process) so that
"data loading is never the bottleneck" is a number: data_samples_per_s / train_samples_per_s.
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

import torch


def tree_label(path: str) -> str:
    """What a result records instead of a checkout's path: its commit, or else its folder's name."""
    r = subprocess.run(["git", "-C", path, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    ok = r.returncode == 0 and os.path.exists(os.path.join(path, ".git"))
    return r.stdout.strip() if ok else os.path.basename(os.path.normpath(path))


def in_tree(path: str) -> str:
    """`path` relative to the lasor checkout holding it (the nearest folder with pyproject.toml)."""
    folder = os.path.dirname(os.path.abspath(path))
    while not os.path.isfile(os.path.join(folder, "pyproject.toml")) and folder != os.path.dirname(folder):
        folder = os.path.dirname(folder)
    return os.path.relpath(os.path.abspath(path), folder)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--config", default=None, help="trainer config (default: the demo config; with --baseline-src "
                    "each checkout runs its OWN trainer/configs/demo.yaml, settings such as num_workers included)")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--set", action="append", default=[], help="section.field=value overrides")
    ap.add_argument("--out", default=None)
    ap.add_argument("--baseline-src", default=None, help="another checkout's root: measure its trainer too")
    ap.add_argument("--rounds", type=int, default=1, help="with --baseline-src: alternations of baseline/current")
    a = ap.parse_args()
    if a.baseline_src:
        return compare(a)
    if a.config is None:
        a.config = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "trainer", "configs", "demo.yaml")

    from lasor_trainer.config import load_config, parse_value
    from lasor_trainer.data import ShardDataset, collate, open_dataset
    from lasor_trainer.bodies import Bodies
    from lasor_trainer.train import train

    ov = {k: parse_value(v) for k, v in (s.split("=", 1) for s in a.set)}
    ov.update({"train.device": a.device, "train.val_every": 10 ** 9, "train.ckpt_every": 10 ** 9,
               "train.time_limit_s": 0.0, "data.max_val_samples": 1})
    cfg = load_config(a.config, ov)
    bodies = Bodies(cfg.train.body_model)
    info = open_dataset(a.data, verify=False, expected_sha=bodies.expected_sha)
    ds = ShardDataset(info, list(range(len(info.shards))), cfg, train=True)
    n = min(len(ds), 256)
    bs = min(cfg.optim.batch_size, n)
    collate([ds[(0, i)] for i in range(bs)])  # compile / load the proxy kernels
    t = time.perf_counter()
    for b in range(0, n - bs + 1, bs):
        collate([ds[(0, i)] for i in range(b, b + bs)])
    data_sps = (n - n % bs) / (time.perf_counter() - t)

    with tempfile.TemporaryDirectory() as tmp:
        cfg.optim.steps = a.warmup
        train(a.data, os.path.join(tmp, "w"), cfg, progress=False, verify=False)  # compile numba, warm caches
        cfg.optim.steps = a.steps
        t = time.perf_counter()
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        s = train(a.data, os.path.join(tmp, "r"), cfg, progress=False, verify=False)
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        wall = time.perf_counter() - t
    steps = s["step"]
    per_step = {k: 1000 * v / steps for k, v in s["timing_s"].items()}
    train_sps = steps * cfg.optim.batch_size / sum(s["timing_s"].values())
    res = {
        "device": a.device if a.device == "cpu" else torch.cuda.get_device_name(0),
        "cpu_threads": torch.get_num_threads(), "host": platform.node(),
        "config": in_tree(a.config), "overrides": a.set,
        "batch_size": cfg.optim.batch_size, "input_size": cfg.proxy.input_size,
        "silhouette_size": cfg.loss.silhouette_size, "model_width": cfg.model.width, "steps": steps,
        "ms_per_step": per_step, "ms_per_step_total": sum(per_step.values()),
        "train_samples_per_s": train_sps, "wall_s_incl_setup": wall,
        "cpu_s_per_step_main_process": (cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime) / steps,
        "data_samples_per_s_one_process": data_sps,
        "data_headroom": data_sps / train_sps,
        "num_workers": cfg.data.num_workers,
    }
    print(json.dumps(res, indent=1))
    if a.out:
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        with open(a.out, "w") as f:
            json.dump(res, f, indent=1)


def compare(a):
    here = os.path.dirname(os.path.abspath(__file__))
    roots = {"baseline": os.path.abspath(a.baseline_src), "current": os.path.dirname(here)}
    args = ["--data", a.data, "--steps", str(a.steps), "--warmup", str(a.warmup),
            "--device", a.device] + [x for kv in a.set for x in ("--set", kv)]
    runs = {k: [] for k in roots}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(a.rounds):
            for name, root in roots.items():
                out = os.path.join(tmp, f"{name}{r}.json")
                env = dict(os.environ, PYTHONPATH=os.pathsep.join(
                    os.path.join(root, p) for p in ("shared", "trainer", "datagen")))
                config = a.config or os.path.join(root, "trainer", "configs", "demo.yaml")
                subprocess.run([sys.executable, os.path.abspath(__file__), *args, "--config", config, "--out", out],
                               env=env, check=True,
                               stdout=subprocess.DEVNULL)
                with open(out) as f:
                    runs[name].append(json.load(f))
    best = {k: min(v, key=lambda r: r["ms_per_step_total"]) for k, v in runs.items()}  # least disturbed round
    res = {"baseline_src": tree_label(roots["baseline"]), "rounds": a.rounds, "baseline": best["baseline"],
           "current": best["current"],
           "speedup_samples_per_s": best["current"]["train_samples_per_s"] / best["baseline"]["train_samples_per_s"],
           "speedup_cpu_s_per_step": (best["baseline"]["cpu_s_per_step_main_process"]
                                      / best["current"]["cpu_s_per_step_main_process"]),
           "all_rounds_ms_per_step": {k: [r["ms_per_step_total"] for r in v] for k, v in runs.items()}}
    print(json.dumps(res, indent=1))
    if a.out:
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        with open(a.out, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
