"""Scene audit of a finished dataset, independent of the sampler's own tests.

The target and every occluding person are re-posed from the stored parameters (the body model in
the recipe), objects rebuilt from theirs. Inside tests use ray parity against the
closed meshes (parity of ray crossings, exact for watertight meshes); depths are exact point-to-triangle
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

import h5py
import numpy as np
import torch
import trimesh
from scipy.spatial import cKDTree

from lasor_shared.body_model import load_body_model
from lasor_shared.shards import GENDER_CODES, OBJECT_KINDS, read_manifest
from lasor_datagen.recipe import parse_recipe
from lasor_datagen.scene import object_faces, object_vertices

GROUND_TOL = 1e-3      # m
PENETRATION_LIMIT = 0.01
BODY_REACH = 0.3       # m: no point inside a human body is farther than this from its nearest vertex


def inside_mesh(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray, cell: float = 0.02) -> np.ndarray:
    """Whether each point lies inside a closed triangle mesh: parity of the crossings of a ray along +x
    (triangles bucketed on a yz grid so that each point meets only its few candidates)."""
    tri = np.asarray(vertices, np.float64)[faces]
    yz = tri[:, :, 1:]
    origin = yz.reshape(-1, 2).min(0)
    c_lo = np.floor((yz.min(1) - origin) / cell).astype(np.int64)
    c_hi = np.floor((yz.max(1) - origin) / cell).astype(np.int64)
    ny = int(c_hi[:, 0].max()) + 1
    span = c_hi - c_lo + 1
    counts = span[:, 0] * span[:, 1]
    t_id = np.repeat(np.arange(len(tri)), counts)
    k = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    cy = c_lo[t_id, 0] + k % span[t_id, 0]
    cz = c_lo[t_id, 1] + k // span[t_id, 0]
    key = cz * ny + cy
    order = np.argsort(key, kind="stable")
    key, t_id = key[order], t_id[order]
    p = np.asarray(points, np.float64)
    pc = np.floor((p[:, 1:] - origin) / cell).astype(np.int64)
    pkey = np.where((pc[:, 0] >= 0) & (pc[:, 0] < ny) & (pc[:, 1] >= 0), pc[:, 1] * ny + pc[:, 0], -1)
    start, stop = np.searchsorted(key, pkey), np.searchsorted(key, pkey, side="right")
    n = stop - start
    pid = np.repeat(np.arange(len(p)), n)
    cand = t_id[np.repeat(start, n) + np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)]
    a, b, c = tri[cand, 0], tri[cand, 1], tri[cand, 2]
    q = p[pid]
    # barycentric coordinates of q's (y, z) in the triangle's yz projection
    d = (b[:, 1] - a[:, 1]) * (c[:, 2] - a[:, 2]) - (c[:, 1] - a[:, 1]) * (b[:, 2] - a[:, 2])
    with np.errstate(divide="ignore", invalid="ignore"):
        u = ((q[:, 1] - a[:, 1]) * (c[:, 2] - a[:, 2]) - (c[:, 1] - a[:, 1]) * (q[:, 2] - a[:, 2])) / d
        w = ((b[:, 1] - a[:, 1]) * (q[:, 2] - a[:, 2]) - (q[:, 1] - a[:, 1]) * (b[:, 2] - a[:, 2])) / d
        hit = (d != 0) & (u >= 0) & (w >= 0) & (u + w <= 1)
        x = a[:, 0] + u * (b[:, 0] - a[:, 0]) + w * (c[:, 0] - a[:, 0])
        hit &= x > q[:, 0]
    return np.bincount(pid[hit], minlength=len(p)) % 2 == 1


def penetration(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray, reach: float = np.inf) -> float:
    """Deepest penetration (m) of `points` into the closed mesh, if deeper than PENETRATION_LIMIT; else
    0 or a smaller depth. A point's depth is at most its distance to the nearest vertex, so only points
    farther than the limit from every vertex, and (`reach`: the radius of the mesh's largest inscribed
    sphere or more) not farther than `reach`, can be that deep inside: only those are tested."""
    v = np.asarray(vertices, np.float64)
    lo, hi = v.min(0), v.max(0)
    p = np.asarray(points, np.float64)
    p = p[np.all((p > lo) & (p < hi), axis=1)]
    if not len(p):
        return 0.0
    tree = cKDTree(v)
    bound, _ = tree.query(p)                     # distance to the nearest vertex ≥ depth
    keep = (bound > PENETRATION_LIMIT) & (bound <= reach)
    p, bound = p[keep], bound[keep]
    if not len(p):
        return 0.0
    inside = inside_mesh(p, v, faces)
    p, bound = p[inside], bound[inside]
    if not len(p):
        return 0.0
    tri = v[faces]
    edge = float(np.linalg.norm(tri - np.roll(tri, 1, axis=1), axis=2).max())
    vertex_faces = trimesh.Trimesh(v, faces, process=False).vertex_faces
    deepest = 0.0
    for k in np.argsort(-bound):
        if bound[k] <= deepest:
            break
        near = vertex_faces[tree.query_ball_point(p[k], bound[k] + edge)].ravel()
        near = np.unique(near[near >= 0])        # every triangle within `bound` of the point
        cp = trimesh.triangles.closest_point(tri[near], np.repeat(p[k][None], len(near), 0))
        deepest = max(deepest, float(np.sqrt(((cp - p[k]) ** 2).sum(1)).min()))
    return deepest


def _dense(vertices, faces, edge=0.03):
    """Vertices of the mesh subdivided until no edge is longer than `edge` (m)."""
    v, _ = trimesh.remesh.subdivide_to_size(np.asarray(vertices, np.float64), np.asarray(faces), edge)
    return v


def audit_dataset(dataset_dir: str, limit: int | None = None) -> dict:
    """Audit the first `limit` samples (all when None); returns counts and worst values."""
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
