"""One Dask task = one shard. Everything here runs inside a worker process.

`generate_shard` is the task: it opens the shard, generates it chunk by chunk and publishes it.
Its randomness comes from SeedSequence([recipe seed, shard index]) alone, consumed in a fixed order:
the shard's azimuths, then per chunk of `CHUNK` samples the parameters of every sample (`draw`),
then per sample its camera (`frame_target`); occluder placement (`occlude`) draws from each sample's
own placement seed. Torch runs single-threaded, so a shard's bytes do not depend on which worker
made it or when.

The steps of one chunk, each testable alone: `draw` (pose, shape, occluder plan) → `forward_bodies`
(one batched body-model pass for targets and occluding people) → per sample `frame_target` (ground
it, frame the camera) → `occlude` (place occluders, render, re-place when the hidden share misses
its goal) → `label_row` (masks, keypoints, visibility, ground truth) → `fill_row`.

The per-process context (body models, pose banks, the pyrender scene) lives in `_CONTEXTS`, a
global of this importable module, built on a worker's first task and reused by later ones.
OpenGL/pyrender are imported only by the renderer, after `_prepare_process` chose the GL platform.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import numpy as np
import smplx
import torch

from lasor_shared.atomic import atomic_write
from lasor_shared.body_model import load_body_model
from lasor_shared.camera import project, to_camera
from lasor_shared.errors import LasorError
from lasor_shared.keypoints import VIS_OUTSIDE
from lasor_shared.shards import (GENDER_CODES, OCCLUDER_MIN_SHARE, SCHEMA_VERSION, canonical_json, sha256_file,
                                 shard_name, shard_schema, sidecar_name, write_json_atomic)
from lasor_datagen.contact import BodyVolume, SelfContact
from lasor_datagen.framing import Camera, frame_camera
from lasor_datagen.labels import (COCO17_MARGIN, COCO17_OWN, COCO17_SURFACE, SMPL24_MARGIN, SMPL24_OWN,
                                  SURFACE_TOL, masks, occluder_type, visibility)
from lasor_datagen.occlusion import OcclusionPlanner
from lasor_datagen.poses import PoseSampler
from lasor_datagen.recipe import parse_recipe
from lasor_datagen.render import TARGET, SceneRenderer, configure_gl_threads
from lasor_datagen.samplers import (ground_transl, heading, plan_occlusion, sample_betas, sample_gender,
                                    stratified_azimuths)
from lasor_datagen.scene import object_vertices
from lasor_datagen.stats import ShardStats
from lasor_datagen.timers import StageTimer, stage
from lasor_datagen.writer import ShardWriter

CHUNK = 32
MAX_POSE_DRAWS = 50     # successive self-penetrating poses before giving up on a pose source
OCC_RETRIES = 2         # re-placements (and renders) aiming the measured hidden share at its goal
OCC_TOL = 0.03          # … when it misses by more than this
PERSON_CANDIDATES = 3   # poses/headings drawn per occluding person; placement keeps one that can hide its goal
_CONTEXTS: dict = {}


class _Context:
    def __init__(self, recipe):
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
    key = canonical_json(recipe_data)
    if key not in _CONTEXTS:
        for old in _CONTEXTS.values():
            old.renderer.close()
        _CONTEXTS.clear()
        _CONTEXTS[key] = _Context(parse_recipe(recipe_data))
    return _CONTEXTS[key]


def _prepare_process(gl_platform: str | None):
    if gl_platform and "OpenGL" not in sys.modules:
        os.environ.setdefault("PYOPENGL_PLATFORM", gl_platform)
    configure_gl_threads()
    torch.set_num_threads(1)


# ---------------------------------------------------------------- sampling

def _pose(rng, ctx, stats):
    """A pose from the recipe's sources whose limbs do not pass through the torso or each other."""
    with stage("pose_sampling"):
        for _ in range(MAX_POSE_DRAWS):
            pose = ctx.poses.sample(rng)
            stats.pose_draws += 1
            if ctx.contact.ok(pose):
                return pose
            stats.pose_rejected += 1
    raise LasorError(f"poses: {MAX_POSE_DRAWS} successive draws had limbs through the body; check the pose sources")


def draw(rng, ctx, stats) -> dict:
    """Parameters of one sample that need no geometry (poses, shapes, occluder plan)."""
    with stage("shape_camera_sampling"):
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


def forward_bodies(ctx, draws):
    """One batched body-model pass over the chunk: the targets (rows 0..m-1), then every occluding
    person's candidate poses. → (V0, J0, C0) at transl 0 and, per sample, its persons' row slices."""
    bodies = [(d["pose"], d["betas"], d["gender"]) for d in draws]
    slices, j = [], len(draws)
    for d in draws:
        own = []
        for p in d["persons"]:
            bodies += [(q, p["betas"], p["gender"]) for q in p["poses"]]
            own.append(slice(j, j + len(p["poses"])))
            j += len(p["poses"])
        slices.append(own)
    with stage("body_forward"):
        V0, J0, C0 = ctx.forward(*zip(*bodies))
    return V0, J0, C0, slices


