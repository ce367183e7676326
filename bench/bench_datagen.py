"""Datagen throughput at 256×256 with one occluding person and one object in every sample.

Runs the real pipeline (LocalCluster, one task per shard) with 1 and 2 workers, reports samples/s,
the per-stage time split measured inside the tasks, the render-only ceiling (the two label passes
of the same scenes), dataset MB per 1,000 samples, and the demo recipe's wall time.

    python bench/bench_datagen.py [--shards 4] [--samples 64] [--out bench/results/datagen.json]

--compare OTHER_TREE instead times the demo recipe's shards in this tree and in another checkout of the
project (e.g. `git worktree add /tmp/base <commit>`), alternating the two, one process each, one thread,
no cluster (generate_shard in-process after a warm-up shard), and reports samples/s and their ratio:

    python bench/bench_datagen.py --compare /tmp/base [--shards 4] [--reps 2] [--out bench/results/datagen-compare.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

RECIPE = {
    "name": "bench", "seed": 7, "image_size": 256,
    "occlusion": {"unoccluded_share": 0.0, "type_weights": {"both": 1.0},
                  "person": {"max_count": 1, "background_prob": 0.0}, "object": {"max_count": 1}},
}


def run(workers, shards, samples, tmp, scheduler=None):
    from lasor_datagen.orchestrate import generate

    path = os.path.join(tmp, "bench.yaml")
    with open(path, "w") as f:
        yaml.safe_dump({**RECIPE, "shards": shards, "samples_per_shard": samples}, f)
    out = os.path.join(tmp, f"w{workers}{'-external' if scheduler else ''}")
    t = time.perf_counter()
    res = generate(path, out, workers=None if scheduler else workers, scheduler=scheduler, overwrite=True,
                   progress=False, log=lambda *a: None)
    wall = time.perf_counter() - t
    tasks = res["timings"]
    split = {k: sum(r["timing"][k] for r in tasks) for k in tasks[0]["timing"]}
    task_s = sum(split.values())
    n = shards * samples
    m = res["manifest"]
    return {
        "workers": workers, "samples": n, "wall_s_incl_cluster_start": round(wall, 2),
        "samples_per_s_wall": round(n / wall, 2),
        "samples_per_s_in_tasks": round(n / res["wall_s"], 2),
        "samples_per_s_per_worker": round(n / task_s, 2),
        "time_split_s": {k: round(v, 3) for k, v in split.items()},
        "time_split_ms_per_sample": {k: round(1000 * v / n, 2) for k, v in split.items()},
        "render_only_ceiling_samples_per_s_per_worker": round(n / split["render"], 2),
        "fraction_of_ceiling": round(split["render"] / task_s, 3),
        "mb_per_1000_samples": round(m["totals"]["bytes"] / 1e6 / n * 1000, 2),
        "mean_visible_fraction": m["totals"]["mean_visible_fraction"],
        "occluder_types": m["totals"]["occluder_type_counts"],
    }


def single_pass_ms(size=256, reps=40):
    """One SEG pass (pyrender's own, and lasor's fast path) over one body (27k triangles), its 24 part
    meshes, and two bodies."""
    code = f"""
import time, numpy as np, torch, json
from lasor_shared.body_model import load_body_model
from lasor_shared.camera import intrinsics, orbit_camera
from lasor_datagen.render import SceneRenderer
import pyrender
m = load_body_model()
with torch.no_grad(): v = m.pose(torch.zeros(1, 72), torch.zeros(1, 10)).vertices[0].numpy()
r = SceneRenderer({size}, m.faces, m.lbs_weights.argmax(1).numpy(), 1, 1, v.shape[0])
K = intrinsics({size} * 1.6, {size}, {size}); R, t = orbit_camera(0.5, 0.2, 0, 3.5)
r.render(K, R, t, v, [v + 1], [])
res = {{}}
for name, mp in (("one_body", {{r.target.node: (1, 0, 0)}}), ("body_parts_24_nodes", r.part_map),
                 ("two_bodies", {{r.target.node: (1, 0, 0), r.persons[0].node: (32, 0, 0)}})):
    r.r.render(r.scene, flags=pyrender.RenderFlags.SEG, seg_node_map=mp)
    t0 = time.perf_counter()
    for _ in range({reps}):
        r.r.render(r.scene, flags=pyrender.RenderFlags.SEG, seg_node_map=mp)
    res[name] = round(1000 * (time.perf_counter() - t0) / {reps}, 2)
for name, mp in (("fast_body_parts_24_nodes", r.part_map),
                 ("fast_two_bodies", {{r.target.node: (1, 0, 0), r.persons[0].node: (32, 0, 0)}})):
    t0 = time.perf_counter()
    for _ in range({reps}):
        r._seg_pass(mp)
    res[name] = round(1000 * (time.perf_counter() - t0) / {reps}, 2)
t0 = time.perf_counter()
for _ in range({reps}):
    r.r._platform.make_current(); r.target.upload(v)
