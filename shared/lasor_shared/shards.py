"""The shard schema and the dataset manifest: the contract between `lasor-datagen` and `lasor-train`.

A dataset folder holds `shard-00000.h5`, `shard-00001.h5`, … (a fixed number of samples each),
one `shard-NNNNN.json` sidecar per shard (its sha256 and statistics; lets an interrupted run resume
without re-hashing) and `manifest.json`, written last and atomically.

Every shard has one HDF5 dataset per field, leading sample axis N (see `FIELDS`; shapes use
H = W = image size, KP = the recipe's person-slot count, KO = its object-slot count):

| field | shape | dtype | meaning |
|---|---|---|---|
| mask | (N,H,W) | uint8 | bit0 target visible (modal), bit1 target full (amodal), bit2 person occluders, bit3 object occluders (front-most surfaces) |
| keypoints_coco | (N,17,2) | float32 | COCO-17 pixel coordinates (OpenCV, pixel centres at +0.5) |
| visibility_coco | (N,17) | uint8 | 0 outside, 1 self-occluded, 2 by a person, 3 by an object, 4 visible |
| joints2d / visibility_joints | (N,24,2) / (N,24) | float32 / uint8 | the 24 SMPL joints projected, same codes |
| pose, betas, gender, transl | (N,72), (N,10), (N,), (N,3) | float32, float32, uint8, float32 | target SMPL parameters in the world (body) frame; gender 0 neutral, 1 male, 2 female |
| joints3d | (N,24,3) | float32 | SMPL joints in CAMERA coordinates (metres) |
| cam_K, cam_R, cam_t | (N,3,3), (N,3,3), (N,3) | float32 | intrinsics and world→camera extrinsics (x_cam = R x + t) |
| azimuth, elevation, roll, distance, focal | (N,) | float32 | the orbit camera (radians, metres, pixels); azimuth 0 = in front of the body |
| visible_fraction | (N,) | float32 | modal / amodal pixel count of the target |
| occluder_type | (N,) | uint8 | 0 none, 1 person, 2 object, 3 both — measured: a kind counts if its front-most surfaces cover ≥ `OCCLUDER_MIN_SHARE` of the target's amodal pixels |
| n_person_occluders, n_object_occluders | (N,) | uint8 | bodies / objects in the scene |
| person_pose, person_betas, person_transl, person_gender | (N,KP,72), (N,KP,10), (N,KP,3), (N,KP) | float32, float32, float32, uint8 | other people; slots past n_person_occluders are zero |
| person_role | (N,KP) | uint8 | 0 unused slot, 1 placed in front of the target, 2 placed behind/beside it |
| object_kind | (N,KO) | uint8 | 0 unused, 1 box, 2 cylinder, 3 sphere, 4 slab, 5 prism (extruded star polygon) |
| object_params | (N,KO,17) | float32 | centre (3, world), extents (3), rotation (3, axis-angle), prism vertex radii (8, fraction of the half-extent) |
| depth (optional) | (N,H,W) | float16 | front-most depth of the full scene, metres, 0 = background |
| part_seg (optional) | (N,H,W) | uint8 | front-most SMPL part of the target alone (amodal): 0 background, 1 + joint index |

`lasor_datagen.scene.object_vertices(kind, params)` rebuilds an object's mesh; bodies come from the
body model with (pose, betas, transl). File attributes: see `FILE_ATTRS`.
h5py is imported inside the functions that open shards: the command lines import this module for its
constants and start without it.
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np

from lasor_shared.atomic import atomic_write
from lasor_shared.errors import LasorError
from lasor_shared.hashing import sha256_file  # noqa: F401  (re-exported: the shard hash)

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
RECIPE_FILE = "recipe.json"
LOCK_FILE = ".generate.lock"   # held (flock) by a running `lasor-datagen generate`
MAX_EMPTY_TARGETS = 0.5        # a dataset with a larger share of samples without any target pixel is refused
OBJECT_PARAMS = 17
PRISM_SIDES = 8
OCCLUDER_MIN_SHARE = 0.005
GENDERS = ("neutral", "male", "female")  # the one list of genders; a gender's code is its index
GENDER_CODES = {g: code for code, g in enumerate(GENDERS)}
OBJECT_KINDS = ("none", "box", "cylinder", "sphere", "slab", "prism")
OCCLUDER_TYPES = ("none", "person", "object", "both")
FILE_ATTRS = ("schema_version", "recipe_hash", "body_model_id", "body_model_sha256", "body_models",
              "image_size", "seed", "shard_index", "n_samples", "max_persons", "max_objects")

# name -> (shape after N, with symbols H, W, KP, KO), dtype, per-sample chunking)
FIELDS = {
    "mask": (("H", "W"), "uint8", True),
    "keypoints_coco": ((17, 2), "float32", False),
    "visibility_coco": ((17,), "uint8", False),
    "joints2d": ((24, 2), "float32", False),
    "visibility_joints": ((24,), "uint8", False),
    "pose": ((72,), "float32", False),
    "betas": ((10,), "float32", False),
    "gender": ((), "uint8", False),
    "transl": ((3,), "float32", False),
    "joints3d": ((24, 3), "float32", False),
    "cam_K": ((3, 3), "float32", False),
    "cam_R": ((3, 3), "float32", False),
    "cam_t": ((3,), "float32", False),
    "azimuth": ((), "float32", False),
    "elevation": ((), "float32", False),
    "roll": ((), "float32", False),
    "distance": ((), "float32", False),
    "focal": ((), "float32", False),
    "visible_fraction": ((), "float32", False),
    "occluder_type": ((), "uint8", False),
    "n_person_occluders": ((), "uint8", False),
    "n_object_occluders": ((), "uint8", False),
    "person_pose": (("KP", 72), "float32", False),
    "person_betas": (("KP", 10), "float32", False),
    "person_transl": (("KP", 3), "float32", False),
    "person_gender": (("KP",), "uint8", False),
    "person_role": (("KP",), "uint8", False),
    "object_kind": (("KO",), "uint8", False),
    "object_params": (("KO", OBJECT_PARAMS), "float32", False),
}
OPTIONAL_FIELDS = {
    "depth": (("H", "W"), "float16", True),
    "part_seg": (("H", "W"), "uint8", True),
}


def shard_schema(image_size: int, max_persons: int, max_objects: int, depth: bool = False,
                 part_seg: bool = False) -> dict:
    """{field: (shape after N, numpy dtype, per-sample chunks)} for one dataset's settings."""
    dims = {"H": image_size, "W": image_size, "KP": max_persons, "KO": max_objects}
    fields = dict(FIELDS)
    if depth:
        fields["depth"] = OPTIONAL_FIELDS["depth"]
    if part_seg:
        fields["part_seg"] = OPTIONAL_FIELDS["part_seg"]
    return {name: (tuple(dims.get(s, s) for s in shape), np.dtype(dtype), per_sample)
            for name, (shape, dtype, per_sample) in fields.items()}


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.h5"