@dataclass
class Framed:
    """The target stood on the ground and framed: translation, world vertices/joints/keypoints, camera."""
    transl: np.ndarray
    verts: np.ndarray
    joints: np.ndarray
    kps: np.ndarray
    cam: Camera


def frame_target(rng, ctx, v0, j0, c0, azimuth) -> Framed:
    """Ground the target (bodies at transl 0) and frame a camera at `azimuth` around it."""
    with stage("shape_camera_sampling"):
        tr = ground_transl(v0).astype(np.float32)
        verts = v0 + tr
        cam = frame_camera(rng, ctx.recipe.camera, ctx.recipe.image_size, azimuth, verts)
    return Framed(tr, verts, j0 + tr, c0 + tr, cam)


# ---------------------------------------------------------------- occluders and render

def _place(ctx, cam, verts, joints, body, d, person_verts, goal, memo=None):
    """Occluders of one sample for a hidden-share goal: (planner, persons, objects); persons are
    (person, chosen pose, translation, world vertices), person_verts the BodyVolumes (at transl 0) of
    each person's candidate poses. Its randomness comes from the sample's own placement seed, so a retry with
    another goal draws the same numbers (and finds what they give in `memo`, see OcclusionPlanner)."""
    rng = np.random.default_rng(d["placement_seed"])
    planner = OcclusionPlanner(ctx.recipe.occlusion, ctx.recipe.image_size, cam, verts, joints, ctx.faces, body,
                               memo)
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


@dataclass
class Scene:
    """A sample's chosen occluders and its render: persons (person, pose, transl, vertices), objects
    (kind, code, params), the target's part labels and depth, the full scene's labels and depth."""
    persons: list
    objects: list
    part: np.ndarray
    target_depth: np.ndarray
    labels: np.ndarray
    depth: np.ndarray


def occlude(ctx, f: Framed, d, person_v0, stats) -> Scene:
    """Place the sample's occluders and render; re-place them (same draws, corrected goal) while the
    rendered hidden share misses the goal by more than OCC_TOL, keeping the closest try."""
    front = sum(p["role"] == 1 for p in d["persons"]) + len(d["objects"])
    body = BodyVolume(f.verts, ctx.faces)      # the target's inside test, shared by the tries
    person_verts = [[BodyVolume(v, ctx.faces) for v in v0] for v0 in person_v0]
    want, best, memo = d["goal"], None, {}
    for attempt in range(1 + OCC_RETRIES * (front > 0)):
        with stage("occluders"):
            planner, persons, objects = _place(ctx, f.cam, f.verts, f.joints, body, d, person_verts, want, memo)
            occluders = ([pv for *_, pv in persons],
                         [(kind, object_vertices(kind, params)) for kind, _, params in objects])
        if attempt == 0:
            part, tdepth, labels, depth = ctx.renderer.render(f.cam.K, f.cam.R, f.cam.t, f.verts, *occluders)
            n_am = int((part > 0).sum())
        else:                               # the target's own pass is unchanged
            labels, depth = ctx.renderer.relabel(*occluders)
        err = (1 - int((labels == TARGET).sum()) / n_am if n_am else 0.0) - d["goal"]
        if best is None or abs(err) < abs(best[0]):
            best = (err, planner, persons, objects, labels, depth)
        if abs(err) <= OCC_TOL or (err < 0 and planner.covered() < want - OCC_TOL):
            break                           # on goal, or short because no placement hides more
        want = float(np.clip(want - err, 0.0, 0.95))
    _, planner, persons, objects, labels, depth = best
    stats.add_placement(attempt, planner, len(d["persons"]) + len(d["objects"]))
    return Scene(persons, objects, part, tdepth, labels, depth)


# ---------------------------------------------------------------- labels and rows

def label_row(ctx, d, f: Framed, s: Scene) -> dict:
    """The per-sample fields of the target: masks, 2D keypoints/joints and their visibility, ground truth."""
    cam = f.cam
    mask, n_am, n_mod, hp, ho = masks(s.part, s.labels)
    uv_c, z_c = project(f.kps.astype(np.float64), cam.K, cam.R, cam.t)
    uv_j, z_j = project(f.joints.astype(np.float64), cam.K, cam.R, cam.t)
    vis_c = visibility(uv_c, z_c, s.part, s.target_depth, s.labels, s.depth, COCO17_OWN, ctx.surface_tol,
                       COCO17_MARGIN)
    vis_j = visibility(uv_j, z_j, s.part, s.target_depth, s.labels, s.depth, SMPL24_OWN, margin=SMPL24_MARGIN)
    row = {
        "mask": mask, "keypoints_coco": uv_c, "visibility_coco": vis_c, "joints2d": uv_j,
        "visibility_joints": vis_j, "pose": d["pose"], "betas": d["betas"],
        "gender": GENDER_CODES[d["gender"]], "transl": f.transl,
        "joints3d": to_camera(f.joints.astype(np.float64), cam.R, cam.t),
        "cam_K": cam.K, "cam_R": cam.R, "cam_t": cam.t, "azimuth": cam.azimuth,
        "elevation": cam.elevation, "roll": cam.roll, "distance": cam.distance,
        "focal": cam.focal, "visible_fraction": n_mod / n_am if n_am else 0.0,
        "occluder_type": occluder_type(n_am, hp, ho, OCCLUDER_MIN_SHARE),
        "n_person_occluders": len(s.persons), "n_object_occluders": len(s.objects),
    }
    if ctx.recipe.output.depth:
        row["depth"] = s.depth.astype(np.float16)
    if ctx.recipe.output.part_seg:
        row["part_seg"] = s.part
    return row


