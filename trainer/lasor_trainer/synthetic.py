"""A tiny schema-conforming dataset writer for tests and smoke runs (not the real generator).

`lasor-datagen generate` is the real generator. This writes the same fields and file attributes from
the real body model: random poses (zero pose + noise) and betas, panoramic orbit cameras, masks
from the neural renderer's exact forward rasteriser, one optional box "object occluder" in front of
the body, keypoints projected with visibility codes from the depth buffer.
"""

from __future__ import annotations

import hashlib
import json
import os

import h5py
import numpy as np
import torch

from lasor_shared.camera import intrinsics, orbit_camera, project
from lasor_trainer.neural_renderer import projection, rasterize_face_index_map, vertices_to_faces


def _sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def _samples(model, n, size, rng):
    B = n
    pose = np.zeros((B, 72), np.float32)
    pose[:, 3:] = rng.normal(0, 0.25, (B, 69))
    pose[:, :3] = rng.normal(0, 0.15, (B, 3))
    betas = rng.normal(0, 1.0, (B, 10)).astype(np.float32)
    with torch.no_grad():
        out = model.pose(torch.from_numpy(pose), torch.from_numpy(betas))
        verts = out.vertices.numpy()
        joints = out.joints.numpy()
        coco = model.keypoints(out).numpy()
    res = {k: [] for k in ("mask", "keypoints_coco", "visibility_coco", "joints2d", "visibility_joints", "cam_K",
                           "cam_R", "cam_t", "azimuth", "elevation", "roll", "distance", "focal",
                           "visible_fraction", "occluder_type", "n_object_occluders", "joints3d")}
    faces = torch.as_tensor(model.faces.astype(np.int64))[None]
    for b in range(B):
        az = (b + rng.random()) / B * 2 * np.pi
        el = rng.uniform(-0.3, 0.4)
        dist = rng.uniform(3.0, 4.5)
        f = size * rng.uniform(1.1, 1.5)
        K = intrinsics(f, size, size)
        R, t = orbit_camera(az, el, 0.0, dist, target=joints[b, 0])
        Kt, Rt, tt = (torch.tensor(a, dtype=torch.float32)[None] for a in (K, R, t))
        v = projection(torch.from_numpy(verts[b:b + 1]), Kt, Rt, tt[:, None], orig_size=size)
        fim, zbuf = rasterize_face_index_map(vertices_to_faces(v, faces), size)
        amodal = fim[0].numpy() >= 0
        zbuf = zbuf[0].numpy()
        box = np.zeros_like(amodal)
        occ = 0
        if rng.random() < 0.5:
            rows, cols = np.flatnonzero(amodal.any(1)), np.flatnonzero(amodal.any(0))
            h = (rows[-1] - rows[0]) * rng.uniform(0.2, 0.5)
            w = (cols[-1] - cols[0]) * rng.uniform(0.4, 1.0)
            r0 = int(rng.uniform(rows[0], rows[-1] - h))
            c0 = int(rng.uniform(cols[0] - w / 2, cols[-1] - w / 2))
            box[max(r0, 0):max(r0 + int(h), 0), max(c0, 0):max(c0 + int(w), 0)] = True
            occ = 2
        visible = amodal & ~box
        mask = (visible * 1 | amodal * 2 | box * 8).astype(np.uint8)

        def vis_codes(pts3):
            uv, z = project(pts3, K, R, t)
            codes = np.full(len(uv), 4, np.uint8)
            for k, (p, zz) in enumerate(zip(uv, z)):
                c, r = int(np.floor(p[0])), int(np.floor(p[1]))
                if not (0 <= c < size and 0 <= r < size) or zz <= 0:
                    codes[k] = 0
                elif box[r, c]:
                    codes[k] = 3
                elif zz > zbuf[r, c] + 0.15:
                    codes[k] = 1
            return uv.astype(np.float32), codes

        kp, kv = vis_codes(coco[b])
        j2, jv = vis_codes(joints[b])
        res["mask"].append(mask)
        res["keypoints_coco"].append(kp)
        res["visibility_coco"].append(kv)
        res["joints2d"].append(j2)
        res["visibility_joints"].append(jv)
        res["joints3d"].append((joints[b] @ R.T + t).astype(np.float32))
        res["cam_K"].append(K.astype(np.float32))
        res["cam_R"].append(R.astype(np.float32))
        res["cam_t"].append(t.astype(np.float32))
        res["azimuth"].append(az)
        res["elevation"].append(el)
        res["roll"].append(0.0)
        res["distance"].append(dist)
        res["focal"].append(f)
        res["visible_fraction"].append(visible.sum() / max(amodal.sum(), 1))
        res["occluder_type"].append(occ)
        res["n_object_occluders"].append(1 if occ else 0)
    out = {k: np.asarray(v) for k, v in res.items()}
    for k in ("azimuth", "elevation", "roll", "distance", "focal", "visible_fraction"):
        out[k] = out[k].astype(np.float32)
    for k in ("occluder_type", "n_object_occluders"):
        out[k] = out[k].astype(np.uint8)
    out["n_person_occluders"] = np.zeros(B, np.uint8)
    out["pose"], out["betas"] = pose, betas
    out["gender"] = np.zeros(B, np.uint8)
    out["transl"] = np.zeros((B, 3), np.float32)
    return out


