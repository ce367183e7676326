"""Scene audit of a finished dataset, independent of the sampler's own tests.

The target and every occluding person are re-posed from the stored parameters (the body model in
the recipe), objects rebuilt from theirs. Inside tests use the generalised winding number of the
closed meshes (solid angles, exact for watertight meshes); depths are exact point-to-triangle
distances (trimesh). Checked per sample:

- penetration: the deepest point of an occluder (person vertices; object vertices and a dense
  subdivision of its surface) inside the target, and of the target's vertices inside an occluder;
- ground: the lowest vertex of the target and of every person at y = 0; every object's lowest point
  at or above it;
- object sizes: every extent within the recipe's `size` × the target's height (a slab's thinnest
  edge 2–6 cm).
"""

from __future__ import annotations

import os

import numpy as np
from scipy.spatial import cKDTree

GROUND_TOL = 1e-3      # m
PENETRATION_LIMIT = 0.01
BODY_REACH = 0.3       # m: no point inside a human body is farther than this from its nearest vertex


def winding_number(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray, chunk: int = 32) -> np.ndarray:
    """Generalised winding number of each point w.r.t. a closed triangle mesh (≈1 inside, ≈0 outside)."""
    tri = np.asarray(vertices, np.float64)[faces]
    out = np.zeros(len(points))
    for s in range(0, len(points), chunk):
        p = np.asarray(points[s:s + chunk], np.float64)
        a, b, c = (tri[None, :, k] - p[:, None] for k in range(3))
        la, lb, lc = (np.linalg.norm(x, axis=-1) for x in (a, b, c))
        det = np.einsum("pfi,pfi->pf", a, np.cross(b, c))
        den = (la * lb * lc + np.einsum("pfi,pfi->pf", a, b) * lc + np.einsum("pfi,pfi->pf", b, c) * la
               + np.einsum("pfi,pfi->pf", c, a) * lb)
        out[s:s + chunk] = np.arctan2(det, den).sum(1) / (2 * np.pi)
    return out


def penetration(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray, reach: float = np.inf) -> float:
    """Deepest penetration (m) of `points` into the closed mesh, if deeper than PENETRATION_LIMIT; else
    0 or a smaller depth. A point's depth is at most its distance to the nearest vertex, so only points
    farther than the limit from every vertex, and (`reach`: the radius of the mesh's largest inscribed
    sphere or more) not farther than `reach`, can be that deep inside: only those are tested."""
    import trimesh

    v = np.asarray(vertices, np.float64)
    lo, hi = v.min(0), v.max(0)
    p = np.asarray(points, np.float64)
    p = p[np.all((p > lo) & (p < hi), axis=1)]
    if not len(p):
        return 0.0
    bound, _ = cKDTree(v).query(p)               # distance to the nearest vertex ≥ depth
    keep = (bound > PENETRATION_LIMIT) & (bound <= reach)
    p, bound = p[keep], bound[keep]
    if not len(p):
        return 0.0
    inside = winding_number(p, v, faces) > 0.5
    p, bound = p[inside], bound[inside]
    tri = v[faces]
    deepest = 0.0
    for k in np.argsort(-bound):
        if bound[k] <= deepest:
            break
        cp = trimesh.triangles.closest_point(tri, np.repeat(p[k][None], len(tri), 0))
        deepest = max(deepest, float(np.sqrt(((cp - p[k]) ** 2).sum(1)).min()))
    return deepest


def _dense(vertices, faces, edge=0.03):
    """Vertices of the mesh subdivided until no edge is longer than `edge` (m)."""
    import trimesh

    v, _ = trimesh.remesh.subdivide_to_size(np.asarray(vertices, np.float64), np.asarray(faces), edge)
    return v


def audit_dataset(dataset_dir: str, limit: int | None = None) -> dict:
    """Audit the first `limit` samples (all when None); returns counts and worst values."""
    import h5py
    import torch

    from lasor_shared.body_model import load_body_model
    from lasor_shared.shards import GENDER_CODES, OBJECT_KINDS, read_manifest
    from lasor_datagen.recipe import parse_recipe
    from lasor_datagen.scene import object_faces, object_vertices

    manifest = read_manifest(dataset_dir)
    recipe = parse_recipe(manifest["recipe"])
    models = {}

    def body(pose, betas, gender, transl):
        g = {c: name for name, c in GENDER_CODES.items()}[int(gender)]
        if g not in models:
            models[g] = load_body_model(recipe.body_model.path_for(g), gender=g)
        with torch.no_grad():
            out = models[g].pose(torch.tensor(pose[None], dtype=torch.float32),
                                 torch.tensor(betas[None], dtype=torch.float32))
        return out.vertices[0].numpy().astype(np.float64) + transl, np.asarray(models[g].faces, np.int64)

    lo_size, hi_size = recipe.occlusion.object.size
    res = {"samples": 0, "occluders": 0, "penetrating": 0, "max_penetration_m": 0.0, "off_ground": 0,
           "max_ground_error_m": 0.0, "objects": 0, "objects_out_of_size": 0, "max_object_extent_m": 0.0}
    for rec in manifest["shards"]:
        with h5py.File(os.path.join(dataset_dir, rec["file"]), "r") as h:
            d = {k: h[k][:] for k in ("pose", "betas", "gender", "transl", "person_pose", "person_betas",
                                      "person_gender", "person_transl", "person_role", "object_kind",
                                      "object_params")}
        for i in range(len(d["pose"])):
            if limit is not None and res["samples"] >= limit:
                return res
            res["samples"] += 1
            tv, faces = body(d["pose"][i], d["betas"][i], d["gender"][i], d["transl"][i])
            lo, hi = tv.min(0), tv.max(0)
            height = max(hi[1] - lo[1], 0.6 * (hi - lo).max())
            ground = [abs(lo[1])]
            depths = []
            for k in np.flatnonzero(d["person_role"][i] > 0):
                pv, _ = body(d["person_pose"][i, k], d["person_betas"][i, k], d["person_gender"][i, k],
                             d["person_transl"][i, k])
                ground.append(abs(pv[:, 1].min()))
                depths.append(max(penetration(pv, tv, faces, BODY_REACH), penetration(tv, pv, faces, BODY_REACH)))
            for k in np.flatnonzero(d["object_kind"][i] > 0):
                kind, params = OBJECT_KINDS[int(d["object_kind"][i, k])], d["object_params"][i, k]
                ov, of = object_vertices(kind, params).astype(np.float64), object_faces(kind)
                ground.append(max(-ov[:, 1].min(), 0.0))
                depths.append(max(penetration(_dense(ov, of), tv, faces, BODY_REACH), penetration(tv, ov, of)))
                ext = np.sort(params[3:6])
                sized = ext[1:] if kind == "slab" else ext
                bad = np.any(sized < lo_size * height - 1e-4) or np.any(sized > hi_size * height + 1e-4)
                if kind == "slab":
                    bad |= not (0.02 - 1e-4 <= ext[0] <= 0.06 + 1e-4)
                res["objects"] += 1
                res["objects_out_of_size"] += int(bad)
                res["max_object_extent_m"] = max(res["max_object_extent_m"], float(ext[-1]))
            res["occluders"] += len(depths)
            if depths:
                res["penetrating"] += int(max(depths) > PENETRATION_LIMIT)
                res["max_penetration_m"] = max(res["max_penetration_m"], max(depths))
            res["off_ground"] += int(max(ground) > GROUND_TOL)
            res["max_ground_error_m"] = max(res["max_ground_error_m"], float(max(ground)))
    return res