def sidecar_name(index: int) -> str:
    return f"shard-{index:05d}.json"


def canonical_json(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def recipe_hash(recipe: dict, inputs: dict) -> str:
    """Hash of a validated recipe (plain dict) and the content hashes of the files it names."""
    return hashlib.sha256(canonical_json({"recipe": recipe, "inputs": inputs}).encode()).hexdigest()


def write_json_atomic(path: str, obj) -> None:
    """Write JSON through `atomic_write` (temporary `.tmp-*.json` in the same folder, fsync, rename)."""
    with atomic_write(path, prefix=".tmp-", suffix=".json") as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=1, sort_keys=True)
            f.write("\n")


def open_shard(path: str):
    """Open a shard read-only (h5py.File); LasorError if it is missing or not HDF5."""
    import h5py

    if not os.path.isfile(path):
        raise LasorError(f"{path}: shard not found")
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise LasorError(f"{path}: not a readable HDF5 shard ({e})") from None


def read_manifest(dataset_dir: str) -> dict:
    """The parsed manifest.json of a dataset folder; LasorError if missing or malformed."""
    path = os.path.join(dataset_dir, MANIFEST)
    if not os.path.isfile(path):
        raise LasorError(f"{dataset_dir}: no {MANIFEST} (not a finished lasor dataset)")
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError, RecursionError) as e:  # includes JSONDecodeError, UnicodeDecodeError
        raise LasorError(f"{path}: unreadable manifest ({str(e).splitlines()[0][:200]})") from None
    if not isinstance(manifest, dict):
        raise LasorError(f"{path}: a manifest is a JSON object, got {type(manifest).__name__}")
    for key in ("schema_version", "recipe", "recipe_hash", "inputs", "shards", "fields", "image_size"):
        if key not in manifest:
            raise LasorError(f"{path}: manifest has no {key!r}")
    if not isinstance(manifest["shards"], list) or not all(
            isinstance(r, dict) and isinstance(r.get("file"), str) and isinstance(r.get("index"), int)
            and isinstance(r.get("n_samples"), int) and isinstance(r.get("sha256"), str) for r in manifest["shards"]):
        raise LasorError(f"{path}: malformed shards table (each needs file, index, n_samples, sha256)")
    if manifest["schema_version"] != SCHEMA_VERSION:
        raise LasorError(f"{path}: schema_version {manifest['schema_version']}, this lasor reads {SCHEMA_VERSION}")
    return manifest


