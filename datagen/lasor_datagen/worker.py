"""One Dask task = one shard. Everything here runs inside a worker process.

`generate_shard` is the task. Its randomness comes from SeedSequence([recipe seed, shard index])
alone, consumed in a fixed order (chunks of `CHUNK` samples: draw parameters, one batched smplx
forward per gender (occluding people in all their candidate poses), then per sample: framing,
occluder placement, two render passes (re-placements for a missed hidden-share goal redo only the
second: the target's own pass does not depend on occluders), labels), and
torch runs single-threaded, so a shard's bytes do not depend on which worker made it or when.

The per-process context (body models, pose banks, the pyrender scene) lives in `_CONTEXTS`, a
global of this importable module, built on a worker's first task and reused by later ones.
"""

from __future__ import annotations

import os
import time
import uuid

import numpy as np

CHUNK = 32
MAX_POSE_DRAWS = 50     # successive self-penetrating poses before giving up on a pose source
OCC_RETRIES = 2         # re-placements (and renders) aiming the measured hidden share at its goal
OCC_TOL = 0.03          # … when it misses by more than this
PERSON_CANDIDATES = 3   # poses/headings drawn per occluding person; placement keeps one that can hide its goal
_CONTEXTS: dict = {}


class _Context:
    def __init__(self, recipe):
        import torch

        from lasor_shared.body_model import load_body_model
        from lasor_datagen.contact import SelfContact
        from lasor_datagen.labels import COCO17_SURFACE, SURFACE_TOL
        from lasor_datagen.poses import PoseSampler
        from lasor_datagen.render import SceneRenderer

        self.recipe = recipe
        self.models = {g: load_body_model(recipe.body_model.path_for(g), gender=g)
                       for g in recipe.body_model.used_genders()}
        first = next(iter(self.models.values()))
        self.faces = np.asarray(first.faces, np.int64)
        self.vertex_part = first.lbs_weights.argmax(1).numpy()
        self.n_vertices = first.v_template.shape[0]
        for g, m in self.models.items():
            if m.v_template.shape[0] != self.n_vertices:
                raise ValueError(f"body model for {g} has a different mesh topology")
        self.poses = PoseSampler(recipe.poses)
        rest = (first.J_regressor @ first.v_template).numpy()
        self.contact = SelfContact(rest, first.parents.numpy(), first.v_template.numpy(), self.vertex_part)
        # depth under the skin of the COCO surface keypoints in the rest pose → their tolerance
        with torch.no_grad():
            out = first.pose(torch.zeros(1, 72), torch.zeros(1, 10))
            kp = first.keypoints(out)[0].numpy()
            v = out.vertices[0].numpy()
        d = np.sqrt(((kp[:, None, :] - v[None]) ** 2).sum(-1)).min(1)
        self.surface_tol = np.where(COCO17_SURFACE, SURFACE_TOL + d, np.nan)
        self.renderer = SceneRenderer(recipe.image_size, self.faces, self.vertex_part, recipe.max_persons,
                                      recipe.max_objects, self.n_vertices)

    def forward(self, poses, betas, genders):
        """Vertices (B,V,3), joints (B,24,3), COCO keypoints (B,17,3) at transl 0, float32 numpy."""
        import smplx
        import torch

        B = len(poses)
        V = np.zeros((B, self.n_vertices, 3), np.float32)
        Jt = np.zeros((B, 24, 3), np.float32)
        KP = np.zeros((B, 17, 3), np.float32)
        for g, model in self.models.items():
            idx = [i for i in range(B) if genders[i] == g]
            if not idx:
                continue
            with torch.no_grad():   # the lean forward pass (= smplx's up to float rounding, 4× faster)
                pose = torch.tensor(np.stack([poses[i] for i in idx]), dtype=torch.float32)
                rotmats = smplx.lbs.batch_rodrigues(pose.reshape(-1, 3)).reshape(len(idx), 24, 3, 3)
                verts, joints = model.skin(rotmats, torch.tensor(np.stack([betas[i] for i in idx]),
                                                                 dtype=torch.float32))
                kp = model.skin_keypoints(verts, joints)
            V[idx], Jt[idx], KP[idx] = verts.numpy(), joints.numpy(), kp.numpy()
        return V, Jt, KP


