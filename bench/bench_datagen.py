"""Datagen throughput per worker and where its time goes.

Default: for the demo and standard recipes (`--recipes`), one worker process, one thread, no cluster
(`generate_shard` in-process after a warm-up shard), prints and records samples/s, the per-stage split
per sample measured by the stage timers inside the generator (`lasor_datagen.timers`: pose sampling,
shape/camera sampling, body forward, occluder planning incl. retries, inside tests, render passes,
labels, compression + write), MB per 1,000 samples and the worker's peak RSS:

    python bench/bench_datagen.py [--recipes manifests/demo.yaml manifests/standard.yaml] [--shards 2]

--compare OTHER_TREE times a recipe's shards in this tree and in another checkout of the project
(e.g. `git archive BASE | tar -x -C /tmp/base`), alternating the two, one process each, and reports
samples/s, their ratio and each tree's split (an old tree reports the stages it had):

    python bench/bench_datagen.py --compare /tmp/base --recipe manifests/standard.yaml [--shards 2] [--reps 2]

--cluster runs the real pipeline (LocalCluster, one task per shard) at 256² with one occluding person
and one object in every sample, with 1 and 2 workers (and --external: through an external scheduler),
and the render-only ceiling (single SEG passes).
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
import json, os, resource, sys, tempfile, time
from lasor_datagen.orchestrate import prepare
from lasor_datagen import worker
recipe, rdict, inputs, rhash, body = prepare(sys.argv[1])[:5]
first, n_shards = int(sys.argv[2]), int(sys.argv[3])
with tempfile.TemporaryDirectory() as tmp:
    worker.generate_shard(rdict, rhash, body, first, tmp)          # warm-up: builds the worker context
    t, c, n, nbytes, split = time.perf_counter(), time.process_time(), 0, 0, {}
    for i in range(first + 1, first + 1 + n_shards):
        rec = worker.generate_shard(rdict, rhash, body, i, tmp)
        n, nbytes = n + rec["n_samples"], nbytes + rec["bytes"]
        for k, v in rec["timing"].items():
            split[k] = split.get(k, 0.0) + v
    s, cpu = time.perf_counter() - t, time.process_time() - c
print(json.dumps({"samples": n, "s": s, "cpu_s": cpu, "bytes": nbytes, "split_s": split,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def time_shards(tree, recipe, shards, clock="cpu", first=0):
    """generate_shard of `shards` shards of `recipe` (after a warm-up one) in a fresh one-thread process
    running the sources of `tree`; its stage timers read `clock` ("cpu": process CPU time, ≈ 10 µs a
    read, ≈ 2 % of a sample's time; "wall": ≈ 1 µs)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", NUMBA_NUM_THREADS="1",
               LASOR_STAGE_CLOCK=clock, PYOPENGL_PLATFORM=os.environ.get("PYOPENGL_PLATFORM", "egl"),
               PYTHONPATH=os.pathsep.join(os.path.join(tree, d) for d in ("shared", "datagen", "trainer")))
    out = subprocess.run([sys.executable, "-c", _SHARD_TIMER, os.path.join(tree, recipe), str(first), str(shards)],
                         cwd=tree, env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"{tree}: shard timer failed:\n{out.stderr[-2000:]}")
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "clock": clock}


def summarise(r):
    """Per sample: CPU time of the worker process (all its threads; the per-worker cost, robust on a
    shared machine), wall time, and the stage split (CPU ms; wall ms in --compare runs)."""
    n = r["samples"]
    return {"samples": n, "samples_per_cpu_s": round(n / r["cpu_s"], 2),
            "cpu_ms_per_sample": round(1000 * r["cpu_s"] / n, 2),
            "samples_per_s_wall": round(n / r["s"], 2), "wall_ms_per_sample": round(1000 * r["s"] / n, 2),
            "stage_clock": r["clock"],
            "split_ms_per_sample": {k: round(1000 * v / n, 3) for k, v in r["split_s"].items()},
            "mb_per_1000_samples": round(r["bytes"] / 1e6 / n * 1000, 3), "peak_rss_mb": round(r["peak_rss_mb"], 1)}


