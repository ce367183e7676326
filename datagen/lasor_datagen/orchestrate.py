"""`lasor-datagen generate`: validate everything, then fan shards out over Dask, then the manifest.

Order of work (nothing is written until every check has passed):
1. recipe (fields, types, ranges), pose files (readable, width 72 / ≥ 66 for AMASS), body models;
2. the output folder can be written (or created), and holds no dataset of another recipe unless
   --overwrite;
3. an offscreen GL backend works (probed in a subprocess: the parent never creates a GL context,
   workers inherit PYOPENGL_PLATFORM);
4. `recipe.json` is written, shards already present and valid (sidecar hash = file hash, same
   recipe hash) are kept, the rest are submitted, one task per shard, with retries on worker loss;
5. `manifest.json` is assembled from the sidecars, written last, atomically.

The generator's own modules (torch, the body model, Dask, the worker) are imported inside the
functions that use them, so that `lasor-datagen verify` starts without them.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import json
import logging
import os
import platform
import signal
import threading
import time
from importlib.metadata import PackageNotFoundError, version

from lasor_shared.errors import LasorError
from lasor_shared.shards import (LOCK_FILE, MANIFEST, MAX_EMPTY_TARGETS, RECIPE_FILE, SCHEMA_VERSION, empty_targets,
                                 read_manifest, sha256_file, shard_name, shard_schema, sidecar_name,
                                 verify_dataset, write_json_atomic)

RETRIES = 3


@contextlib.contextmanager
def _generate_lock(out):
    """Exclusive lock on the dataset folder for one `generate` run (released when the process ends,
    however it ends); a second run into the same folder fails at once with a clear message."""
    path = os.path.join(out, LOCK_FILE)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            raise LasorError(f"--out {out}: another lasor-datagen generate (pid {holder}) is writing into this "
                             "folder; wait for it or use another --out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)


TEMPORARIES = ("shard-*.h5.tmp-*", ".tmp-*.json")   # half-written shards and sidecars (write_json_atomic)


def _remove_temporaries(out):
    """Half-written files of killed workers (`TEMPORARIES`): never part of a dataset."""
    for p in (p for pat in TEMPORARIES for p in glob.glob(os.path.join(out, pat))):
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass


def _check_out_dir(out: str) -> None:
    if os.path.exists(out):
        if not os.path.isdir(out):
            raise LasorError(f"--out {out}: exists and is not a folder")
        if not os.access(out, os.W_OK | os.X_OK):
            raise LasorError(f"--out {out}: folder is not writable")
        return
    parent = os.path.dirname(os.path.abspath(out))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK | os.X_OK):
        raise LasorError(f"--out {out}: cannot create the folder ({parent} is not writable)")


def _our_files(out):
    pats = ("shard-*.h5", "shard-*.json", *TEMPORARIES, MANIFEST, RECIPE_FILE, LOCK_FILE)
    return sorted({p for pat in pats for p in glob.glob(os.path.join(out, pat))})


def _existing_recipe_hash(out):
    path = os.path.join(out, RECIPE_FILE)
    if os.path.isfile(path):
        try:
            with open(path) as f:
                return json.load(f).get("recipe_hash", "?")
        except (OSError, json.JSONDecodeError):
            return "?"
    if glob.glob(os.path.join(out, "shard-*.h5")) or os.path.isfile(os.path.join(out, MANIFEST)):
        return "?"
    return None


def shard_is_valid(out, index, rhash) -> bool:
    """A finished shard: file present, sidecar of the same recipe, sidecar hash = file hash."""
    h5, side = os.path.join(out, shard_name(index)), os.path.join(out, sidecar_name(index))
    if not (os.path.isfile(h5) and os.path.isfile(side)):
        return False
    try:
        with open(side) as f:
            rec = json.load(f)
    except (OSError, json.JSONDecodeError):
        return False
    return (rec.get("recipe_hash") == rhash and rec.get("bytes") == os.path.getsize(h5)
            and rec.get("sha256") == sha256_file(h5))


def versions(gl_platform):
    import h5py
    import numpy
    import smplx
    import torch

    def v(name):
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    return {"lasor": v("lasor"), "python": platform.python_version(), "numpy": numpy.__version__,
            "torch": torch.__version__, "smplx": getattr(smplx, "__version__", v("smplx")), "h5py": h5py.__version__,
            "pyrender": v("pyrender-maintained") or v("pyrender"), "PyOpenGL": v("PyOpenGL"),
            "gl_platform": gl_platform}


def prepare(recipe_path, overrides=None):
    """Validate the recipe and all its inputs; returns (recipe, recipe dict, inputs, hash, body info)."""
    from lasor_shared.body_model import load_body_model
    from lasor_datagen.poses import load_pose_file
    from lasor_datagen.recipe import full_hash, input_hashes, load_recipe, recipe_dict

    recipe = load_recipe(recipe_path, overrides)
    for i, s in enumerate(recipe.poses.sources):
        if s.kind != "library":
            try:
                load_pose_file(s.kind, s.path, s.stride, s.up_axis)
            except LasorError as e:
                raise LasorError(f"poses.sources[{i}]: {e}") from None
    models = {}
    for g in recipe.body_model.used_genders():
        try:
            models[g] = load_body_model(recipe.body_model.path_for(g), gender=g)
        except LasorError as e:
            raise LasorError(f"body_model ({g}): {e}") from None
    inputs = input_hashes(recipe)
    rhash = full_hash(recipe, inputs)
    first = next(iter(models.values()))
    body = {"id": first.model_id, "sha256": first.sha256,
            "json": json.dumps({g: {"id": m.model_id, "sha256": m.sha256} for g, m in models.items()},
                               sort_keys=True)}
    return recipe, recipe_dict(recipe), inputs, rhash, body


def _make_client(scheduler, n_workers, lp_threads):
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            return Client(scheduler, timeout="20s"), None
        except (OSError, TimeoutError) as e:
            raise LasorError(f"--scheduler {scheduler}: cannot connect ({e})") from None
    if lp_threads:
        os.environ["LASOR_LP_THREADS"] = str(lp_threads)
    # workers ignore Ctrl-C (they inherit SIG_IGN): the terminal's SIGINT reaches the whole process group,
    # and only this process should handle it — by closing the cluster, with one line and no worker tracebacks
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                               silence_logs=logging.CRITICAL)  # task errors reach us through the futures
    finally:
        if main:
            signal.signal(signal.SIGINT, previous)
    return Client(cluster), cluster


def generate(recipe_path, out, scheduler=None, workers=None, overwrite=False, overrides=None, progress=True,
             log=print):
    """Generate (or finish) the dataset of a recipe into `out`. Returns the manifest."""
    from lasor_datagen.gl import select_gl_platform
    from lasor_datagen.worker import generate_shard  # noqa: F401  (fail before any work if workers could not import it)

    recipe, rdict, inputs, rhash, body = prepare(recipe_path, overrides)
    _check_out_dir(out)
    gl_platform = select_gl_platform()
    existing = _existing_recipe_hash(out) if os.path.isdir(out) else None
    if existing is not None and existing != rhash and not overwrite:
        raise LasorError(f"--out {out}: holds a dataset of a different recipe (use --overwrite to replace it)")
    os.makedirs(out, exist_ok=True)
    with _generate_lock(out):
        return _generate_locked(recipe, rdict, inputs, rhash, body, out, scheduler, workers, overwrite, progress,
                                log, gl_platform)


def _generate_locked(recipe, rdict, inputs, rhash, body, out, scheduler, workers, overwrite, progress, log,
                     gl_platform):
    from lasor_datagen.stats import totals

    existing = _existing_recipe_hash(out)  # again, under the lock
    if existing is not None and existing != rhash:
        if not overwrite:
            raise LasorError(f"--out {out}: holds a dataset of a different recipe (use --overwrite to replace it)")
        for p in _our_files(out):
            if os.path.basename(p) != LOCK_FILE:
                os.unlink(p)
    write_json_atomic(os.path.join(out, RECIPE_FILE), {"recipe": rdict, "inputs": inputs, "recipe_hash": rhash})
    _remove_temporaries(out)
    if os.path.exists(os.path.join(out, MANIFEST)):
        os.unlink(os.path.join(out, MANIFEST))
    n = recipe.samples_per_shard
    todo = [i for i in range(recipe.shards) if not shard_is_valid(out, i, rhash)]
    done = recipe.shards - len(todo)
    if done:
        log(f"resuming: {done} of {recipe.shards} shards already done and valid")
    timings = []
    t_start = time.perf_counter()
    if todo:
        timings = _run(todo, recipe, rdict, rhash, body, out, scheduler, workers, gl_platform, progress, done)
    wall = time.perf_counter() - t_start
    _remove_temporaries(out)  # a worker killed mid-shard leaves one; its retry wrote the shard again
    records = []
    for i in range(recipe.shards):
        with open(os.path.join(out, sidecar_name(i))) as f:
            records.append(json.load(f))
    empty = [empty_targets(os.path.join(out, shard_name(i))) for i in range(recipe.shards)]
    n_empty, n_all = sum(e[0] for e in empty), sum(e[1] for e in empty)
    schema = shard_schema(recipe.image_size, recipe.max_persons, recipe.max_objects, recipe.output.depth,
                          recipe.output.part_seg)
    manifest = {
        "format": "lasor-dataset", "schema_version": SCHEMA_VERSION, "recipe": rdict, "recipe_hash": rhash,
        "inputs": inputs, "versions": versions(gl_platform),
        "body_model": {"id": body["id"], "sha256": body["sha256"], "per_gender": json.loads(body["json"])},
        "image_size": recipe.image_size, "seed": recipe.seed, "samples_per_shard": n,
        "max_persons": recipe.max_persons, "max_objects": recipe.max_objects,
        "fields": {k: {"shape": list(s), "dtype": str(d), "per_sample": p} for k, (s, d, p) in schema.items()},
        "shards": [{k: r[k] for k in ("file", "index", "n_samples", "sha256", "bytes", "stats")} for r in records],
        "totals": totals(records),
        "empty_targets": {"n": n_empty, "fraction": round(n_empty / max(n_all, 1), 6)},
    }
    write_json_atomic(os.path.join(out, MANIFEST), manifest)
    generated = len(todo) * n
    if generated:
        log(f"generated {generated} samples in {len(todo)} shards in {wall:.1f} s "
            f"({generated / wall:.1f} samples/s); dataset {manifest['totals']['bytes'] / 1e6:.1f} MB in {out}")
    if n_empty / max(n_all, 1) > MAX_EMPTY_TARGETS:
        raise LasorError(f"{n_empty} of {n_all} samples have an empty target silhouette: the recipe's camera "
                         "(distance, focal, truncation) leaves the body out of the image; verify refuses this dataset")
    if n_empty:
        log(f"warning: {n_empty} of {n_all} samples have an empty target silhouette")
    return {"manifest": manifest, "timings": timings, "wall_s": wall, "generated": generated}


def _run(todo, recipe, rdict, rhash, body, out, scheduler, workers, gl_platform, progress, done):
    from distributed import as_completed
    from tqdm import tqdm

    from lasor_datagen.worker import generate_shard  # noqa: F401  (fail before any work if workers could not import it)

    n_workers = workers or os.cpu_count() or 1
    lp_threads = max(1, (os.cpu_count() or 1) // n_workers)
    client, cluster = _make_client(scheduler, n_workers, lp_threads)
    n = recipe.samples_per_shard
    total = recipe.shards * n
    bar = tqdm(total=total, initial=done * n, unit="sample", disable=not progress, dynamic_ncols=True,
               desc=f"shards {done}/{recipe.shards}")
    timings = []
    futures = []
    try:
        keys = [f"lasor-shard-{rhash[:12]}-{i:05d}" for i in todo]
        futures = client.map(generate_shard, [rdict] * len(todo), [rhash] * len(todo), [body] * len(todo), todo,
                             [os.path.abspath(out)] * len(todo), [gl_platform] * len(todo), key=keys,
                             retries=RETRIES, pure=False)
        finished = done
        for fut in as_completed(futures):
            try:
                rec = fut.result()
            except LasorError:
                raise
            except Exception as e:
                first = str(e).strip().splitlines()[0] if str(e).strip() else ""
                raise LasorError(f"shard task failed after {RETRIES} retries: {type(e).__name__}: {first[:300]}") from e
            timings.append(rec)
            finished += 1
            bar.set_description(f"shards {finished}/{recipe.shards}")
            bar.update(rec["n_samples"])
    except KeyboardInterrupt:
        logging.getLogger("distributed").setLevel(logging.CRITICAL)  # no shutdown chatter: one line from the CLI
        raise
    finally:
        bar.close()
        pending = [f for f in futures if not f.done()]
        try:
            if pending and cluster is None:  # a shared scheduler: cancel our tasks in one message
                client.cancel(pending)
            client.close()
            if cluster is not None:  # our own LocalCluster: closing it stops every task at once
                cluster.close()
        except (TimeoutError, OSError):
            pass  # on a loaded machine reaping worker processes can time out; every result is already in
    return timings


def verify(dataset_dir, recipe_path=None, log=print):
    """Problems list of `lasor_shared.shards.verify_dataset`, optionally against a recipe file."""
    read_manifest(dataset_dir)
    recipe = inputs = None
    if recipe_path:
        _, recipe, inputs, _, _ = prepare(recipe_path)
    return verify_dataset(dataset_dir, recipe, inputs)
