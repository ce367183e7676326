"""BodyVolume (the generator's inside tests) on the generator's own workload, this tree vs another checkout.

The workload: every BodyVolume and depth query of `--shards` shards of a recipe, recorded while this
tree's generator makes them (the bodies and query points do not depend on how depth is computed: the
tree's results decide placements, and both trees must give the same ones). Each tree then replays it in
a fresh one-thread process, alternating `--reps` times: per queried body, a new BodyVolume and all its
depth calls in order ("replay"), and a cell-grid build alone ("cells"); per body the minimum over the
reps (robust on a shared core). The replay checks that every depth equals the recorded one.

    python bench/bench_body_volume.py --compare OTHER_TREE [--recipe manifests/standard.yaml] [--shards 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_RECORD = """
import pickle, sys, tempfile
import numpy as np
from lasor_datagen import contact, worker
from lasor_datagen.orchestrate import prepare
bodies, calls = [], []
init, depth = contact.BodyVolume.__init__, contact.BodyVolume._depth
def rec_init(self, v, f):
    init(self, v, f); self._bench_id = len(bodies); bodies.append(np.array(v))
def rec_depth(self, p):
    d = depth(self, p); calls.append((self._bench_id, np.array(p), d)); return d
contact.BodyVolume.__init__, contact.BodyVolume._depth = rec_init, rec_depth
recipe, rdict, inputs, rhash, body = prepare(sys.argv[1])[:5]
with tempfile.TemporaryDirectory() as tmp:
    for i in range(int(sys.argv[2])):
        worker.generate_shard(rdict, rhash, body, i, tmp)
with open(sys.argv[3], "wb") as f:
    pickle.dump({"bodies": bodies, "calls": calls}, f)
"""

_REPLAY = """
import json, pickle, sys, time
import numpy as np
from lasor_datagen.contact import BodyVolume
from lasor_shared.body_model import load_body_model
faces = np.asarray(load_body_model(None).faces, np.int64)
with open(sys.argv[1], "rb") as f:
    w = pickle.load(f)
per_body = {}
for b, p, d in w["calls"]:
    per_body.setdefault(b, []).append((p, d))
warm = BodyVolume(w["bodies"][0], faces)       # first calls (numba loads its cached kernels) untimed
warm._build_cells(); warm._depth(w["bodies"][0][:100])
best = {}
for _ in range(int(sys.argv[2])):
    for b, calls in per_body.items():
        t0 = time.perf_counter()
        vol = BodyVolume(w["bodies"][b], faces)
        for p, d in calls:
            if vol._depth(p) != d:
                raise SystemExit(f"body {b}: depth differs from the recorded one")
        t1 = time.perf_counter()
        BodyVolume(w["bodies"][b], faces)._build_cells()
        t2 = time.perf_counter()
        r, c = best.get(b, (float("inf"), float("inf")))
        best[b] = (min(r, t1 - t0), min(c, t2 - t1))
n = len(best)
print(json.dumps({"replay_ms_per_queried_body": round(1000 * sum(r for r, _ in best.values()) / n, 3),
                  "cells_ms_per_body": round(1000 * sum(c for _, c in best.values()) / n, 3)}))
"""


def _env(tree):
    return dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", NUMBA_NUM_THREADS="1",
                PYOPENGL_PLATFORM=os.environ.get("PYOPENGL_PLATFORM", "egl"),
                PYTHONPATH=os.pathsep.join(os.path.join(tree, d) for d in ("shared", "datagen", "trainer")))


def _py(tree, code, *args):
    out = subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=tree, env=_env(tree),
                         capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"{tree}: failed:\n{out.stderr[-2000:]}")
    return out.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--compare", metavar="OTHER_TREE", required=True, help="Another checkout of the project.")
    ap.add_argument("--recipe", default="manifests/standard.yaml", help="Recipe (path relative to the tree).")
    ap.add_argument("--shards", type=int, default=1, help="Shards whose inside tests are recorded.")
    ap.add_argument("--reps", type=int, default=4, help="Replays per tree and alternation (minimum kept).")
    ap.add_argument("--alternations", type=int, default=2, help="Times each tree's process runs.")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "body-volume-compare.json"))
    a = ap.parse_args()
    trees = {"this": ROOT, "other": os.path.abspath(a.compare)}
    with tempfile.TemporaryDirectory() as tmp:
        work = os.path.join(tmp, "workload.pkl")
        _py(ROOT, _RECORD, os.path.join(ROOT, a.recipe), a.shards, work)
        runs = {k: [] for k in trees}
        for _ in range(a.alternations):
            for name, tree in trees.items():
                runs[name].append(json.loads(_py(tree, _REPLAY, work, a.reps).strip().splitlines()[-1]))
                print(name, runs[name][-1], flush=True)
    best = {k: {m: min(r[m] for r in v) for m in v[0]} for k, v in runs.items()}
    result = {"recipe": a.recipe, "shards_recorded": a.shards, "reps": a.reps, "alternations": a.alternations,
              "other_tree": os.path.relpath(trees["other"], ROOT) if trees["other"].startswith(ROOT) else "OTHER_TREE",
              "runs": runs, "best": best,
              "speedup_this_over_other": {m: round(best["other"][m] / best["this"][m], 2) for m in best["this"]}}
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