def get_context(recipe_data: dict):
    from lasor_shared.shards import canonical_json
    from lasor_datagen.recipe import parse_recipe

    key = canonical_json(recipe_data)
    if key not in _CONTEXTS:
        for old in _CONTEXTS.values():
            old.renderer.close()
        _CONTEXTS.clear()
        _CONTEXTS[key] = _Context(parse_recipe(recipe_data))
    return _CONTEXTS[key]


def _prepare_process(gl_platform: str | None):
    if gl_platform and "OpenGL" not in __import__("sys").modules:
        os.environ.setdefault("PYOPENGL_PLATFORM", gl_platform)
    from lasor_datagen.render import configure_gl_threads

    configure_gl_threads()
    import torch

    torch.set_num_threads(1)


def _pose(rng, ctx, stats):
    """A pose from the recipe's sources whose limbs do not pass through the torso or each other."""
    from lasor_shared.errors import LasorError

    for _ in range(MAX_POSE_DRAWS):
        pose = ctx.poses.sample(rng)
        stats.pose_draws += 1
        if ctx.contact.ok(pose):
            return pose
        stats.pose_rejected += 1
    raise LasorError(f"poses: {MAX_POSE_DRAWS} successive draws had limbs through the body; check the pose sources")


def _draw(rng, ctx, stats):
    """Parameters of one sample that need no geometry (poses, shapes, occluder plan)."""
    from lasor_datagen.samplers import heading, plan_occlusion, sample_betas, sample_gender

    r = ctx.recipe
    occ = r.occlusion
    s = {"pose": _pose(rng, ctx, stats), "betas": sample_betas(rng, r.shapes.betas_std),
         "gender": sample_gender(rng, r.body_model.genders)}
    n_p, n_o, goal, background = plan_occlusion(rng, occ)
    persons = []
    for role in [1] * n_p + ([2] if background else []):
        k = PERSON_CANDIDATES if role == 1 else 1
        persons.append({"poses": [heading(_pose(rng, ctx, stats), rng.uniform(0, 2 * np.pi)) for _ in range(k)],
                        "betas": sample_betas(rng, r.shapes.betas_std),
                        "gender": sample_gender(rng, r.body_model.genders), "role": role})
    s["persons"] = persons
    s["objects"] = [occ.object.kinds[int(rng.integers(len(occ.object.kinds)))] for _ in range(n_o)]
    s["goal"] = goal
    s["placement_seed"] = int(rng.integers(2 ** 63))
    return s


def _place(ctx, cam, verts, joints, body, d, person_verts, goal):
    """Occluders of one sample for a hidden-share goal: (planner, persons, objects); persons are
    (person, chosen pose, translation, world vertices), person_verts the BodyVolumes (at transl 0) of
    each person's candidate poses. Its randomness comes from the sample's own placement seed, so a retry with
    another goal draws the same numbers."""
    from lasor_datagen.samplers import OcclusionPlanner

    rng = np.random.default_rng(d["placement_seed"])
    planner = OcclusionPlanner(ctx.recipe.occlusion, ctx.recipe.image_size, cam, verts, joints, ctx.faces, body)
    n_occ = sum(p["role"] == 1 for p in d["persons"]) + len(d["objects"])
    k_goal = 0
    persons = []
    for p, v0 in zip(d["persons"], person_verts):
        if p["role"] == 1:
            k_goal += 1
        placed = planner.place_person(rng, v0, goal * k_goal / max(n_occ, 1), front=p["role"] == 1)
        if placed is not None:
            k, ptr = placed[0], placed[1].astype(np.float32)
            persons.append((p, p["poses"][k], ptr, (v0[k].v + ptr).astype(np.float32)))
    objects = []
    for kind in d["objects"]:
        k_goal += 1
        placed = planner.place_object(rng, kind, goal * k_goal / max(n_occ, 1))
        if placed is not None:
            objects.append((kind, placed[0], placed[1].astype(np.float32)))
    return planner, persons, objects


def _empty_rows(schema, m):
    return {name: np.zeros((m, *shape), dtype) for name, (shape, dtype, _) in schema.items()}