def write_dataset(out_dir: str, model, n_shards: int = 2, per_shard: int = 16, size: int = 96, seed: int = 0):
    """Write shard-00000.h5 … and manifest.json in lasor's shard schema; returns out_dir."""
    from lasor_shared import shards as sh

    os.makedirs(out_dir, exist_ok=True)
    schema = sh.shard_schema(size, 1, 1)
    recipe = {"name": "trainer-synthetic", "seed": seed, "shards": n_shards, "samples_per_shard": per_shard,
              "image_size": size}
    inputs = {"body_models": {"neutral": model.sha256}, "pose_files": {}}
    rhash = sh.recipe_hash(recipe, inputs)
    records = []
    for s in range(n_shards):
        rng = np.random.default_rng([seed, s])
        data = _samples(model, per_shard, size, rng)
        n = per_shard
        data.update(person_pose=np.zeros((n, 1, 72), np.float32), person_betas=np.zeros((n, 1, 10), np.float32),
                    person_transl=np.zeros((n, 1, 3), np.float32), person_gender=np.zeros((n, 1), np.uint8),
                    person_role=np.zeros((n, 1), np.uint8),
                    object_kind=(data["occluder_type"] == 2).astype(np.uint8)[:, None],
                    object_params=np.zeros((n, 1, sh.OBJECT_PARAMS), np.float32))
        name = sh.shard_name(s)
        path = os.path.join(out_dir, name)
        with h5py.File(path + ".tmp", "w") as f:
            for k, (shape, dtype, per_sample) in schema.items():
                v = np.asarray(data[k]).astype(dtype)
                assert v.shape == (n, *shape), (k, v.shape, shape)
                f.create_dataset(k, data=v, chunks=(1, *shape) if per_sample else None,
                                 compression="gzip" if per_sample else None)
            f.attrs.update(schema_version=sh.SCHEMA_VERSION, recipe_hash=rhash, body_model_id=model.model_id,
                           body_model_sha256=model.sha256, body_models=json.dumps(inputs["body_models"]),
                           image_size=size, seed=seed, shard_index=s, n_samples=n, max_persons=1, max_objects=1)
        os.replace(path + ".tmp", path)
        records.append({"file": name, "index": s, "n_samples": n, "sha256": _sha(path), "bytes": os.path.getsize(path)})
    manifest = {"schema_version": sh.SCHEMA_VERSION, "recipe": recipe, "recipe_hash": rhash, "inputs": inputs,
                "shards": records, "image_size": size,
                "fields": {k: {"shape": list(shape), "dtype": str(dtype), "per_sample": per_sample}
                           for k, (shape, dtype, per_sample) in schema.items()},
                "body_model": {"id": model.model_id, "sha256": model.sha256},
                "totals": {"n_samples": per_shard * n_shards, "n_shards": n_shards}}
    sh.write_json_atomic(os.path.join(out_dir, "manifest.json"), manifest)
    return out_dir


def datagen_available() -> bool:
    """True when the real generator (`lasor-datagen generate`) is importable."""
    try:
        from lasor_datagen.cli import main  # noqa: PLC0415
    except Exception:
        return False
    return "generate" in getattr(main, "commands", {})


def make_test_dataset(out_dir: str, model, n_shards: int = 3, per_shard: int = 8, size: int = 96, seed: int = 0):
    """A tiny dataset for tests: the real generator on a tiny recipe when it exists (and
    LASOR_TEST_SYNTHETIC is unset), else this module's writer."""
    if datagen_available() and not os.environ.get("LASOR_TEST_SYNTHETIC"):
        import subprocess
        import sys

        import yaml

        recipe = os.path.join(os.path.dirname(out_dir), "tiny-recipe.yaml")
        with open(recipe, "w") as f:
            yaml.safe_dump({"name": "trainer-test", "seed": seed, "shards": n_shards, "samples_per_shard": per_shard,
                            "image_size": size}, f)
        cmd = [sys.executable, "-m", "lasor_datagen.cli", "generate", recipe, "--out", out_dir]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"lasor-datagen generate failed: {r.stderr[-2000:]}")
        return out_dir
    return write_dataset(out_dir, model, n_shards, per_shard, size, seed)
