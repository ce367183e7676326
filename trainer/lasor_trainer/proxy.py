"""The network's input proxy (LASOR/STRAPS): a silhouette channel + one Gaussian heatmap per COCO-17 keypoint.

Everything is computed in a square crop of the sample image, never with aspect distortion:

    crop pixel  u' = (u − x0)·s,  v' = (v − y0)·s,   s = S / side

with (x0, y0) the crop's top-left corner and `side` its side in image pixels (both integers, so the
mask crop is exact). The same similarity maps the intrinsics: K' = A·K with A = [[s,0,−x0·s],
[0,s,−y0·s],[0,0,1]]; the camera rotation is unchanged, so a body rendered with K' lands exactly on
the crop. Training and inference share `crop_box` / `make_proxy_batch`, so crops never differ between them;
training builds the heatmaps of a whole batch at once (`data.collate`).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from numba import njit

N_KP = 17


def crop_box(mask: np.ndarray, kp: np.ndarray | None, kp_ok: np.ndarray | None, scale: float,
             shift=(0.0, 0.0), image_shape=None):
    """Square crop (x0, y0, side) in integer image pixels around the visible evidence.

    The evidence is the bounding box of the mask's pixels together with the keypoints flagged in
    kp_ok; the side is `scale` × its longer side; `shift` moves the centre by fractions of the side.
    """
    H, W = image_shape if image_shape is not None else mask.shape
    xs, ys = [], []
    if mask is not None and mask.any():
        rows = np.flatnonzero(mask.any(1))
        cols = np.flatnonzero(mask.any(0))
        xs += [cols[0], cols[-1] + 1]
        ys += [rows[0], rows[-1] + 1]
    if kp is not None and kp_ok is not None and kp_ok.any():
        p = kp[kp_ok]
        xs += [p[:, 0].min(), p[:, 0].max()]
        ys += [p[:, 1].min(), p[:, 1].max()]
    if not xs:
        xs, ys = [0, W], [0, H]
    x_lo, x_hi, y_lo, y_hi = min(xs), max(xs), min(ys), max(ys)
    side = max(x_hi - x_lo, y_hi - y_lo, 8.0) * scale
    cx = 0.5 * (x_lo + x_hi) + shift[0] * side
    cy = 0.5 * (y_lo + y_hi) + shift[1] * side
    side_i = max(int(round(side)), 8)
    x0 = int(round(cx - side_i / 2))
    y0 = int(round(cy - side_i / 2))
    return x0, y0, side_i


def crop_affine(x0: int, y0: int, side: int, out_size: int) -> np.ndarray:
    """3×3 matrix A mapping image pixels to crop pixels (out_size²)."""
    s = out_size / side
    return np.array([[s, 0.0, -x0 * s], [0.0, s, -y0 * s], [0.0, 0.0, 1.0]], dtype=np.float64)


def crop_mask(mask: np.ndarray, x0: int, y0: int, side: int, out_size: int) -> np.ndarray:
    """Float crop of a 0/1 mask, resampled to out_size² (outside the image = 0).

    PIL's resampling of the zero-padded crop (BOX when shrinking, BILINEAR when enlarging, its
    8-bit result: values on the 1/255 grid), computed directly from the mask with the filters'
    separable weights (`_resample_taps`) — no canvas, no image objects."""
    if side == out_size:
        H, W = mask.shape
        out = np.zeros((side, side), np.float32)
        sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x0 + side, W), min(y0 + side, H)
        if sx1 > sx0 and sy1 > sy0:
            out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = mask[sy0:sy1, sx0:sx1]
        return out
    start, taps = _resample_taps(side, out_size)
    out = np.empty((out_size, out_size), np.float32)
    _resample_crop(np.ascontiguousarray(mask, np.uint8), x0, y0, side, start, taps, out)
    return out


@functools.lru_cache(maxsize=1024)
def _resample_taps(n_in: int, n_out: int):
    """PIL's resampling weights (its precompute_coeffs) for n_in → n_out pixels: BOX when shrinking,
    BILINEAR when enlarging; per output pixel its first input pixel (n_out,) and normalised taps."""
    scale = n_in / n_out
    fscale = max(scale, 1.0)
    support = (0.5 if n_in > n_out else 1.0) * fscale
    centre = (np.arange(n_out) + 0.5) * scale
    lo = np.maximum((centre - support + 0.5).astype(np.int64), 0)
    hi = np.minimum((centre + support + 0.5).astype(np.int64), n_in)
    n = int((hi - lo).max())
    j = lo[:, None] + np.arange(n)[None]
    x = (j - centre[:, None] + 0.5) / fscale
    w = ((x > -0.5) & (x <= 0.5)).astype(np.float64) if n_in > n_out else np.maximum(1.0 - np.abs(x), 0.0)
    w *= j < hi[:, None]
    w /= w.sum(1, keepdims=True)
    return lo, w


@njit(cache=True, nogil=True, boundscheck=False)
def _resample_crop(mask, x0, y0, side, start, taps, out):
    """out[i, j] = Σ taps[i]·taps[j] over the side² crop at (x0, y0) of the mask (0 outside the image),
    rounded to the 1/255 grid (PIL's 8-bit output)."""
    H, W = mask.shape
    S, T = taps.shape
    rows = np.zeros((S, W), np.float64)  # vertical pass, only over image columns
    for i in range(S):
        for t in range(T):
            y = y0 + start[i] + t
            w = taps[i, t]
            if w != 0.0 and 0 <= y < H:
                for x in range(max(x0, 0), min(x0 + side, W)):
                    if mask[y, x]:
                        rows[i, x] += w
    for i in range(S):
        for j in range(S):
            v = 0.0
            for t in range(T):
                x = x0 + start[j] + t
                if 0 <= x < W:
                    v += taps[j, t] * rows[i, x]
            out[i, j] = math.floor(min(max(v, 0.0), 1.0) * 255.0 + 0.5) / 255.0


def transform_points(A: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ A[:2, :2].T + A[:2, 2]


HEATMAP_CUTOFF = 5.3   # σ: beyond it a Gaussian's factor is < 1e-6 and is left at 0


def heatmap_sigma(sigma_at_256: float, size: int) -> float:
    """Gaussian σ in crop pixels at `size`² for the configured σ at 256² (never below half a pixel)."""
    return max(sigma_at_256 * size / 256.0, 0.5)


@njit(cache=True, nogil=True, boundscheck=False)
def _draw_heatmaps(out, kp, present, sigma):
    """Write exp(−d²/2σ²) Gaussians at kp (B,K,2) (crop px; pixel centres at +0.5) into channels
    1..K of out (B,S,S,1+K), only within HEATMAP_CUTOFF·σ of each keypoint (out starts at zero)."""
    B, S = out.shape[0], out.shape[1]
    K = kp.shape[1]
    inv = -0.5 / (sigma * sigma)
    r = HEATMAP_CUTOFF * sigma
    gx = np.empty(S, np.float32)
    for b in range(B):
        for k in range(K):
            x, y = kp[b, k, 0], kp[b, k, 1]
            if not present[b, k] or not (abs(x) < 1e6 and abs(y) < 1e6):  # also drops NaN
                continue
            c0, c1 = max(int(math.floor(x - r)), 0), min(int(math.ceil(x + r)), S)
            r0, r1 = max(int(math.floor(y - r)), 0), min(int(math.ceil(y + r)), S)
            for j in range(c0, c1):
                d = j + 0.5 - x
                gx[j] = math.exp(d * d * inv)
            for i in range(r0, r1):
                d = i + 0.5 - y
                gy = math.exp(d * d * inv)
                for j in range(c0, c1):
                    out[b, i, j, 1 + k] = gy * gx[j]


def make_proxy_batch(sil: np.ndarray, kp: np.ndarray, present: np.ndarray, sigma: float) -> torch.Tensor:
    """(B, 1+K, S, S) float32 network input from silhouettes (B,S,S), keypoints (B,K,2) in crop
    pixels and presence (B,K): the silhouette channel + one Gaussian heatmap (σ pixels, zero where
    absent) per keypoint. Channels last in memory — the layout the network's convolutions use."""
    B, S = sil.shape[0], sil.shape[-1]
    out = np.zeros((B, S, S, 1 + kp.shape[1]), np.float32)
    out[..., 0] = sil
    _draw_heatmaps(out, np.ascontiguousarray(kp, np.float32), np.ascontiguousarray(present, np.bool_), float(sigma))
    return torch.from_numpy(out).permute(0, 3, 1, 2)


def make_proxy(silhouette: np.ndarray, kp_crop: np.ndarray, present: np.ndarray, size: int,
               sigma_at_256: float) -> np.ndarray:
    """(1+K, size, size) float32 proxy of one sample (`make_proxy_batch` with a batch of one)."""
    x = make_proxy_batch(silhouette[None], kp_crop[None], present[None], heatmap_sigma(sigma_at_256, size))
    return x[0].numpy()
