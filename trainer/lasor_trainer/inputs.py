"""The regressor's keypoint input convention — one definition for training, evaluation and `lasor-predict`.

What a keypoint source gives (a detector such as mediapipe/HRNet, a COCO/OpenPose JSON, or the
synthetic shards through `simulate_detector`) is, per person:

- `keypoints` (17, 2): COCO-17 image pixels (x right, y down, pixel centres at +0.5), ALL positions
  the source returns — occluded, guessed ones included;
- `confidence` (17,): the source's own score in [0, 1]; 0 = no position at all.

How the model receives them (`KeypointConfig.mode == "detector"`):

- a keypoint whose confidence is below `min_confidence` is MISSING: fed as (0, 0, 0) and left out
  of the crop box and the heatmaps;
- every other keypoint is fed as (x, y, c): its position in the crop normalised to [−1, 1] and its
  confidence c (clipped to [0, 1]) — the network learns how far to trust each one;
- with the crop: `crop_info` = ((crop centre − principal point) / f, crop side / f) — where the crop
  was in the camera (CLIFF): the crop normalises position and scale away, but the pose targets are
  in the camera frame.

Legacy checkpoints (`mode == "visible"`) receive only the keypoints whose shard visibility code is in
`proxy.input_visibility`, at their exact positions, without confidences.

Training and the test protocol draw detector-like keypoints from the shards' visibility codes
(`simulate_detector`): visible (4) and self-occluded (1) keypoints get small position noise and high
confidences (detectors return them); keypoints hidden by another person (2) or an object (3) are
missing with probability `drop_hidden`, else present with a low confidence and position noise of
`noise_hidden` × the person's height (no smaller than mediapipe's measured error on occluded joints,
see docs/photo.md); off-image keypoints (0) are missing; a few confidences are drawn from the wrong
range (`false_conf_p`) and a few positions are gross errors (`outlier_p`).

The TEST protocol (`test_protocol`, used by `lasor-eval`) is one fixed definition, independent of how a
model was trained, with a fixed per-sample seed: its noise is no kinder than mediapipe's measured
error on the shared real photo with joints covered (hidden joints: mean 0.18 of the person's height
over 21 joints under grey boxes, bench/measure_detector_noise.py, and 83 px = 0.29 over 31 joints
under pasted people and boards, bench/bench_photo.py — pooled 0.24; visible joints 0.04 pooled), and
its confidences are as high as mediapipe's (hidden joints mean 0.62–0.66, visible 0.92). A model is
never scored on hidden keypoints' true positions.
"""

from __future__ import annotations

import numpy as np

from lasor_trainer.config import KeypointConfig

N_KP = 17
EVAL_SEED = 20261202   # the test protocol's detector draws: fixed per sample (seeded with its index)

# COCO keypoint flags → confidences (v=2 labelled+visible, v=1 labelled but hidden, v=0 absent)
COCO_FLAG_CONFIDENCE = {2: 1.0, 1: 0.3, 0: 0.0}


def test_protocol(min_confidence: float = 0.05):
    """The test protocol's detector (a `KeypointConfig`): mediapipe-like noise and confidences (module docstring).
    Per axis σ 0.20 of the height for hidden keypoints gives a mean 2D error of 0.25 ≥ the pooled 0.24 measured."""
    return KeypointConfig(mode="detector", min_confidence=min_confidence, noise_visible=0.028, noise_self=0.04,
                          noise_hidden=0.20, drop_hidden=0.1, drop_any=0.01, conf_visible=[0.8, 1.0],
                          conf_self=[0.4, 1.0], conf_hidden=[0.2, 1.0], false_conf_p=0.05, outlier_p=0.02)


def person_height(kp: np.ndarray) -> float:
    """The person's size in pixels: the longer side of the box of all 17 (true) keypoints."""
    ok = np.isfinite(kp).all(1)
    if not ok.any():
        return 1.0
    p = kp[ok]
    return float(max(np.ptp(p[:, 0]), np.ptp(p[:, 1]), 1.0))


def simulate_detector(kp: np.ndarray, vis: np.ndarray, cfg, rng: np.random.Generator):
    """Detector-like (keypoints (17,2), confidence (17,)) from true image keypoints and visibility codes."""
    kp = np.asarray(kp, np.float64)
    vis = np.asarray(vis, np.int64)
    h = person_height(kp)
    hidden = (vis == 2) | (vis == 3)
    #                    code: 0 (outside)         1 (self-occluded)  2, 3 (hidden)                            4 (visible)
    sigma = np.array([cfg.noise_hidden, cfg.noise_self, cfg.noise_hidden, cfg.noise_hidden, cfg.noise_visible])[vis] * h
    out = kp + rng.normal(size=kp.shape) * sigma[:, None]
    ranges = np.array([cfg.conf_hidden, cfg.conf_self, cfg.conf_hidden, cfg.conf_hidden, cfg.conf_visible], np.float64)
    lo, hi = ranges[vis, 0], ranges[vis, 1]
    wrong = rng.random(N_KP) < cfg.false_conf_p  # a confident guess behind an occluder, or a doubtful visible one
    lo_w = np.where(hidden, cfg.conf_visible[0], cfg.conf_hidden[0])
    hi_w = np.where(hidden, cfg.conf_visible[1], cfg.conf_hidden[1])
    conf = np.where(wrong, rng.uniform(lo_w, hi_w), rng.uniform(lo, hi))
    outlier = rng.random(N_KP) < cfg.outlier_p
    if outlier.any():
        centre = np.nanmean(kp, 0)
        out[outlier] = centre + rng.uniform(-0.5, 0.5, (int(outlier.sum()), 2)) * h
    missing = (vis == 0) | (hidden & (rng.random(N_KP) < cfg.drop_hidden)) | (rng.random(N_KP) < cfg.drop_any)
    conf = np.where(missing, 0.0, conf)
    out[missing] = 0.0
    return out.astype(np.float32), conf.astype(np.float32)


def sanitize(kp: np.ndarray, conf: np.ndarray, min_confidence: float):
    """(keypoints with non-finite ones at 0, confidences clipped to [0, 1] with missing ones 0, present mask)."""
    kp = np.asarray(kp, np.float64)
    finite = np.isfinite(kp).all(1)
    conf = np.clip(np.nan_to_num(np.asarray(conf, np.float32), nan=0.0), 0.0, 1.0)
    present = (conf >= min_confidence) & finite
    return np.where(finite[:, None], kp, 0.0), np.where(present, conf, 0.0).astype(np.float32), present


def keypoint_vector(kp_crop: np.ndarray, conf: np.ndarray, present: np.ndarray, size: int) -> np.ndarray:
    """(17, 3) float32: crop coordinates in [−1, 1] and confidence; missing keypoints are (0, 0, 0)."""
    xy = kp_crop / (size / 2.0) - 1.0
    v = np.concatenate([xy, conf[:, None]], 1).astype(np.float32)
    v[~present] = 0.0
    return v


def crop_info(x0: float, y0: float, side: float, K: np.ndarray) -> np.ndarray:
    """(3,) float32: the crop's centre relative to the principal point and its side, over the focal length."""
    f = float(K[0, 0])
    cx, cy = x0 + side / 2.0, y0 + side / 2.0
    return np.array([(cx - K[0, 2]) / f, (cy - K[1, 2]) / f, side / f], np.float32)