res["vertex_upload_one_body"] = round(1000 * (time.perf_counter() - t0) / {reps}, 3)
print(json.dumps(res))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_external(workers, shards, samples, tmp):
    """The same run through an external `dask scheduler` with `workers` `dask worker` processes on
    127.0.0.1 (the compose topology without Docker)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    bindir = os.path.dirname(sys.executable)
    env = dict(os.environ, PYOPENGL_PLATFORM=os.environ.get("PYOPENGL_PLATFORM", "egl"))
    quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    procs = [subprocess.Popen([os.path.join(bindir, "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--dashboard-address", "127.0.0.1:0", "--no-show"], **quiet)]
    try:
        procs += [subprocess.Popen([os.path.join(bindir, "dask"), "worker", f"tcp://127.0.0.1:{port}", "--nthreads", "1",
                                    "--host", "127.0.0.1", "--dashboard-address", "127.0.0.1:0"], **quiet)
                  for _ in range(workers)]
        from distributed import Client

        with Client(f"tcp://127.0.0.1:{port}", timeout="60s") as client:
            client.wait_for_workers(workers, timeout=120)
        return run(workers, shards, samples, tmp, scheduler=f"tcp://127.0.0.1:{port}")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)


def demo_wall(tmp):
    out = os.path.join(tmp, "demo")
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "lasor_datagen.cli", "generate", os.path.join(ROOT, "manifests", "demo.yaml"),
                    "--out", out, "--quiet"], check=True, capture_output=True)
    return round(time.perf_counter() - t, 1)


_SHARD_TIMER = """
import json, os, sys, tempfile, time
from lasor_datagen.orchestrate import prepare
from lasor_datagen import worker
recipe, rdict, inputs, rhash, body = prepare(sys.argv[1])[:5]
n_shards = int(sys.argv[2])
with tempfile.TemporaryDirectory() as tmp:
    worker.generate_shard(rdict, rhash, body, 0, tmp)              # warm-up: builds the worker context
    t, n = time.perf_counter(), 0
    for i in range(1, n_shards + 1):
        n += worker.generate_shard(rdict, rhash, body, i, tmp)["n_samples"]
    print(json.dumps({"samples": n, "s": time.perf_counter() - t}))
"""


def compare(other, shards, reps):
    """samples/s of the demo recipe in this tree and in `other`, alternating (see the module docstring)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYOPENGL_PLATFORM=os.environ.get("PYOPENGL_PLATFORM", "egl"))
    trees = {"this": ROOT, "other": os.path.abspath(other)}
    runs = {k: [] for k in trees}
    for _ in range(reps):
        for name, tree in trees.items():
            path = os.pathsep.join(os.path.join(tree, d) for d in ("shared", "datagen", "trainer"))
            out = subprocess.run([sys.executable, "-c", _SHARD_TIMER, os.path.join(tree, "manifests", "demo.yaml"),
                                  str(shards)], cwd=tree, env={**env, "PYTHONPATH": path}, capture_output=True,
                                 text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            runs[name].append(round(r["samples"] / r["s"], 3))
    best = {k: max(v) for k, v in runs.items()}
    return {"recipe": "manifests/demo.yaml", "shards_timed": shards, "reps": reps, "other_tree": trees["other"],
            "samples_per_s": runs, "best_samples_per_s": best,
            "time_per_sample_this_over_other": round(best["other"] / best["this"], 3)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "datagen.json"))
    ap.add_argument("--skip-demo", action="store_true")
    ap.add_argument("--compare", metavar="OTHER_TREE", help="Compare demo-recipe samples/s with another checkout.")
    ap.add_argument("--reps", type=int, default=2, help="Alternations for --compare.")
    ap.add_argument("--external", action="store_true",
                    help="Also measure 1 and 2 workers through an external scheduler on 127.0.0.1.")
    args = ap.parse_args()
    if args.compare:
        result = compare(args.compare, args.shards, args.reps)
        out = args.out if args.out != ap.get_default("out") else os.path.join(ROOT, "bench", "results",
                                                                              "datagen-compare.json")
        with open(out, "w") as f:
            json.dump(result, f, indent=1)
        print(json.dumps(result, indent=1))
        return
    from lasor_datagen.gl import select_gl_platform

    gl = select_gl_platform()
    result = {"machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                          "gl_platform": gl},
              "scene": "256x256, target + 1 occluding person + 1 object in every sample"}
    with tempfile.TemporaryDirectory() as tmp:
        result["single_pass_ms"] = single_pass_ms()
        result["runs"] = [run(w, args.shards, args.samples, tmp) for w in (1, 2)]
        r1, r2 = result["runs"]
        result["scaling_2_over_1_workers"] = round(r2["samples_per_s_in_tasks"] / r1["samples_per_s_in_tasks"], 2)
        if args.external:
            result["external_scheduler_runs"] = [run_external(w, args.shards, args.samples, tmp) for w in (1, 2)]
            e1, e2 = result["external_scheduler_runs"]
            result["external_scaling_2_over_1_workers"] = round(e2["samples_per_s_in_tasks"] / e1["samples_per_s_in_tasks"], 2)
        if not args.skip_demo:
            result["demo_wall_s"] = demo_wall(tmp)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