def check_shard(path: str, schema: dict, n_samples: int | None = None, attrs: dict | None = None) -> list[str]:
    """Problems with one shard's structure (fields, dtypes, shapes, attributes); [] if it is fine."""
    name = os.path.basename(path)
    try:
        f = open_shard(path)
    except LasorError as e:
        return [str(e)]
    problems = []
    with f:
        for key in FILE_ATTRS:
            if key not in f.attrs:
                problems.append(f"{name}: attribute {key!r} missing")
        n = int(f.attrs.get("n_samples", -1))
        if n_samples is not None and n != n_samples:
            problems.append(f"{name}: n_samples {n}, manifest says {n_samples}")
        for key, want in (attrs or {}).items():
            got = f.attrs.get(key)
            got = got.decode() if isinstance(got, bytes) else got
            if got is not None and np.ndim(got) == 0 and got != want:
                problems.append(f"{name}: attribute {key} is {got!r}, expected {want!r}")
        for field, (shape, dtype, _) in schema.items():
            if field not in f:
                problems.append(f"{name}: field {field!r} missing")
                continue
            ds = f[field]
            if ds.dtype != dtype or ds.shape != (n, *shape):
                problems.append(f"{name}: field {field!r} is {ds.dtype}{ds.shape}, expected {dtype}{(n, *shape)}")
        extra = sorted(set(f.keys()) - set(schema))
        if extra:
            problems.append(f"{name}: unexpected field(s) {', '.join(extra)}")
    return problems


def empty_targets(path: str) -> tuple[int, int]:
    """(samples whose target has no pixel at all, samples) of one shard: visible_fraction 0 with no
    occluder means the full (amodal) silhouette is empty (a fully hidden target has an occluder type)."""
    f = open_shard(path)
    with f:
        vf, occ = f["visible_fraction"][()], f["occluder_type"][()]
    return int(np.sum((vf == 0) & (occ == 0))), int(len(vf))


def stray_files(dataset_dir: str, manifest: dict) -> list[str]:
    """Files lasor could have written into the folder that the manifest does not account for
    (extra shards or sidecars, temporaries of interrupted runs)."""
    expected = {MANIFEST, RECIPE_FILE, LOCK_FILE}
    for rec in manifest["shards"]:
        expected |= {rec["file"], sidecar_name(rec["index"])}
    return sorted(n for n in os.listdir(dataset_dir)
                  if n not in expected and (n.startswith("shard-") or ".tmp" in n))


def manifest_schema(manifest: dict) -> dict:
    """The schema a manifest promises, as `shard_schema` returns it."""
    return {k: (tuple(v["shape"]), np.dtype(v["dtype"]), bool(v.get("per_sample", False)))
            for k, v in manifest["fields"].items()}


def verify_dataset(dataset_dir: str, recipe: dict | None = None, inputs: dict | None = None,
                   deep: bool = True) -> list[str]:
    """Re-hash every shard against manifest.json and check its schema; returns the problems found.

    recipe/inputs (optional): the validated recipe a user expects; a different hash is a problem.
    deep=False skips opening the HDF5 files (hashes only). Raises LasorError only if there is no
    readable manifest at all.
    """
    manifest = read_manifest(dataset_dir)
    problems = []
    if recipe_hash(manifest["recipe"], manifest["inputs"]) != manifest["recipe_hash"]:
        problems.append("manifest: recipe_hash does not match its recipe (manifest edited?)")
    if recipe is not None and recipe_hash(recipe, inputs or {}) != manifest["recipe_hash"]:
        problems.append("manifest: dataset was generated from a different recipe than the one given")
    try:
        schema = manifest_schema(manifest)
    except (KeyError, TypeError) as e:
        return problems + [f"manifest: malformed fields table ({e})"]
    listed = set()
    for rec in manifest["shards"]:
        fname = rec["file"]
        listed.add(fname)
        path = os.path.join(dataset_dir, fname)
        if not os.path.isfile(path):
            problems.append(f"{fname}: missing")
            continue
        size = os.path.getsize(path)
        if "bytes" in rec and size != rec["bytes"]:
            problems.append(f"{fname}: {size} bytes, manifest says {rec['bytes']} (truncated or altered)")
        if sha256_file(path) != rec["sha256"]:
            problems.append(f"{fname}: sha256 differs from the manifest (altered or corrupted)")
            continue
        if deep:
            problems += check_shard(path, schema, rec["n_samples"],
                                    {"recipe_hash": manifest["recipe_hash"], "shard_index": rec["index"]})
    expected = [shard_name(i) for i in range(manifest["recipe"].get("shards", len(manifest["shards"])))]
    for fname in expected:
        if fname not in listed:
            problems.append(f"{fname}: expected by the recipe but not in the manifest")
    if deep and not problems:  # every shard is intact: count samples without any target pixel
        counts = [empty_targets(os.path.join(dataset_dir, r["file"])) for r in manifest["shards"]]
        n_empty, n = sum(c[0] for c in counts), sum(c[1] for c in counts)
        if n and n_empty / n > MAX_EMPTY_TARGETS:
            problems.append(f"{n_empty} of {n} samples have an empty target silhouette (camera too far or focal "
                            "too long?): not usable for training")
    for fname in stray_files(dataset_dir, manifest):
        problems.append(f"{fname}: stray file, not part of the dataset (left by an interrupted run, or copied in)")
    total = sum(r["n_samples"] for r in manifest["shards"])
    if manifest.get("totals", {}).get("n_samples", total) != total:
        problems.append("manifest: totals.n_samples does not match the shards")
    return problems