def fill_row(rows: dict, i: int, row: dict, s: Scene) -> None:
    """Write sample i's fields and its occluders' slots into the chunk's arrays."""
    for k, (p, pose, ptr, _) in enumerate(s.persons):
        rows["person_pose"][i, k] = pose
        rows["person_betas"][i, k] = p["betas"]
        rows["person_transl"][i, k] = ptr
        rows["person_gender"][i, k] = GENDER_CODES[p["gender"]]
        rows["person_role"][i, k] = p["role"]
    for k, (_, code, params) in enumerate(s.objects):
        rows["object_kind"][i, k] = code
        rows["object_params"][i, k] = params
    for key, value in row.items():
        rows[key][i] = value


def _empty_rows(schema, m):
    return {name: np.zeros((m, *shape), dtype) for name, (shape, dtype, _) in schema.items()}


def generate_chunk(ctx, job, start: int, stats) -> dict:
    """Rows of samples start … start + CHUNK - 1 of the shard (see the module docstring)."""
    m = min(CHUNK, job.n - start)
    draws = [draw(job.rng, ctx, stats) for _ in range(m)]
    V0, J0, C0, slices = forward_bodies(ctx, draws)
    rows = _empty_rows(job.schema, m)
    for i, d in enumerate(draws):
        f = frame_target(job.rng, ctx, V0[i], J0[i], C0[i], job.azimuths[start + i])
        s = occlude(ctx, f, d, [V0[sl] for sl in slices[i]], stats)
        with stage("labels"):
            row = label_row(ctx, d, f, s)
            fill_row(rows, i, row, s)
            stats.add(row, row["visibility_coco"] == VIS_OUTSIDE)
    return rows


# ---------------------------------------------------------------- the task

@dataclass
class ShardJob:
    """What one shard task writes: its schema, attributes, paths, random stream and azimuths."""
    index: int
    n: int
    schema: dict
    attrs: dict
    final: str
    rng: np.random.Generator
    azimuths: np.ndarray


def open_job(ctx, recipe_hash: str, body_info: dict, index: int, out_dir: str) -> ShardJob:
    r = ctx.recipe
    W, KP, KO, n = r.image_size, r.max_persons, r.max_objects, r.samples_per_shard
    schema = shard_schema(W, KP, KO, r.output.depth, r.output.part_seg)
    attrs = {"schema_version": SCHEMA_VERSION, "recipe_hash": recipe_hash, "body_model_id": body_info["id"],
             "body_model_sha256": body_info["sha256"], "body_models": body_info["json"], "image_size": W,
             "seed": r.seed, "shard_index": index, "n_samples": n, "max_persons": KP, "max_objects": KO}
    final = os.path.join(out_dir, shard_name(index))
    rng = np.random.default_rng(np.random.SeedSequence([r.seed, index]))
    azimuths = stratified_azimuths(rng, n, r.camera.azimuth_deg)
    return ShardJob(index, n, schema, attrs, final, rng, azimuths)


def publish(job: ShardJob, digest: str, recipe_hash: str, stats, out_dir: str) -> dict:
    """Write the sidecar of the shard now in place (sha256 `digest`). → the shard's record."""
    record = {"file": shard_name(job.index), "index": job.index, "n_samples": job.n, "sha256": digest,
              "bytes": os.path.getsize(job.final), "recipe_hash": recipe_hash, "stats": stats.summary()}
    write_json_atomic(os.path.join(out_dir, sidecar_name(job.index)), record)
    return record


def generate_shard(recipe_data: dict, recipe_hash: str, body_info: dict, index: int, out_dir: str,
                   gl_platform: str | None = None) -> dict:
    """Generate shard `index` into out_dir (a temporary hashed and renamed into place by
    `atomic_write`, then its sidecar). Returns its record with the task's per-stage seconds (`timing`,
    see `timers`)."""
    _prepare_process(gl_platform)
    with StageTimer() as timer:
        with timer("setup"):
            ctx = get_context(recipe_data)
            job = open_job(ctx, recipe_hash, body_info, index, out_dir)
            stats = ShardStats()
        with atomic_write(job.final) as tmp:
            with ShardWriter(tmp, job.schema, job.n, job.attrs, CHUNK, ctx.recipe.output.compression_level) as w:
                for start in range(0, job.n, CHUNK):
                    w.write(start, generate_chunk(ctx, job, start, stats))
            with timer("write"):
                digest = sha256_file(tmp)
        with timer("write"):
            record = publish(job, digest, recipe_hash, stats, out_dir)
    return {**record, "timing": timer.totals, "worker_pid": os.getpid()}
