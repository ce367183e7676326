"""Every person in a photo: BlazePose detections → landmarks → COCO-17 keypoints with confidences and
masks that do not overlap (docs/photo.md, "Several people").

Keypoints (CONVENTION, issue 22): all 17 positions as the landmark model gives them, COCO-17 from
BlazePose's 33 landmarks (`MP33_TO_COCO17`); confidence = min(visibility, presence) of the landmark,
0 where the position is off the photo or not finite. Nothing is thresholded away here.

Masks: each person's segmentation probability (> 0.5) from the landmark model, warped back to the photo.
Where two people claim a pixel it goes to the one whose visible skeleton (bones between keypoints of
confidence ≥ 0.5, the torso filled) is nearest, in units of that person's torso size; each mask is then
reduced to its connected parts that touch its own skeleton.

cv2 (the [photo] extra) is imported inside the functions that use it, so the module imports without it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from lasor_shared.keypoints import COCO17_NAMES
from lasor_trainer.photo import blazepose as bp
from lasor_trainer.photo.clock import now

MP33_TO_COCO17 = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)
COCO_BONES = ((5, 6), (5, 7), (7, 9), (6, 8), (8, 10), (5, 11), (6, 12), (11, 12), (11, 13), (13, 15),
              (12, 14), (14, 16), (0, 5), (0, 6))
TORSO = (5, 6, 12, 11)
MASK_THRESHOLD = 0.5      # on the segmentation probability
POSE_THRESHOLD = 0.5      # the landmark model's pose-presence score
SKELETON_CONFIDENCE = 0.5  # keypoints drawn into the skeleton that decides shared pixels
MIN_TORSO_KEYPOINTS = 2   # of the 4 torso keypoints with confidence ≥ SKELETON_CONFIDENCE
MIN_MASK_FRACTION = 5e-4  # of the photo's area
DUPLICATE_DISTANCE = 0.25  # torso keypoints closer than this × the torso size: the same person


@dataclass
class Person:
    mask: np.ndarray        # (H, W) bool, this person's pixels only
    keypoints: np.ndarray   # (17, 2) float32 photo pixels (pixel centres at +0.5), COCO-17 order
    confidence: np.ndarray  # (17,) float32 in [0, 1]
    score: float            # the detector's person score
    landmarks: np.ndarray = field(repr=False, default=None)  # (33, 5) BlazePose: x, y, z, visibility, presence
    timing: dict = field(default_factory=dict)  # landmarks, mask: (wall, cpu) seconds

    @property
    def scores(self) -> np.ndarray:  # the name the earlier front end used
        return self.confidence


def coco_keypoints(lm: np.ndarray, H: int, W: int):
    """(17, 2) positions and (17,) confidences of BlazePose's (33, 5) landmarks in photo pixels."""
    sel = lm[list(MP33_TO_COCO17)]
    kp = sel[:, :2].astype(np.float32)
    conf = np.minimum(sel[:, 3], sel[:, 4]).clip(0, 1)
    ok = np.isfinite(kp).all(1) & (kp[:, 0] >= 0) & (kp[:, 0] < W) & (kp[:, 1] >= 0) & (kp[:, 1] < H)
    return kp, np.where(ok, conf, 0.0).astype(np.float32)


def torso_size(kp: np.ndarray) -> float:
    shoulders, hips = kp[[5, 6]].mean(0), kp[[11, 12]].mean(0)
    return float(max(np.linalg.norm(shoulders - hips), np.linalg.norm(kp[5] - kp[6]), 1.0))


def _skeleton(kp, conf, shape, offset) -> np.ndarray:
    """uint8 image (box-sized) with the person's confident bones drawn (all bones if none is confident)."""
    import cv2

    img = np.zeros(shape, np.uint8)
    p = np.round((kp - offset) * 4).astype(np.int32)  # 2 fractional bits
    good = conf >= SKELETON_CONFIDENCE
    if good.sum() < 2:
        good = np.ones_like(good)
    if good[list(TORSO)].all():
        cv2.fillPoly(img, [p[list(TORSO)]], 255, lineType=cv2.LINE_8, shift=2)
    for a, b in COCO_BONES:
        if good[a] and good[b]:
            cv2.line(img, tuple(p[a]), tuple(p[b]), 255, thickness=1, lineType=cv2.LINE_8, shift=2)
    for j in np.flatnonzero(good):
        cv2.circle(img, tuple(p[j]), 4, 255, thickness=-1, shift=2)
    return img