def generate_shard(recipe_data: dict, recipe_hash: str, body_info: dict, index: int, out_dir: str,
                   gl_platform: str | None = None) -> dict:
    """Generate shard `index` into out_dir (tmp name → rename, then its sidecar). Returns its record."""
    _prepare_process(gl_platform)
    from lasor_shared.camera import project, to_camera
    from lasor_shared.keypoints import VIS_OUTSIDE
    from lasor_shared.shards import (GENDER_CODES, OCCLUDER_MIN_SHARE, SCHEMA_VERSION, sha256_file, shard_name,
                                     shard_schema, sidecar_name, write_json_atomic)
    from lasor_datagen.labels import (COCO17_MARGIN, COCO17_OWN, SMPL24_MARGIN, SMPL24_OWN, masks,
                                      occluder_type, visibility)
    from lasor_datagen.samplers import frame_camera, ground_transl, stratified_azimuths
    from lasor_datagen.render import TARGET
    from lasor_datagen.contact import BodyVolume
    from lasor_datagen.scene import object_vertices
    from lasor_datagen.stats import ShardStats
    from lasor_datagen.writer import ShardWriter

    timing = dict.fromkeys(("setup", "sampling", "body_model", "render", "labels", "io"), 0.0)
    t0 = time.perf_counter()
    ctx = get_context(recipe_data)
    r = ctx.recipe
    W = r.image_size
    KP, KO = r.max_persons, r.max_objects
    schema = shard_schema(W, KP, KO, r.output.depth, r.output.part_seg)
    n = r.samples_per_shard
    attrs = {"schema_version": SCHEMA_VERSION, "recipe_hash": recipe_hash, "body_model_id": body_info["id"],
             "body_model_sha256": body_info["sha256"], "body_models": body_info["json"], "image_size": W,
             "seed": r.seed, "shard_index": index, "n_samples": n, "max_persons": KP, "max_objects": KO}
    final = os.path.join(out_dir, shard_name(index))
    tmp = f"{final}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    rng = np.random.default_rng(np.random.SeedSequence([r.seed, index]))
    azimuths = stratified_azimuths(rng, n, r.camera.azimuth_deg)
    stats = ShardStats()
    timing["setup"] += time.perf_counter() - t0
    try:
        writer = ShardWriter(tmp, schema, n, attrs, CHUNK, r.output.compression_level)
        with writer:
            for start in range(0, n, CHUNK):
                m = min(CHUNK, n - start)
                t = time.perf_counter()
                draws = [_draw(rng, ctx, stats) for _ in range(m)]
                timing["sampling"] += time.perf_counter() - t
                t = time.perf_counter()
                bodies = [(d["pose"], d["betas"], d["gender"]) for d in draws]
                bodies += [(q, p["betas"], p["gender"]) for d in draws for p in d["persons"] for q in p["poses"]]
                V0, J0, C0 = ctx.forward(*zip(*bodies))
                timing["body_model"] += time.perf_counter() - t
                rows = _empty_rows(schema, m)
                pi = m
                for i, d in enumerate(draws):
                    t = time.perf_counter()
                    tr = ground_transl(V0[i]).astype(np.float32)
                    verts, joints, kps = V0[i] + tr, J0[i] + tr, C0[i] + tr
                    cam = frame_camera(rng, r.camera, W, azimuths[start + i], verts)
                    timing["sampling"] += time.perf_counter() - t
                    front = sum(p["role"] == 1 for p in d["persons"]) + len(d["objects"])
                    body = BodyVolume(verts, ctx.faces)      # the target's inside test, shared by the tries
                    person_verts, j = [], pi             # BodyVolumes of each person's candidates
                    for p in d["persons"]:
                        person_verts.append([BodyVolume(v, ctx.faces) for v in V0[j:j + len(p["poses"])]])
                        j += len(p["poses"])
                    want, best = d["goal"], None
                    for attempt in range(1 + OCC_RETRIES * (front > 0)):
                        t = time.perf_counter()
                        planner, persons, objects = _place(ctx, cam, verts, joints, body, d, person_verts, want)
                        timing["sampling"] += time.perf_counter() - t
                        t = time.perf_counter()
                        occluders = ([pv for *_, pv in persons],
                                     [(kind, object_vertices(kind, params)) for kind, _, params in objects])
                        if attempt == 0:
                            part, tdepth, labels, depth = ctx.renderer.render(cam.K, cam.R, cam.t, verts, *occluders)
                            n_am = int((part > 0).sum())
                        else:                               # the target's own pass is unchanged
                            labels, depth = ctx.renderer.relabel(*occluders)
                        timing["render"] += time.perf_counter() - t
                        err = (1 - int((labels == TARGET).sum()) / n_am if n_am else 0.0) - d["goal"]
                        if best is None or abs(err) < abs(best[0]):
                            best = (err, planner, persons, objects, labels, depth)
                        if abs(err) <= OCC_TOL or (err < 0 and planner.covered() < want - OCC_TOL):
                            break                           # on goal, or short because no placement hides more
                        want = float(np.clip(want - err, 0.0, 0.95))
                    _, planner, persons, objects, labels, depth = best
                    stats.add_placement(attempt, planner, len(d["persons"]) + len(d["objects"]))
                    pi += sum(len(p["poses"]) for p in d["persons"])
                    t = time.perf_counter()
                    mask, n_am, n_mod, hp, ho = masks(part, labels)
                    uv_c, z_c = project(kps.astype(np.float64), cam.K, cam.R, cam.t)
                    uv_j, z_j = project(joints.astype(np.float64), cam.K, cam.R, cam.t)
                    vis_c = visibility(uv_c, z_c, part, tdepth, labels, depth, COCO17_OWN, ctx.surface_tol,
                                       COCO17_MARGIN)
                    vis_j = visibility(uv_j, z_j, part, tdepth, labels, depth, SMPL24_OWN, margin=SMPL24_MARGIN)
                    row = {
                        "mask": mask, "keypoints_coco": uv_c, "visibility_coco": vis_c, "joints2d": uv_j,
                        "visibility_joints": vis_j, "pose": d["pose"], "betas": d["betas"],
                        "gender": GENDER_CODES[d["gender"]], "transl": tr,
                        "joints3d": to_camera(joints.astype(np.float64), cam.R, cam.t),
                        "cam_K": cam.K, "cam_R": cam.R, "cam_t": cam.t, "azimuth": cam.azimuth,
                        "elevation": cam.elevation, "roll": cam.roll, "distance": cam.distance,
                        "focal": cam.focal, "visible_fraction": n_mod / n_am if n_am else 0.0,
                        "occluder_type": occluder_type(n_am, hp, ho, OCCLUDER_MIN_SHARE),
                        "n_person_occluders": len(persons), "n_object_occluders": len(objects),
                    }
                    for k, (p, pose, ptr, _) in enumerate(persons):
                        rows["person_pose"][i, k] = pose
                        rows["person_betas"][i, k] = p["betas"]
                        rows["person_transl"][i, k] = ptr
                        rows["person_gender"][i, k] = GENDER_CODES[p["gender"]]
                        rows["person_role"][i, k] = p["role"]
                    for k, (_, code, params) in enumerate(objects):
                        rows["object_kind"][i, k] = code
                        rows["object_params"][i, k] = params
                    if "depth" in rows:
                        row["depth"] = depth.astype(np.float16)
                    if "part_seg" in rows:
                        row["part_seg"] = part
                    for key, value in row.items():
                        rows[key][i] = value
                    stats.add(row, vis_c == VIS_OUTSIDE)
                    timing["labels"] += time.perf_counter() - t
                t = time.perf_counter()
                writer.write(start, rows)
                timing["io"] += time.perf_counter() - t
        t = time.perf_counter()
        digest = sha256_file(tmp)
        os.replace(tmp, final)
        record = {"file": shard_name(index), "index": index, "n_samples": n, "sha256": digest,
                  "bytes": os.path.getsize(final), "recipe_hash": recipe_hash, "stats": stats.summary()}
        write_json_atomic(os.path.join(out_dir, sidecar_name(index)), record)
        timing["io"] += time.perf_counter() - t
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return {**record, "timing": timing, "worker_pid": os.getpid()}
