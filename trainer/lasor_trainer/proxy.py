"""The network's input proxy (LASOR/STRAPS): a silhouette channel + one Gaussian heatmap per COCO-17 keypoint.

Everything is computed in a square crop of the sample image, never with aspect distortion:

    crop pixel  u' = (u − x0)·s,  v' = (v − y0)·s,   s = S / side

with (x0, y0) the crop's top-left corner and `side` its side in image pixels (both integers, so the
mask crop is exact). The same similarity maps the intrinsics: K' = A·K with A = [[s,0,−x0·s],
[0,s,−y0·s],[0,0,1]]; the camera rotation is unchanged, so a body rendered with K' lands exactly on
the crop. Training and inference share `crop_box` / `make_proxy`, so crops never differ between them.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

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
    """Float crop of a 0/1 mask, area-averaged to out_size² (outside the image = 0)."""
    H, W = mask.shape
    canvas = np.zeros((side, side), dtype=np.uint8)
    sx0, sy0 = max(x0, 0), max(y0, 0)
    sx1, sy1 = min(x0 + side, W), min(y0 + side, H)
    if sx1 > sx0 and sy1 > sy0:
        canvas[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = mask[sy0:sy1, sx0:sx1]
    if side == out_size:
        return canvas.astype(np.float32)
    img = Image.fromarray(canvas * 255)
    resample = Image.Resampling.BOX if side > out_size else Image.Resampling.BILINEAR
    return np.asarray(img.resize((out_size, out_size), resample), dtype=np.float32) / 255.0


def transform_points(A: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ A[:2, :2].T + A[:2, 2]


def heatmaps(kp: np.ndarray, present: np.ndarray, size: int, sigma: float) -> np.ndarray:
    """(17, size, size) Gaussians at keypoints (crop pixels, centres at +0.5); zeros where absent."""
    out = np.zeros((size, size, len(kp)), dtype=np.float32)
    _heatmaps_hwc(kp, present, size, sigma, out)
    return np.ascontiguousarray(out.transpose(2, 0, 1))


def _heatmaps_hwc(kp, present, size, sigma, out):
    """Gaussians written into out (size, size, 17) — channels last; `out` starts at zero."""
    k = np.flatnonzero(present)
    if len(k):
        grid = np.arange(size, dtype=np.float32) + 0.5
        g = np.exp(-((grid[:, None, None] - kp[k].astype(np.float32)[None]) ** 2) / np.float32(2 * sigma ** 2))
        out[:, :, k] = g[:, None, :, 1] * g[None, :, :, 0]  # [y, x, k] = gy[y, k] · gx[x, k]


def make_proxy(silhouette: np.ndarray, kp_crop: np.ndarray, present: np.ndarray, size: int,
               sigma_at_256: float) -> np.ndarray:
    """(18, size, size) float32: silhouette channel (already cropped) + 17 keypoint heatmaps.

    The array is a view of (size, size, 18) memory — channels last, the layout the network's
    convolutions use — so batching it (`data.collate`) needs no transposing copy."""
    sigma = sigma_at_256 * size / 256.0
    out = np.zeros((size, size, 1 + len(kp_crop)), dtype=np.float32)
    out[..., 0] = silhouette
    _heatmaps_hwc(kp_crop, present, size, max(sigma, 0.5), out[..., 1:])
    return out.transpose(2, 0, 1)
