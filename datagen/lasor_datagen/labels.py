"""Masks and keypoint visibility codes from the two rendered passes (pure numpy, no GL).

Inputs per sample: `part` (front-most SMPL part of the target alone, 0 = none, 1 + joint index),
`target_depth` (its depth, 0 = none), `labels` (front-most thing in the full scene: 1 target,
32 + k person k, 64 + k object k, 0 background) and the keypoints' pixel coordinates and camera
depths z. A keypoint falls at pixel (floor(v), floor(u)); let s be the target's own front-most depth
there (∞ where the target has no surface).

1. outside (0): not in the image or behind the camera.
2. person / object (2 / 3): the front-most surface of the full scene at that pixel belongs to an
   occluder and is nearer than s (where the target has a surface), or nearer than z (where not).
3. self (1) — joints (inside the body): the target's front-most surface there belongs to a body part
   other than the joint's own (the joint, its parent and children in the SMPL tree) and lies more than
   a margin in front of the joint: `TRUNK_MARGIN` (10 cm, about the trunk's half-depth) for the trunk,
   shoulder, hip and head joints, whose own surface can be skinned to a neighbouring part (a shoulder
   seen from behind shows the upper back), `LIMB_MARGIN` (5 cm) for the others. Judging by part rather than by a fixed depth tolerance keeps a
   joint 'visible' when its own limb or torso covers it (a thick belly in front of the pelvis, the
   shin in front of the knee), yet marks it self-occluded behind another limb or the torso.
   Surface keypoints (the COCO face points, which lie on the skin): s < z − tolerance, where the
   tolerance is `SURFACE_TOL` plus the keypoint's depth under the skin in the rest pose.
4. visible (4): otherwise.
"""

from __future__ import annotations

import numpy as np

from lasor_shared.keypoints import (COCO17_FROM_SMPL24, COCO17_NAMES, SMPL24_NAMES, SMPL24_PARENTS, VIS_OBJECT,
                                    VIS_OUTSIDE, VIS_PERSON, VIS_SELF, VIS_VISIBLE)
from lasor_datagen.render import OBJECT0, PERSON0, TARGET

TRUNK_MARGIN = 0.10  # m: a foreign part must be this much nearer than a trunk joint to hide it
LIMB_MARGIN = 0.05   # m: … than a limb joint
TRUNK_JOINTS = ("pelvis", "left_hip", "right_hip", "spine1", "spine2", "spine3", "neck", "left_collar",
                "right_collar", "head", "left_shoulder", "right_shoulder")
SURFACE_TOL = 0.03   # m: depth slack for surface keypoints (rasterisation at 128–256 px, skin detail)
FACE_KEYPOINTS = ("nose", "left_eye", "right_eye", "left_ear", "right_ear")


def own_parts(joint: int) -> set[int]:
    """A joint's own body region: itself, its parent and its children (SMPL kinematic tree)."""
    own = {joint}
    if SMPL24_PARENTS[joint] >= 0:
        own.add(SMPL24_PARENTS[joint])
    own |= {c for c, p in enumerate(SMPL24_PARENTS) if p == joint}
    return own


def own_part_table(joints: list[int | None]) -> np.ndarray:
    """(K, 25) bool: own[k, 1 + j] is True if part j counts as keypoint k's own (None → none)."""
    table = np.zeros((len(joints), 25), bool)
    for k, j in enumerate(joints):
        if j is not None:
            table[k, [1 + p for p in own_parts(j)]] = True
    return table


SMPL24_OWN = own_part_table(list(range(24)))
SMPL24_MARGIN = np.array([TRUNK_MARGIN if n in TRUNK_JOINTS else LIMB_MARGIN for n in SMPL24_NAMES])
COCO17_JOINT = [None if n in FACE_KEYPOINTS else SMPL24_NAMES.index(COCO17_FROM_SMPL24[n])
                for n in COCO17_NAMES]
COCO17_OWN = own_part_table(COCO17_JOINT)
COCO17_SURFACE = np.array([j is None for j in COCO17_JOINT])
COCO17_MARGIN = np.array([LIMB_MARGIN if j is None else SMPL24_MARGIN[j] for j in COCO17_JOINT])


def visibility(uv, z, part, target_depth, labels, depth, own, surface_tol=None, margin=None):
    """Codes (K,) uint8 for keypoints uv (K,2) at camera depths z (K,).

    own: (K,25) own-part table; surface_tol: (K,) float, NaN for joints (part test) or a depth
    tolerance (m) for surface keypoints; margin: (K,) self-occlusion margins (m) of the part test
    (default LIMB_MARGIN).
    """
    H, W = labels.shape
    K = len(uv)
    codes = np.full(K, VIS_OUTSIDE, np.uint8)
    col = np.floor(uv[:, 0]).astype(np.int64)
    row = np.floor(uv[:, 1]).astype(np.int64)
    inside = (z > 0) & (col >= 0) & (col < W) & (row >= 0) & (row < H) & np.all(np.isfinite(uv), 1)
    if surface_tol is None:
        surface_tol = np.full(K, np.nan)
    if margin is None:
        margin = np.full(K, LIMB_MARGIN)
    for k in np.flatnonzero(inside):
        r, c = row[k], col[k]
        s = target_depth[r, c] if target_depth[r, c] > 0 else np.inf
        lab = labels[r, c]
        if lab >= PERSON0 and depth[r, c] < (s if np.isfinite(s) else z[k]):
            codes[k] = VIS_OBJECT if lab >= OBJECT0 else VIS_PERSON
        elif not np.isfinite(s):
            codes[k] = VIS_VISIBLE
        elif np.isfinite(surface_tol[k]):
            codes[k] = VIS_SELF if s < z[k] - surface_tol[k] else VIS_VISIBLE
        else:
            foreign = not own[k, part[r, c]]
            codes[k] = VIS_SELF if foreign and s < z[k] - margin[k] else VIS_VISIBLE
    return codes


def masks(part, labels):
    """The mask label image (bit0 modal, bit1 amodal, bit2 person, bit3 object) and pixel counts."""
    amodal = part > 0
    modal = labels == TARGET
    person = (labels >= PERSON0) & (labels < OBJECT0)
    obj = labels >= OBJECT0
    mask = (modal.astype(np.uint8) | (amodal.astype(np.uint8) << 1) | (person.astype(np.uint8) << 2)
            | (obj.astype(np.uint8) << 3))
    n_amodal = int(amodal.sum())
    hidden_person = int((amodal & person).sum())
    hidden_object = int((amodal & obj).sum())
    return mask, n_amodal, int(modal.sum()), hidden_person, hidden_object


def occluder_type(n_amodal, hidden_person, hidden_object, min_share):
    """0 none, 1 person, 2 object, 3 both: a kind counts if it covers ≥ min_share of the target."""
    if n_amodal == 0:
        return 0
    return int(hidden_person / n_amodal >= min_share) | (int(hidden_object / n_amodal >= min_share) << 1)