def split_table(name, res):
    rows = [f"{name}: {res['samples_per_cpu_s']} samples per CPU-second ({res['cpu_ms_per_sample']} CPU ms/sample; "
            f"wall {res['samples_per_s_wall']} samples/s), {res['mb_per_1000_samples']} MB per 1,000 samples, "
            f"peak RSS {res['peak_rss_mb']} MB"]
    total = res["wall_ms_per_sample" if res["stage_clock"] == "wall" else "cpu_ms_per_sample"]
    for k, v in sorted(res["split_ms_per_sample"].items(), key=lambda kv: -kv[1]):
        rows.append(f"  {k:<24}{v:9.3f} ms  {100 * v / total:5.1f} %")
    return "\n".join(rows)


def stages(recipes, shards):
    """Per-stage split per sample of each recipe in this tree (see the module docstring)."""
    res = {}
    for recipe in recipes:
        res[recipe] = summarise(time_shards(ROOT, recipe, shards))
        print(split_table(recipe, res[recipe]), flush=True)
    return {"mode": "one worker, one thread, generate_shard in-process after a warm-up shard",
            "shards_timed": shards, "recipes": res}


def compare(other, recipe, shards, reps):
    """samples/s of `recipe` in this tree and in `other`, alternating (see the module docstring)."""
    trees = {"this": ROOT, "other": os.path.abspath(other)}
    runs = {k: [] for k in trees}
    for _ in range(reps):
        for name, tree in trees.items():
            runs[name].append(summarise(time_shards(tree, recipe, shards, clock="wall")))
            print(split_table(f"{name} ({recipe})", runs[name][-1]), flush=True)
    best = {k: max(v, key=lambda r: r["samples_per_cpu_s"]) for k, v in runs.items()}
    speed = {k: [r["samples_per_cpu_s"] for r in v] for k, v in runs.items()}
    wall = {k: [r["samples_per_s_wall"] for r in v] for k, v in runs.items()}
    return {"recipe": recipe, "shards_timed": shards, "reps": reps,
            "other_tree": os.path.relpath(trees["other"], ROOT) if trees["other"].startswith(ROOT) else "OTHER_TREE",
            "samples_per_cpu_s": speed, "samples_per_s_wall": wall,
            "speedup_this_over_other_cpu": round(best["this"]["samples_per_cpu_s"]
                                                 / best["other"]["samples_per_cpu_s"], 3),
            "speedup_per_rep_cpu": [round(a / b, 3) for a, b in zip(speed["this"], speed["other"])],
            "speedup_per_rep_wall": [round(a / b, 3) for a, b in zip(wall["this"], wall["other"])],
            "best_runs": best}


def cluster(args):
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
            result["external_scaling_2_over_1_workers"] = round(e2["samples_per_s_in_tasks"]
                                                                / e1["samples_per_s_in_tasks"], 2)
        if not args.skip_demo:
            result["demo_wall_s"] = demo_wall(tmp)
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--recipes", nargs="+", default=["manifests/demo.yaml", "manifests/standard.yaml"],
                    help="Recipes (paths relative to the tree) for the per-stage split.")
    ap.add_argument("--recipe", default="manifests/standard.yaml", help="Recipe for --compare.")
    ap.add_argument("--shards", type=int, default=2, help="Shards timed per measurement (after a warm-up one).")
    ap.add_argument("--out", help="JSON written (default bench/results/datagen-stages.json, "
                                  "datagen-compare.json with --compare, datagen.json with --cluster).")
    ap.add_argument("--compare", metavar="OTHER_TREE", help="Compare samples/s with another checkout.")
    ap.add_argument("--reps", type=int, default=2, help="Alternations for --compare.")
    ap.add_argument("--cluster", action="store_true", help="The LocalCluster run with 1 and 2 workers at 256².")
    ap.add_argument("--samples", type=int, default=64, help="Samples per shard for --cluster.")
    ap.add_argument("--skip-demo", action="store_true", help="--cluster: skip the demo recipe's wall time.")
    ap.add_argument("--external", action="store_true",
                    help="--cluster: also measure 1 and 2 workers through an external scheduler on 127.0.0.1.")
    args = ap.parse_args()
    if args.compare:
        result, name = compare(args.compare, args.recipe, args.shards, args.reps), "datagen-compare.json"
    elif args.cluster:
        result, name = cluster(args), "datagen.json"
    else:
        result, name = stages(args.recipes, args.shards), "datagen-stages.json"
    out = args.out or os.path.join(ROOT, "bench", "results", name)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