class _Candidate:
    def __init__(self, det, lm, flag, prob, A, H, W, t_lm):
        self.det, self.lm, self.flag = det, lm, flag
        self.kp, self.conf = coco_keypoints(lm, H, W)
        # the ROI's bounding box in the photo: the mask is only computed there
        corners = bp.apply(bp.invert(A), np.array([[0, 0], [bp.LM_SIZE, 0], [0, bp.LM_SIZE], [bp.LM_SIZE] * 2]))
        x0, y0 = np.floor(corners.min(0)).astype(int).clip(0, [W, H])
        x1, y1 = np.ceil(corners.max(0)).astype(int).clip(0, [W, H])
        self.box = (x0, y0, x1, y1)
        t = now()
        self.claim = np.zeros((0, 0), bool)
        if x1 > x0 and y1 > y0:  # photo (box) → crop, inverted by warp's map
            to_crop = A @ np.vstack([np.array([[1, 0, x0], [0, 1, y0]]), [0, 0, 1]])
            self.claim = bp.warp(prob, bp.invert(to_crop), (x1 - x0, y1 - y0)) > MASK_THRESHOLD
        self.timing = {"landmarks": t_lm, "mask": now() - t}
        self.torso = torso_size(self.kp)


def find_people(model: bp.BlazePose, rgb: np.ndarray, max_people: int = 8, min_score: float = 0.5,
                tiles: bool = True) -> tuple[list[Person], dict]:
    """The people in `rgb`, largest mask first (at most `max_people`), and the detection time (s)."""
    H, W = rgb.shape[:2]
    t = now()
    dets = model.detect(rgb, min_score, tiles)
    t_det = now() - t
    cands: list[_Candidate] = []
    for det in dets:
        t = now()
        lm, flag, prob, A = model.landmarks(rgb, det["roi"])
        t_lm = now() - t
        if flag < POSE_THRESHOLD:
            continue
        c = _Candidate(det, lm, flag, prob, A, H, W, t_lm)
        if (c.conf[list(TORSO)] >= SKELETON_CONFIDENCE).sum() < MIN_TORSO_KEYPOINTS:
            continue
        if any(_same_person(c, k) for k in cands):
            continue
        cands.append(c)
    people = separate(cands, H, W)
    people.sort(key=lambda p: -int(p.mask.sum()))
    return people[:max_people], {"detect": t_det, "detections": len(dets)}


def _same_person(a: _Candidate, b: _Candidate) -> bool:
    idx = list(TORSO)
    d = np.linalg.norm(a.kp[idx] - b.kp[idx], axis=1).mean()
    return d < DUPLICATE_DISTANCE * min(a.torso, b.torso)


def separate(cands: list[_Candidate], H: int, W: int) -> list[Person]:
    """Full-photo masks that share no pixel: a pixel claimed by several people goes to the one whose
    confident skeleton is nearest (distance / torso size)."""
    import cv2

    cost = np.full((H, W), np.inf, np.float32)
    owner = np.full((H, W), -1, np.int16)
    for i, c in enumerate(cands):
        t = now()
        x0, y0, x1, y1 = c.box
        if c.claim.size:
            sk = _skeleton(c.kp, c.conf, c.claim.shape, np.array([x0, y0]))
            d = cv2.distanceTransform(255 - sk, cv2.DIST_L2, 3) / c.torso
            sub_cost, sub_owner = cost[y0:y1, x0:x1], owner[y0:y1, x0:x1]
            better = c.claim & (d < sub_cost)
            sub_cost[better] = d[better]
            sub_owner[better] = i
        c.timing["mask"] += now() - t
    people = []
    for i, c in enumerate(cands):
        t = now()
        x0, y0, x1, y1 = c.box
        mask = np.zeros((H, W), bool)
        mask[y0:y1, x0:x1] = owner[y0:y1, x0:x1] == i
        mask = _touching_skeleton(mask, c)
        c.timing["mask"] += now() - t
        if mask.sum() < MIN_MASK_FRACTION * H * W:
            continue
        people.append(Person(mask, c.kp, c.conf, c.det["score"], c.lm, c.timing))
    return people


def _touching_skeleton(mask: np.ndarray, c: _Candidate) -> np.ndarray:
    """The connected parts of `mask` that contain one of the person's confident keypoints or lie within
    the box around them (widened by 10 %); the largest part if none does."""
    lab, n = ndimage.label(mask)
    if n <= 1:
        return mask
    H, W = mask.shape
    good = c.conf >= SKELETON_CONFIDENCE
    pts = c.kp[good] if good.sum() >= 2 else c.kp
    (x0, y0), (x1, y1) = pts.min(0), pts.max(0)
    mx, my = 0.1 * (x1 - x0) + 2, 0.1 * (y1 - y0) + 2
    box = lab[int(max(y0 - my, 0)):int(min(y1 + my, H - 1)) + 1, int(max(x0 - mx, 0)):int(min(x1 + mx, W - 1)) + 1]
    keep = np.unique(box[box > 0])
    if not keep.size:
        sizes = np.bincount(lab.ravel())[1:]
        keep = [int(np.argmax(sizes)) + 1]
    return np.isin(lab, keep)
