"""Online proxy augmentation (STRAPS + successor recipe), each with its probability and magnitude.

Works in crop pixels on (silhouette (S,S) float, keypoints (17,2), present (17,) bool); magnitudes
in the config are given at 256² and scaled with the input size. Every random choice comes from the
`rng` passed in (seeded per sample from (seed, epoch, index)), so augmentation is reproducible and
independent of how samples are spread over DataLoader workers.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from lasor_shared.keypoints import COCO17_FLIP, COCO17_NAMES
from lasor_trainer.config import AugmentConfig

# (left, right) twins in COCO-17, from the shared flip permutation
LR_PAIRS = tuple((i, j) for i, j in enumerate(COCO17_FLIP) if i < j)
# limb segments (proximal, distal) in COCO-17: upper/lower arms and legs, left before right
LIMBS = tuple((COCO17_NAMES.index(f"{side}_{a}"), COCO17_NAMES.index(f"{side}_{b}"))
              for chain in (("shoulder", "elbow", "wrist"), ("hip", "knee", "ankle"))
              for side in ("left", "right") for a, b in zip(chain, chain[1:]))


def _disk(r: int) -> np.ndarray:
    y, x = np.mgrid[-r:r + 1, -r:r + 1]
    return x * x + y * y <= r * r


def augment_proxy(sil: np.ndarray, kp: np.ndarray, present: np.ndarray, kp_all: np.ndarray,
                  cfg: AugmentConfig, rng: np.random.Generator, size: int, conf: np.ndarray | None = None):
    """Returns augmented copies (sil, kp, present, confidence). kp_all: keypoints (crop px) incl. absent
    ones; conf: per-keypoint confidences (default: 1 where present), kept with their keypoints and 0
    where a keypoint is removed."""
    sil = None if sil is None else sil.copy()  # None: a keypoint-only model (no image input)
    kp, present = kp.copy(), present.copy()
    conf = present.astype(np.float32) if conf is None else np.asarray(conf, np.float32).copy()
    scale = size / 256.0
    if rng.random() < cfg.kp_jitter_p and cfg.kp_jitter_px > 0:
        kp = kp + rng.uniform(-1, 1, kp.shape) * cfg.kp_jitter_px * scale
    if cfg.kp_dropout_p > 0:
        present &= rng.random(len(present)) >= cfg.kp_dropout_p
    if rng.random() < cfg.lr_swap_p:
        a, b = LR_PAIRS[rng.integers(len(LR_PAIRS))]
        kp[[a, b]] = kp[[b, a]]
        present[[a, b]] = present[[b, a]]
        conf[[a, b]] = conf[[b, a]]
    if rng.random() < cfg.sil_morph_p and cfg.sil_morph_px > 0 and sil is not None:
        r = max(1, int(round(cfg.sil_morph_px * scale * rng.uniform(0.5, 1.0))))
        op = ndimage.grey_dilation if rng.random() < 0.5 else ndimage.grey_erosion
        sil = op(sil, footprint=_disk(r))
    if rng.random() < cfg.sil_noise_p and cfg.sil_noise_rate > 0 and sil is not None:
        hard = sil > 0.5
        boundary = ndimage.binary_dilation(hard) ^ ndimage.binary_erosion(hard)
        flip = boundary & (rng.random(sil.shape) < cfg.sil_noise_rate)
        sil = np.where(flip, 1.0 - hard, sil).astype(np.float32)
    if rng.random() < cfg.part_removal_p:
        a, b = LIMBS[rng.integers(len(LIMBS))]
        if sil is not None:
            _erase_capsule(sil, kp_all[a], kp_all[b], max(2.0, 0.05 * size))
        present[b] = False
        if rng.random() < 0.5:
            present[a] = False
    if rng.random() < cfg.box_p and cfg.box_size > 0:
        side = cfg.box_size * size
        if present.any() and rng.random() < 0.7:  # centre on a keypoint so it hides evidence
            c = kp[rng.choice(np.flatnonzero(present))] + rng.uniform(-0.5, 0.5, 2) * side
        else:
            c = rng.uniform(0, size, 2)
        x0, y0 = c - side / 2
        x1, y1 = c + side / 2
        r0, r1 = int(np.clip(np.floor(y0), 0, size)), int(np.clip(np.ceil(y1), 0, size))
        c0, c1 = int(np.clip(np.floor(x0), 0, size)), int(np.clip(np.ceil(x1), 0, size))
        if sil is not None:
            sil[r0:r1, c0:c1] = 0.0
        inside = (kp[:, 0] >= x0) & (kp[:, 0] < x1) & (kp[:, 1] >= y0) & (kp[:, 1] < y1)
        present &= ~inside
    return (None if sil is None else sil.astype(np.float32)), kp.astype(np.float32), present, np.where(present, conf, 0.0).astype(np.float32)


def _erase_capsule(sil: np.ndarray, a: np.ndarray, b: np.ndarray, radius: float):
    S = sil.shape[0]
    yy, xx = np.mgrid[0:S, 0:S].astype(np.float32) + 0.5
    d = b - a
    L2 = float(d @ d) + 1e-6
    t = np.clip(((xx - a[0]) * d[0] + (yy - a[1]) * d[1]) / L2, 0, 1)
    dist2 = (xx - a[0] - t * d[0]) ** 2 + (yy - a[1] - t * d[1]) ** 2
    sil[dist2 <= radius * radius] = 0.0
